//! Stacked bars over time: the log volume by level.

use super::ticks::{format_value, time_label, time_ticks, value_ticks};
use super::{BOTTOM, ChartSeries, H, LEFT, RIGHT, TOP, W};
use crate::timerange::{Range, format_time};
use leptos::prelude::*;

/// The colour of a log level (Loki's level names and OpenTelemetry severity texts).
pub fn level_color(level: &str) -> &'static str {
    match level.to_ascii_lowercase().as_str() {
        "critical" | "fatal" | "crit" | "emerg" | "alert" | "error" | "err" => "#d9363e",
        "warn" | "warning" => "#e89c1b",
        "info" | "information" | "notice" => "#4caf50",
        "debug" => "#3b82f6",
        "trace" => "#9c6ade",
        _ => "#8a94a6",
    }
}

/// Stacked counts per time bucket, one colour per series (series labels are levels).
#[component]
pub(crate) fn VolumeChart(series: Vec<ChartSeries>, range: Range) -> impl IntoView {
    // Totals per bucket, to scale the value axis.
    let buckets = ((range.end - range.start) / range.step).floor() as usize + 1;
    let bucket = |t: f64| ((t - range.start) / range.step).round();
    let mut totals = vec![0.0; buckets.min(100_000)];
    for s in &series {
        for (t, v) in &s.points {
            let b = bucket(*t);
            if b >= 0.0 && (b as usize) < totals.len() && v.is_finite() {
                totals[b as usize] += v;
            }
        }
    }
    let max = totals.iter().copied().fold(0.0, f64::max);
    let y_ticks = value_ticks(0.0, max.max(1.0), 4);
    let y_max = y_ticks.last().copied().unwrap_or(1.0);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H / 2.0 - TOP - BOTTOM;
    let height = H / 2.0;
    let bar_w = (plot_w / buckets.max(1) as f64 * 0.8).max(0.5);
    let x = move |t: f64| LEFT + (t - range.start) / (range.end - range.start) * plot_w;
    let y = move |v: f64| TOP + (1.0 - v / y_max) * plot_h;

    let mut stacked = vec![0.0; totals.len()];
    let mut bars = Vec::new();
    for s in &series {
        let color = level_color(&s.label);
        for (t, v) in &s.points {
            let b = bucket(*t);
            if !(b >= 0.0 && (b as usize) < stacked.len() && v.is_finite() && *v > 0.0) {
                continue;
            }
            let below = stacked[b as usize];
            stacked[b as usize] += v;
            let (top, bottom) = (y(below + v), y(below));
            let title = format!(
                "{} UTC · {}: {}",
                format_time(*t),
                s.label,
                format_value(*v)
            );
            bars.push(view! {
                <rect class="bar" x=x(*t) - bar_w / 2.0 y=top width=bar_w height=(bottom - top).max(0.5) fill=color>
                    <title>{title}</title>
                </rect>
            });
        }
    }
    let grid_y = y_ticks
        .iter()
        .map(|v| {
            let yy = y(*v);
            view! {
                <line class="grid" x1=LEFT x2=W - RIGHT y1=yy y2=yy/>
                <text class="tick" x=LEFT - 6.0 y=yy + 4.0 text-anchor="end">{format_value(*v)}</text>
            }
        })
        .collect_view();
    let (x_ticks, fmt) = time_ticks(range.start, range.end, 8);
    let grid_x = x_ticks
        .iter()
        .map(|t| {
            view! {
                <text class="tick" x=x(*t) y=height - 8.0 text-anchor="middle">{time_label(*t, fmt)}</text>
            }
        })
        .collect_view();
    let legend = series
        .iter()
        .map(|s| {
            let total: f64 = s.points.iter().map(|p| p.1).filter(|v| v.is_finite()).sum();
            view! {
                <li class="legend-item">
                    <span class="swatch" style:background=level_color(&s.label)></span>
                    {format!("{} ({})", s.label, format_value(total))}
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="chart volume">
            <svg viewBox=format!("0 0 {W} {height}") role="img" aria-label="Log volume by level">
                <g class="axes">{grid_y}{grid_x}</g>
                <g class="bars">{bars}</g>
            </svg>
            <ul class="legend">{legend}</ul>
        </div>
    }
}
