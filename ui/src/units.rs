//! Values with the units dashboards give them (Grafana's unit names).

use crate::chart::ticks::format_value;
use crate::trace_tree::format_us;

/// `v` in `unit`: seconds and milliseconds as durations, bytes in binary multiples,
/// percentages, rates; anything else is the number followed by the unit.
pub fn with_unit(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return format_value(v);
    }
    match unit {
        "" | "none" | "short" => format_value(v),
        // A duration of nothing has no unit to pick.
        "s" | "ms" | "µs" | "us" if v == 0.0 => "0".into(),
        "s" => format_us((v * 1e6).round() as i64),
        "ms" => format_us((v * 1e3).round() as i64),
        "µs" | "us" => format_us(v.round() as i64),
        "percent" => format!("{}%", format_value(v)),
        "percentunit" => format!("{}%", format_value(v * 100.0)),
        "bytes" | "decbytes" => bytes(v, if unit == "bytes" { 1024.0 } else { 1000.0 }),
        "reqps" => format!("{} req/s", format_value(v)),
        "ops" => format!("{} ops/s", format_value(v)),
        other => format!("{} {other}", format_value(v)),
    }
}

fn bytes(v: f64, base: f64) -> String {
    let names: [&str; 6] = if base == 1024.0 {
        ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    } else {
        ["B", "kB", "MB", "GB", "TB", "PB"]
    };
    let mut x = v;
    let mut i = 0;
    while x.abs() >= base && i + 1 < names.len() {
        x /= base;
        i += 1;
    }
    format!("{} {}", format_value((x * 100.0).round() / 100.0), names[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_format_like_grafana_names_them() {
        assert_eq!(with_unit(0.25, "s"), "250ms");
        assert_eq!(with_unit(0.0, "s"), "0");
        assert_eq!(with_unit(1500.0, "ms"), "1.5s");
        assert_eq!(with_unit(0.125, "percentunit"), "12.5%");
        assert_eq!(with_unit(3.0 * 1024.0 * 1024.0, "bytes"), "3 MiB");
        assert_eq!(with_unit(1500.0, "decbytes"), "1.5 kB");
        assert_eq!(with_unit(12.0, "reqps"), "12 req/s");
        assert_eq!(with_unit(7.0, ""), "7");
        assert_eq!(with_unit(7.0, "widgets"), "7 widgets");
        assert_eq!(with_unit(f64::NAN, "s"), "NaN");
    }
}
