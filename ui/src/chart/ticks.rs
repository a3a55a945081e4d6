//! Axis ticks and labels: round values on the value axis, clock-aligned times on the
//! time axis.

use crate::timerange::civil;

/// A "nice" tick spacing (1, 2, 2.5 or 5 times a power of ten) near `raw`.
fn nice_step(raw: f64) -> f64 {
    let exp = raw.log10().floor();
    let base = 10f64.powf(exp);
    let frac = raw / base;
    let nice = if frac <= 1.0 {
        1.0
    } else if frac <= 2.0 {
        2.0
    } else if frac <= 2.5 {
        2.5
    } else if frac <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * base
}

/// Ticks covering `[min, max]` with about `target` intervals. The first and last ticks
/// are the axis bounds (they enclose the data).
pub fn value_ticks(min: f64, max: f64, target: usize) -> Vec<f64> {
    let (mut min, mut max) = (min, max);
    if !min.is_finite() || !max.is_finite() {
        return vec![0.0, 1.0];
    }
    if max <= min {
        let pad = if min == 0.0 { 1.0 } else { min.abs() * 0.1 };
        min -= pad;
        max += pad;
    }
    let step = nice_step((max - min) / target.max(1) as f64);
    let lo = (min / step).floor();
    let hi = (max / step).ceil();
    let n = ((hi - lo) as usize).min(1000);
    (0..=n)
        .map(|i| {
            let v = (lo + i as f64) * step;
            // Clean binary noise (0.30000000000000004) out of the printed values.
            let digits = (-step.log10().floor()).max(0.0) as i32 + 1;
            let p = 10f64.powi(digits);
            (v * p).round() / p
        })
        .collect()
}

/// Tick spacings of the time axis, in seconds.
const TIME_STEPS: [f64; 22] = [
    1.0,
    2.0,
    5.0,
    10.0,
    15.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    10_800.0,
    21_600.0,
    43_200.0,
    86_400.0,
    172_800.0,
    604_800.0,
    2_592_000.0,
    31_536_000.0,
];

/// How time ticks are labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    Seconds,
    Minutes,
    DayMinutes,
    Day,
}

/// Times in `[start, end]` at a round spacing giving about `target` ticks.
pub fn time_ticks(start: f64, end: f64, target: usize) -> (Vec<f64>, TimeFormat) {
    let range = end - start;
    if !start.is_finite() || !end.is_finite() || range <= 0.0 {
        return (Vec::new(), TimeFormat::Minutes);
    }
    let raw = range / target.max(1) as f64;
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|s| *s >= raw)
        .unwrap_or_else(|| (raw / 31_536_000.0).ceil() * 31_536_000.0);
    let first = (start / step).ceil() * step;
    let ticks: Vec<f64> = (0..)
        .map(|i| first + f64::from(i) * step)
        .take_while(|t| *t <= end)
        .take(1000)
        .collect();
    let format = if step < 60.0 {
        TimeFormat::Seconds
    } else if step >= 86_400.0 {
        TimeFormat::Day
    } else if range > 86_400.0 {
        TimeFormat::DayMinutes
    } else {
        TimeFormat::Minutes
    };
    (ticks, format)
}

/// The label of a time tick (UTC).
pub fn time_label(ts: f64, format: TimeFormat) -> String {
    let (_, mo, d, h, mi, s) = civil(ts);
    match format {
        TimeFormat::Seconds => format!("{h:02}:{mi:02}:{s:02}"),
        TimeFormat::Minutes => format!("{h:02}:{mi:02}"),
        TimeFormat::DayMinutes => format!("{mo:02}-{d:02} {h:02}:{mi:02}"),
        TimeFormat::Day => format!("{mo:02}-{d:02}"),
    }
}

/// A value as an axis or a tooltip shows it: SI suffixes from a thousand up, four
/// significant digits, `NaN` and `±Inf` as Prometheus writes them.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if a < 1e-3 {
        let s = format!("{v:.2e}");
        return match s.split_once('e') {
            Some((m, e)) => format!("{}e{e}", trim_zeros(m)),
            None => s,
        };
    }
    const SUFFIXES: [(f64, &str); 5] =
        [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")];
    let (scaled, suffix) = SUFFIXES
        .iter()
        .find(|(f, _)| a >= *f)
        .map(|(f, s)| (v / f, *s))
        .unwrap_or((v, ""));
    let int_digits = (scaled.abs().log10().floor() as i32 + 1).max(1);
    let decimals = (4 - int_digits).max(0) as usize;
    format!("{}{suffix}", trim_zeros(&format!("{scaled:.decimals$}")))
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_ticks_are_round_and_enclose_the_data() {
        assert_eq!(
            value_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(value_ticks(0.13, 0.97, 4), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(
            value_ticks(-3.0, 7.0, 5),
            vec![-4.0, -2.0, 0.0, 2.0, 4.0, 6.0, 8.0]
        );
        assert_eq!(value_ticks(0.1, 0.3, 2), vec![0.1, 0.2, 0.3]);
        assert_eq!(
            value_ticks(1234.0, 98765.0, 5),
            vec![0.0, 20000.0, 40000.0, 60000.0, 80000.0, 100000.0]
        );
        // A flat series still gets an axis around it.
        assert_eq!(
            value_ticks(5.0, 5.0, 5),
            vec![4.4, 4.6, 4.8, 5.0, 5.2, 5.4, 5.6]
        );
        assert_eq!(value_ticks(0.0, 0.0, 4), vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(value_ticks(f64::NAN, 1.0, 4), vec![0.0, 1.0]);
    }

    #[test]
    fn time_ticks_fall_on_clock_boundaries() {
        // 2026-11-22 10:04:05 .. 11:04:05, about 6 ticks: every 10 minutes from 10:10.
        let start = 1_795_341_845.0;
        let (ticks, fmt) = time_ticks(start, start + 3600.0, 6);
        assert_eq!(fmt, TimeFormat::Minutes);
        let labels: Vec<String> = ticks.iter().map(|t| time_label(*t, fmt)).collect();
        assert_eq!(
            labels,
            ["10:10", "10:20", "10:30", "10:40", "10:50", "11:00"]
        );
        let (ticks, fmt) = time_ticks(start, start + 60.0, 6);
        assert_eq!(fmt, TimeFormat::Seconds);
        assert_eq!(time_label(ticks[0], fmt), "10:04:10");
        let (ticks, fmt) = time_ticks(start, start + 2.0 * 86_400.0, 6);
        assert_eq!(fmt, TimeFormat::DayMinutes);
        assert_eq!(time_label(ticks[0], fmt), "11-22 12:00");
        let (ticks, fmt) = time_ticks(start, start + 30.0 * 86_400.0, 6);
        assert_eq!(fmt, TimeFormat::Day);
        assert!(ticks.windows(2).all(|w| w[1] - w[0] == 604_800.0));
        assert!(time_ticks(start, start, 6).0.is_empty());
    }

    #[test]
    fn values_print_short() {
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(123.456), "123.5");
        assert_eq!(format_value(1500.0), "1.5K");
        assert_eq!(format_value(-2_000_000.0), "-2M");
        assert_eq!(format_value(12_345_678_901.0), "12.35G");
        assert_eq!(format_value(0.00012), "1.2e-4");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    }
}
