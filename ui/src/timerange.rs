//! Time ranges as pages carry them in their URLs (`from=now-1h&to=now`, or absolute
//! times), resolved to Unix seconds, and the UTC calendar arithmetic to print them.

/// Parses a Prometheus duration (`90s`, `1h30m`, `2d`, `500ms`) into seconds.
pub fn parse_duration(s: &str) -> Result<f64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let bad = || format!("invalid duration {s:?} (expected e.g. 30s, 5m, 1h30m, 2d)");
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            "y" => 31_536_000.0,
            _ => return Err(bad()),
        };
        total += n * unit;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Resolves a time as written in a URL: `now`, `now-15m`, Unix seconds, or an RFC 3339
/// time (`2026-11-22T10:00:00Z`, an offset, or a plain date, read as UTC).
pub fn parse_time(s: &str, now: f64) -> Result<f64, String> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Some(d) = s.strip_prefix("now-") {
        return Ok(now - parse_duration(d)?);
    }
    if let Ok(secs) = s.parse::<f64>()
        && secs.is_finite()
    {
        return Ok(secs);
    }
    parse_rfc3339(s).ok_or_else(|| {
        format!("invalid time {s:?} (expected now, now-1h, Unix seconds or 2026-01-31T12:00:00Z)")
    })
}

/// Unix seconds of an RFC 3339 time (`2026-11-22T10:00:00Z`, an offset, or a plain date,
/// read as UTC).
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let num = |t: &str| -> Option<i64> {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok())?
    };
    let (date, time) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    let mut d = date.splitn(3, '-');
    let (y, m, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if !(1..=12).contains(&m) || !(1..=days_in_month(y, m)).contains(&day) {
        return None;
    }
    let mut secs = (days_from_civil(y, m, day) * 86_400) as f64;
    if time.is_empty() {
        return Some(secs);
    }
    let (clock, offset) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, o) = time.split_at(i);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let (oh, om) = o[1..].split_once(':')?;
        (c, sign * (num(oh)? * 3600 + num(om)? * 60))
    } else {
        (time, 0)
    };
    let mut parts = clock.splitn(3, ':');
    let h = num(parts.next()?)?;
    let min = num(parts.next()?)?;
    let sec: f64 = match parts.next() {
        Some(p) => {
            let whole = p.split('.').next()?;
            num(whole)?;
            p.parse().ok()?
        }
        None => 0.0,
    };
    if h > 23 || min > 59 || !(0.0..61.0).contains(&sec) {
        return None;
    }
    secs += (h * 3600 + min * 60 - offset) as f64 + sec;
    Some(secs)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The UTC calendar date and time of Unix seconds: (year, month, day, hour, minute, second).
pub fn civil(ts: f64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = ts.floor() as i64;
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (tod / 3600) as u32,
        (tod % 3600 / 60) as u32,
        (tod % 60) as u32,
    )
}

/// `2026-11-22 10:04:05` (UTC).
pub fn format_time(ts: f64) -> String {
    let (y, mo, d, h, mi, s) = civil(ts);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// A duration in the largest whole units Prometheus would print (`1h30m`, `15s`, `250ms`).
pub fn format_duration(secs: f64) -> String {
    if secs <= 0.0 {
        return "0s".into();
    }
    let ms = (secs * 1000.0).round() as u64;
    if !ms.is_multiple_of(1000) && ms < 60_000 {
        return if ms >= 1000 {
            format!("{}s", ms as f64 / 1000.0)
        } else {
            format!("{ms}ms")
        };
    }
    let mut s = ms / 1000;
    let mut out = String::new();
    for (unit, len) in [
        ("w", 604_800),
        ("d", 86_400),
        ("h", 3600),
        ("m", 60),
        ("s", 1),
    ] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    out
}

/// Steps a graph may use, in seconds: round values so that points line up with clocks.
const NICE_STEPS: [f64; 20] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
    10_800.0, 21_600.0, 43_200.0, 86_400.0, 172_800.0, 604_800.0,
];

/// The step for a graph of `range` seconds drawn with about `points` points.
pub fn auto_step(range: f64, points: f64) -> f64 {
    let raw = range / points.max(1.0);
    NICE_STEPS
        .iter()
        .copied()
        .find(|s| *s >= raw)
        .unwrap_or_else(|| (raw / 86_400.0).ceil() * 86_400.0)
}

/// A resolved range: what a page queries and draws.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Range {
    pub start: f64,
    pub end: f64,
    pub step: f64,
}

/// Resolves `from`, `to` and an optional `step` (empty = automatic, about 250 points).
pub fn resolve(from: &str, to: &str, step: &str, now: f64) -> Result<Range, String> {
    let start = parse_time(from, now)?;
    let end = parse_time(to, now)?;
    if end <= start {
        return Err(format!("the range ends ({to}) before it starts ({from})"));
    }
    let step = if step.trim().is_empty() {
        auto_step(end - start, 250.0)
    } else {
        let s = match step.trim().parse::<f64>() {
            Ok(n) => n,
            Err(_) => parse_duration(step)?,
        };
        if s.is_nan() || s <= 0.0 {
            return Err(format!("step {step:?} must be a positive duration"));
        }
        s
    };
    Ok(Range { start, end, step })
}

/// The current time in Unix seconds.
pub fn now() -> f64 {
    #[cfg(all(target_arch = "wasm32", feature = "hydrate"))]
    {
        js_now()
    }
    #[cfg(not(all(target_arch = "wasm32", feature = "hydrate")))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }
}

#[cfg(all(target_arch = "wasm32", feature = "hydrate"))]
fn js_now() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| (p.time_origin() + p.now()) / 1000.0)
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(parse_duration("90s"), Ok(90.0));
        assert_eq!(parse_duration("1h30m"), Ok(5400.0));
        assert_eq!(parse_duration("2d"), Ok(172_800.0));
        assert_eq!(parse_duration("500ms"), Ok(0.5));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("m5").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("1.5h").is_err());
    }

    #[test]
    fn times_resolve_relative_unix_and_rfc3339() {
        let now = 1_763_800_000.0;
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(parse_time("now-1h", now), Ok(now - 3600.0));
        assert_eq!(parse_time("1700000000.5", now), Ok(1_700_000_000.5));
        assert_eq!(parse_time("1970-01-01T00:00:00Z", now), Ok(0.0));
        assert_eq!(parse_time("2026-11-22T10:00:00Z", now), Ok(1_795_341_600.0));
        assert_eq!(
            parse_time("2026-11-22T12:00:00+02:00", now),
            Ok(1_795_341_600.0)
        );
        assert_eq!(parse_time("2026-11-22 10:00:00", now), Ok(1_795_341_600.0));
        assert_eq!(
            parse_time("2026-11-22T10:00:00.25Z", now),
            Ok(1_795_341_600.25)
        );
        assert_eq!(parse_time("2026-11-22", now), Ok(1_795_305_600.0));
        assert_eq!(parse_time("2024-02-29T00:00:00Z", now), Ok(1_709_164_800.0));
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "yesterday",
            "now-",
            "now-5",
            "2026-11-22T25:00:00Z",
            "NaN",
            "inf",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn civil_dates_round_trip() {
        for ts in [
            0.0,
            951_782_400.0,
            1_709_164_800.0,
            1_795_341_845.0,
            -86_400.0,
            4_102_444_800.0,
        ] {
            let (y, mo, d, h, mi, s) = civil(ts);
            let back = days_from_civil(y, i64::from(mo), i64::from(d)) * 86_400
                + i64::from(h * 3600 + mi * 60 + s);
            assert_eq!(back as f64, ts);
        }
        assert_eq!(format_time(1_795_341_845.0), "2026-11-22 10:04:05");
        assert_eq!(format_time(-1.0), "1969-12-31 23:59:59");
    }

    #[test]
    fn durations_print_in_whole_units() {
        assert_eq!(format_duration(5400.0), "1h30m");
        assert_eq!(format_duration(15.0), "15s");
        assert_eq!(format_duration(0.25), "250ms");
        assert_eq!(format_duration(1.5), "1.5s");
        assert_eq!(format_duration(694_861.0), "1w1d1h1m1s");
    }

    #[test]
    fn steps_are_round_and_keep_about_the_asked_points() {
        assert_eq!(auto_step(3600.0, 250.0), 15.0);
        assert_eq!(auto_step(300.0, 250.0), 2.0);
        assert_eq!(auto_step(86_400.0, 250.0), 600.0);
        assert_eq!(auto_step(10.0, 250.0), 1.0);
        assert_eq!(auto_step(365.0 * 86_400.0, 250.0), 172_800.0);
        let r = resolve("now-1h", "now", "", 1000.0 * 3600.0).expect("valid");
        assert_eq!((r.end - r.start, r.step), (3600.0, 15.0));
        assert_eq!(
            resolve("now-1h", "now", "30s", 7200.0).map(|r| r.step),
            Ok(30.0)
        );
        assert_eq!(
            resolve("now-1h", "now", "7", 7200.0).map(|r| r.step),
            Ok(7.0)
        );
        assert!(resolve("now", "now-1h", "", 7200.0).is_err());
        assert!(resolve("now-1h", "now", "0", 7200.0).is_err());
        assert!(resolve("now-1h", "now", "-5", 7200.0).is_err());
    }
}
