//! Prometheus' template helpers: `humanize*`, `title`, `stripPort`, `stripDomain`.
//! Outputs match Prometheus (`1.235k`, `1d 2h 3m 4s`, `1970-01-01 00:00:01 +0000 UTC`).

use super::gofmt::fmt_g;

fn g4(v: f64) -> String {
    fmt_g(v, Some(4), false)
}

fn scale_down(mut v: f64, base: f64, prefixes: &[&'static str]) -> (f64, &'static str) {
    let mut prefix = "";
    for p in prefixes {
        if v.abs() < base {
            break;
        }
        prefix = p;
        v /= base;
    }
    (v, prefix)
}

fn scale_up_small(mut v: f64) -> (f64, &'static str) {
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    (v, prefix)
}

pub(super) fn humanize(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return g4(v);
    }
    let (v, p) = if v.abs() >= 1.0 {
        scale_down(v, 1000.0, &["k", "M", "G", "T", "P", "E", "Z", "Y"])
    } else {
        scale_up_small(v)
    };
    format!("{}{p}", g4(v))
}

pub(super) fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return g4(v);
    }
    let (v, p) = scale_down(v, 1024.0, &["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"]);
    format!("{}{p}", g4(v))
}

pub(super) fn duration(v: f64) -> String {
    if !v.is_finite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let v = v.abs();
        let d = v as i64;
        let (s, m, h, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        return if days != 0 {
            format!("{sign}{days}d {h}h {m}m {s}s")
        } else if h != 0 {
            format!("{sign}{h}h {m}m {s}s")
        } else if m != 0 {
            format!("{sign}{m}m {s}s")
        } else {
            format!("{sign}{}s", g4(v))
        };
    }
    let (v, p) = scale_up_small(v);
    format!("{}{p}s", g4(v))
}

pub(super) fn percentage(v: f64) -> String {
    format!("{}%", g4(v * 100.0))
}

/// Seconds since the epoch as Go prints a UTC `time.Time` (millisecond precision,
/// as Prometheus converts through its millisecond timestamps).
pub(super) fn timestamp(v: f64) -> String {
    if !v.is_finite() {
        return g4(v);
    }
    let ms = ((v * 1e9) as i64).div_euclid(1_000_000);
    let secs = ms.div_euclid(1000);
    let frac_ms = ms.rem_euclid(1000);
    let (days, sod) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, mo, d) = civil_from_days(days);
    let frac = if frac_ms == 0 {
        String::new()
    } else {
        format!(".{frac_ms:03}").trim_end_matches('0').to_string()
    };
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}{frac} +0000 UTC",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The first letter of every word upper-cased, the rest left alone.
pub(super) fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '\'' || c == '_';
    }
    out
}

/// `host:port` split as Go's `net.SplitHostPort`: `None` when it is not one.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host, port));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host, port))
}

pub(super) fn strip_port(s: &str) -> String {
    split_host_port(s).map_or_else(|| s.to_string(), |(h, _)| h.to_string())
}

pub(super) fn strip_domain(s: &str) -> String {
    if s.is_empty() {
        return String::new();
    }
    let (host, port) = split_host_port(s).unwrap_or((s, ""));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return s.to_string();
    }
    let host = host.split('.').next().unwrap_or(host);
    if port.is_empty() {
        host.to_string()
    } else if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanize_like_prometheus() {
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize(1234.0), "1.234k");
        assert_eq!(humanize(1_234_567.0), "1.235M");
        assert_eq!(humanize(0.012), "12m");
        assert_eq!(humanize(-1500.0), "-1.5k");
        assert_eq!(humanize(f64::INFINITY), "+Inf");
        assert_eq!(humanize1024(1024.0), "1ki");
        assert_eq!(humanize1024(1_048_576.0), "1Mi");
        assert_eq!(humanize1024(512.0), "512");
        assert_eq!(percentage(0.1234), "12.34%");
    }

    #[test]
    fn durations_like_prometheus() {
        assert_eq!(duration(0.0), "0s");
        assert_eq!(duration(1.0), "1s");
        assert_eq!(duration(60.0), "1m 0s");
        assert_eq!(duration(3600.0), "1h 0m 0s");
        assert_eq!(duration(93784.0), "1d 2h 3m 4s");
        assert_eq!(duration(-65.0), "-1m 5s");
        assert_eq!(duration(1.2345), "1.234s");
        assert_eq!(duration(0.1), "100ms");
        assert_eq!(duration(0.000_001), "1us");
    }

    #[test]
    fn timestamps_like_go() {
        assert_eq!(timestamp(0.0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(timestamp(1.5), "1970-01-01 00:00:01.5 +0000 UTC");
        assert_eq!(timestamp(1_700_000_000.0), "2023-11-14 22:13:20 +0000 UTC");
    }

    #[test]
    fn hosts() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_domain("node1.example.com:9100"), "node1:9100");
        assert_eq!(strip_domain("10.0.0.1:9100"), "10.0.0.1:9100");
        assert_eq!(strip_domain("node1.example.com"), "node1");
        assert_eq!(title("hello world-wide"), "Hello World-Wide");
    }
}
