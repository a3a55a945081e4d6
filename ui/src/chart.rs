//! Charts drawn as SVG by the same code on the server and in the browser: the server's
//! page already shows the lines, axes and legend; hydration adds hover values and
//! toggling series in the legend.

// `#[component]` re-declares a crate-private component as `pub`.
#[allow(unreachable_pub)]
mod bars;
pub mod ticks;

pub(crate) use bars::VolumeChart;
pub use bars::level_color;

use crate::timerange::{Range, format_time};
use crate::units::with_unit;
use leptos::prelude::*;
use std::collections::HashSet;
use ticks::{format_value, time_label, time_ticks, value_ticks};

/// Colours of series, in order; they repeat after the last one.
const PALETTE: [&str; 10] = [
    "#3274d9", "#e0752d", "#56a64b", "#c4162a", "#8f3bb8", "#f2cc0c", "#1f9ea3", "#d6457b",
    "#7b8a8b", "#a05a2c",
];

/// Geometry of the drawing, in SVG user units (the chart scales to its container).
const W: f64 = 1000.0;
const H: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 26.0;

/// One line: a name for the legend and `(time, value)` points in time order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChartSeries {
    pub label: String,
    #[serde(with = "crate::json_num::points")]
    pub points: Vec<(f64, f64)>,
}

/// An exemplar drawn on a chart: a marker at its time and value, linking to its trace
/// when its labels name one (`trace_id`, or `traceID` as some SDKs write it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChartExemplar {
    /// Seconds since the Unix epoch.
    pub t: f64,
    pub value: f64,
    /// The series it was recorded on, as Prometheus prints a series.
    pub series: String,
    /// The exemplar's own labels.
    pub labels: Vec<(String, String)>,
}

impl ChartExemplar {
    /// The trace this exemplar points at.
    pub fn trace_id(&self) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, v)| (k == "trace_id" || k == "traceID") && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// What the marker's tooltip says: value, time, series and labels, one per line.
    fn describe(&self) -> String {
        let mut text = format!(
            "Exemplar {} at {} UTC\n{}",
            format_value(self.value),
            format_time(self.t),
            self.series
        );
        for (k, v) in &self.labels {
            text.push_str(&format!("\n{k}: {v}"));
        }
        text
    }
}

/// `exemplars` in time order, each once (several queries over the same series find the
/// same exemplars).
pub fn distinct(mut exemplars: Vec<ChartExemplar>) -> Vec<ChartExemplar> {
    exemplars.sort_by(|a, b| {
        a.t.total_cmp(&b.t)
            .then_with(|| a.series.cmp(&b.series))
            .then_with(|| a.labels.cmp(&b.labels))
            .then_with(|| a.value.total_cmp(&b.value))
    });
    exemplars.dedup();
    exemplars
}

/// The colour of the `i`th series.
pub fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

struct Scale {
    range: Range,
    y_min: f64,
    y_max: f64,
}

impl Scale {
    fn x(&self, t: f64) -> f64 {
        LEFT + (t - self.range.start) / (self.range.end - self.range.start) * (W - LEFT - RIGHT)
    }
    fn y(&self, v: f64) -> f64 {
        TOP + (1.0 - (v - self.y_min) / (self.y_max - self.y_min)) * (H - TOP - BOTTOM)
    }
}

/// The SVG path of a series: a line through its points, broken where a point is
/// missing (a gap longer than one and a half steps) or not a finite number.
pub fn series_path(
    points: &[(f64, f64)],
    step: f64,
    x: impl Fn(f64) -> f64,
    y: impl Fn(f64) -> f64,
) -> String {
    let mut d = String::new();
    let mut last: Option<f64> = None;
    for &(t, v) in points {
        if !v.is_finite() {
            last = None;
            continue;
        }
        let joined = last.is_some_and(|prev| t - prev <= step * 1.5);
        let (px, py) = (x(t), y(v));
        if joined {
            d.push_str(&format!("L{px:.1} {py:.1}"));
        } else {
            // A lone point shows as a dot (a zero-length segment with round caps).
            d.push_str(&format!("M{px:.1} {py:.1}h0.1"));
        }
        last = Some(t);
    }
    d
}

/// The value of each series nearest to time `t` (within half a step).
fn values_at(series: &[ChartSeries], t: f64, step: f64) -> Vec<(usize, f64)> {
    series
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let idx = s.points.partition_point(|p| p.0 < t);
            let near = [idx.checked_sub(1), Some(idx)]
                .into_iter()
                .flatten()
                .filter_map(|j| s.points.get(j))
                .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))?;
            ((near.0 - t).abs() <= step / 2.0).then_some((i, near.1))
        })
        .collect()
}

/// A time-series line chart with axes, grid, legend and hover values; exemplars, if
/// given, are diamonds on the same axes that link to their traces.
#[component]
pub fn LineChart(
    series: Vec<ChartSeries>,
    range: Range,
    #[prop(optional)] exemplars: Vec<ChartExemplar>,
    /// Unit of the values (Grafana's names), for the value axis and hover values.
    #[prop(optional, into)]
    unit: String,
    /// Bounds the value axis reaches at least (it still shows values beyond them).
    #[prop(default = None)]
    min: Option<f64>,
    #[prop(default = None)] max: Option<f64>,
) -> impl IntoView {
    let exemplars: Vec<ChartExemplar> = exemplars
        .into_iter()
        .filter(|e| e.value.is_finite() && e.t >= range.start && e.t <= range.end)
        .collect();
    let finite = || {
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .chain(exemplars.iter().map(|e| e.value))
            .filter(|v| v.is_finite())
    };
    let lo = finite().chain(min).fold(f64::INFINITY, f64::min);
    let hi = finite().chain(max).fold(f64::NEG_INFINITY, f64::max);
    let y_ticks = if lo.is_finite() {
        value_ticks(lo, hi, 5)
    } else {
        value_ticks(0.0, 1.0, 5)
    };
    let scale = Scale {
        range,
        y_min: y_ticks.first().copied().unwrap_or(0.0),
        y_max: y_ticks.last().copied().unwrap_or(1.0),
    };
    let (x_ticks, x_format) = time_ticks(range.start, range.end, 8);
    let hidden = RwSignal::new(HashSet::<usize>::new());
    // Hovered position as a fraction of the plot width (browser only).
    let hover = RwSignal::new(None::<f64>);

    let grid_y = y_ticks
        .iter()
        .map(|v| {
            let y = scale.y(*v);
            view! {
                <line class="grid" x1=LEFT x2=W - RIGHT y1=y y2=y/>
                <text class="tick" x=LEFT - 6.0 y=y + 4.0 text-anchor="end">{with_unit(*v, &unit)}</text>
            }
        })
        .collect_view();
    let grid_x = x_ticks
        .iter()
        .map(|t| {
            let x = scale.x(*t);
            view! {
                <line class="grid" x1=x x2=x y1=TOP y2=H - BOTTOM/>
                <text class="tick" x=x y=H - 8.0 text-anchor="middle">{time_label(*t, x_format)}</text>
            }
        })
        .collect_view();
    let paths = series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let d = series_path(&s.points, range.step, |t| scale.x(t), |v| scale.y(v));
            view! {
                <path
                    class="line"
                    class:hidden=move || hidden.with(|h| h.contains(&i))
                    d=d
                    stroke=color(i)
                    data-series=s.label.clone()
                />
            }
        })
        .collect_view();
    let markers = exemplars
        .iter()
        .map(|e| {
            let d = format!(
                "M{x:.1} {top:.1}l5 5l-5 5l-5 -5z",
                x = scale.x(e.t),
                top = scale.y(e.value) - 5.0
            );
            let text = e.describe();
            match e.trace_id() {
                Some(id) => {
                    let label = text.clone();
                    view! {
                    <g class="exemplar">
                        // Not a Tab stop each (there may be thousands): the keyboard
                        // reaches them through the chart (Enter at the hover line).
                        <a href=format!("/traces/{}", crate::api::encode(id)) aria-label=label tabindex="-1">
                            <title>{text}</title>
                            <path d=d/>
                        </a>
                    </g>
                    }
                    .into_any()
                }
                None => view! {
                    <g class="exemplar">
                        <title>{text}</title>
                        <path d=d/>
                    </g>
                }
                .into_any(),
            }
        })
        .collect_view();
    let legend = series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let toggle = move |_| {
                hidden.update(|h| {
                    if !h.remove(&i) {
                        h.insert(i);
                    }
                })
            };
            view! {
                <li>
                    <button
                        type="button"
                        class="legend-item"
                        class:off=move || hidden.with(|h| h.contains(&i))
                        aria-pressed=move || if hidden.with(|h| h.contains(&i)) { "false" } else { "true" }
                        on:click=toggle
                    >
                        <span class="swatch" style:background=color(i)></span>
                        {s.label.clone()}
                    </button>
                </li>
            }
        })
        .collect_view();

    let plot_w = W - LEFT - RIGHT;
    let on_move = move |ev: leptos::ev::MouseEvent| {
        use leptos::wasm_bindgen::JsCast;
        let Some(el) = ev
            .current_target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        else {
            return;
        };
        let rect = el.get_bounding_client_rect();
        if rect.width() > 0.0 {
            let f = (f64::from(ev.client_x()) - rect.left()) / rect.width();
            hover.set(Some(f.clamp(0.0, 1.0)));
        }
    };
    // The time at the hover line (on a step), and the exemplars within half a step of
    // it that point at a trace.
    let hover_time = move |f: f64| {
        let t = range.start + f * (range.end - range.start);
        range.start + ((t - range.start) / range.step).round() * range.step
    };
    let with_traces: Vec<(f64, String)> = exemplars
        .iter()
        .filter_map(|e| Some((e.t, e.trace_id()?.to_string())))
        .collect();
    let trace_near = move |t: f64| -> Option<String> {
        with_traces
            .iter()
            .find(|(et, _)| (et - t).abs() <= range.step / 2.0)
            .map(|(_, id)| id.clone())
    };
    let trace_for_key = trace_near.clone();
    let series_for_tip = series.clone();
    let tooltip = move || {
        let f = hover.get()?;
        let t = hover_time(f);
        let trace = trace_near(t);
        let hidden = hidden.get();
        let mut rows: Vec<(usize, f64)> = values_at(&series_for_tip, t, range.step)
            .into_iter()
            .filter(|(i, _)| !hidden.contains(i))
            .collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        let more = rows.len().saturating_sub(12);
        rows.truncate(12);
        let left = format!("{:.1}%", (LEFT + f * plot_w) / W * 100.0);
        // Past the middle the box opens to the left of the cursor, so it stays inside.
        let flip = f > 0.5;
        Some(view! {
            <div class="tooltip" class:flip=flip style:left=left role="status">
                <div class="tooltip-time">{format_time(t)} " UTC"</div>
                {rows
                    .into_iter()
                    .map(|(i, v)| {
                        view! {
                            <div class="tooltip-row">
                                <span class="swatch" style:background=color(i)></span>
                                <span class="tooltip-label">{series_for_tip[i].label.clone()}</span>
                                <span class="tooltip-value">{with_unit(v, &unit)}</span>
                            </div>
                        }
                    })
                    .collect_view()}
                {(more > 0).then(|| view! { <div class="tooltip-more">{format!("and {more} more")}</div> })}
                {trace.map(|id| view! {
                    <div class="tooltip-more">{format!("Exemplar of trace {id}: Enter opens it")}</div>
                })}
            </div>
        })
    };
    let cursor_x = move || hover.get().map(|f| LEFT + f * plot_w);
    // The keyboard moves the hover line too: arrows by a step (with Shift by a tenth of
    // the range), Home and End to the ends, Escape hides it.
    let span = (range.end - range.start).max(f64::MIN_POSITIVE);
    let step_f = (range.step / span).clamp(1e-6, 1.0);
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let by = if ev.shift_key() { 0.1 } else { step_f };
        let at = hover.get_untracked();
        if ev.key() == "Enter" {
            // The trace of an exemplar at the hover line.
            if let Some(id) = at.and_then(|f| trace_for_key(hover_time(f)))
                && let Some(w) = web_sys::window()
            {
                ev.prevent_default();
                let _ = w
                    .location()
                    .set_href(&format!("/traces/{}", crate::api::encode(&id)));
            }
            return;
        }
        let next = match ev.key().as_str() {
            "ArrowRight" => Some(at.map_or(1.0, |f| f + by)),
            "ArrowLeft" => Some(at.map_or(1.0, |f| f - by)),
            "Home" => Some(0.0),
            "End" => Some(1.0),
            "Escape" => None,
            _ => return,
        };
        ev.prevent_default();
        hover.set(next.map(|f| f.clamp(0.0, 1.0)));
    };
    let summary = match exemplars.len() {
        0 => format!("Line chart of {} series", series.len()),
        n => format!("Line chart of {} series with {n} exemplars", series.len()),
    };

    view! {
        <div
            class="chart"
            tabindex="0"
            role="group"
            aria-label="Chart: arrow keys show the values at each time, Enter opens an exemplar's trace there, Escape hides them"
            on:keydown=on_key
            on:blur=move |_| hover.set(None)
        >
            <svg
                viewBox=format!("0 0 {W} {H}")
                role="img"
                aria-label=summary
                on:mouseleave=move |_| hover.set(None)
            >
                <g class="axes">{grid_y}{grid_x}</g>
                <g class="series">{paths}</g>
                <line
                    class="cursor"
                    class:hidden=move || cursor_x().is_none()
                    x1=move || cursor_x().unwrap_or(LEFT)
                    x2=move || cursor_x().unwrap_or(LEFT)
                    y1=TOP
                    y2=H - BOTTOM
                />
                <rect
                    class="hover-area"
                    x=LEFT
                    y=TOP
                    width=plot_w
                    height=H - TOP - BOTTOM
                    on:mousemove=on_move
                />
                // Above the hover area, so that a marker can be clicked.
                <g class="exemplars">{markers}</g>
            </svg>
            {tooltip}
            <ul class="legend">{legend}</ul>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_break_at_gaps_and_non_numbers() {
        let pts = [
            (0.0, 1.0),
            (10.0, 2.0),
            (20.0, f64::NAN),
            (30.0, 3.0),
            (40.0, 4.0),
            (70.0, 5.0),
        ];
        let d = series_path(&pts, 10.0, |t| t, |v| v);
        assert_eq!(
            d,
            "M0.0 1.0h0.1L10.0 2.0M30.0 3.0h0.1L40.0 4.0M70.0 5.0h0.1"
        );
        assert_eq!(series_path(&[], 10.0, |t| t, |v| v), "");
    }

    #[test]
    fn hover_finds_the_nearest_point_within_half_a_step() {
        let s = vec![
            ChartSeries {
                label: "a".into(),
                points: vec![(0.0, 1.0), (10.0, 2.0)],
            },
            ChartSeries {
                label: "b".into(),
                points: vec![(30.0, 7.0)],
            },
        ];
        assert_eq!(values_at(&s, 9.0, 10.0), vec![(0, 2.0)]);
        assert_eq!(values_at(&s, 26.0, 10.0), vec![(1, 7.0)]);
        assert_eq!(values_at(&s, 20.0, 10.0), vec![]);
    }

    /// An hour from 10:00 UTC, by the minute.
    #[cfg(feature = "ssr")]
    fn hour() -> Range {
        Range {
            start: 1_795_341_600.0,
            end: 1_795_345_200.0,
            step: 60.0,
        }
    }

    // Rendering to HTML needs the server flavour of the view layer.
    #[cfg(feature = "ssr")]
    #[test]
    fn every_series_is_drawn_with_axes_on_the_server() {
        let range = hour();
        let series = vec![
            ChartSeries {
                label: "up{job=\"a\"}".into(),
                points: vec![(1_795_341_600.0, 1.0), (1_795_341_660.0, 0.0)],
            },
            ChartSeries {
                label: "<script>".into(),
                points: vec![(1_795_341_600.0, 5.0)],
            },
        ];
        let html = Owner::new().with(|| view! { <LineChart series range/> }.to_html());
        assert_eq!(html.matches("<path").count(), 2, "{html}");
        assert!(html.contains(">10:10<"), "time ticks: {html}");
        assert!(
            html.contains("&lt;script&gt;") && !html.contains("<script>"),
            "escaping: {html}"
        );
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn exemplars_are_markers_that_link_to_their_traces() {
        let range = hour();
        let series = vec![ChartSeries {
            label: "latency".into(),
            points: vec![(1_795_341_600.0, 1.0), (1_795_341_660.0, 2.0)],
        }];
        let exemplar = |t: f64, value: f64, labels: &[(&str, &str)]| ChartExemplar {
            t,
            value,
            series: "latency_bucket{le=\"5\"}".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let exemplars = vec![
            exemplar(
                1_795_341_630.0,
                9.5,
                &[("trace_id", "4bf92f35"), ("user", "<i>")],
            ),
            exemplar(1_795_341_640.0, 1.5, &[("span_id", "00f067aa")]),
            // Outside the range: not drawn.
            exemplar(1_795_345_300.0, 1.0, &[("trace_id", "ffff")]),
        ];
        let html = Owner::new().with(|| view! { <LineChart series range exemplars/> }.to_html());
        assert_eq!(html.matches("class=\"exemplar\"").count(), 2, "{html}");
        assert_eq!(html.matches("href=\"/traces/").count(), 1, "{html}");
        assert!(html.contains("href=\"/traces/4bf92f35\""), "{html}");
        assert!(
            html.contains("&lt;i&gt;") && !html.contains("<i>"),
            "escaping: {html}"
        );
        assert!(html.contains("with 2 exemplars"), "{html}");
        // The value axis reaches the highest exemplar.
        assert!(html.contains(">10<"), "value ticks: {html}");
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn the_value_axis_speaks_the_unit_and_reaches_the_bounds() {
        let range = hour();
        let series = vec![ChartSeries {
            label: "latency".into(),
            points: vec![(1_795_341_600.0, 0.25), (1_795_341_660.0, 0.5)],
        }];
        let html = Owner::new().with(|| {
            view! { <LineChart series range unit="s" min=Some(0.0) max=Some(2.0)/> }.to_html()
        });
        assert!(
            html.contains(">500ms<") && html.contains(">2s<"),
            "ticks: {html}"
        );
        assert!(html.contains(">0<"), "from the lower bound: {html}");
        // Values far from zero: a zero tick comes only from the lower bound.
        let series = vec![ChartSeries {
            label: "latency".into(),
            points: vec![(1_795_341_600.0, 5.0), (1_795_341_660.0, 6.0)],
        }];
        let html = Owner::new()
            .with(|| view! { <LineChart series=series.clone() range min=Some(0.0)/> }.to_html());
        assert!(html.contains(">0<"), "from the lower bound: {html}");
        let html = Owner::new().with(|| view! { <LineChart series range/> }.to_html());
        assert!(
            !html.contains(">0<"),
            "without a bound the axis starts near the data: {html}"
        );
    }
}
