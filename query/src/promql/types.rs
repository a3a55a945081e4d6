//! Values flowing through evaluation, and query results.

use std::sync::Arc;

use signalbox_storage::{Histogram, Labels, StartTime};

pub(crate) const METRIC_NAME: &str = "__name__";

/// One element of an instant vector. `drop_name` marks a sample whose metric name is
/// removed when the query result is produced (delayed name removal). A native histogram
/// sample has `h` set, and its `f` is not used.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    pub(crate) labels: Arc<Labels>,
    pub(crate) f: f64,
    pub(crate) h: Option<Arc<Histogram>>,
    pub(crate) drop_name: bool,
}

impl Sample {
    pub(crate) fn value(&self) -> Value {
        match &self.h {
            Some(h) => Value::Histogram(h.clone()),
            None => Value::Float(self.f),
        }
    }
}

/// A sample's value in a query result: a float or a native histogram.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Float(f64),
    Histogram(Arc<Histogram>),
}

impl Value {
    /// The float, or `None` for a histogram.
    pub fn float(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Histogram(_) => None,
        }
    }
}

/// The value of an expression at one evaluation step.
#[derive(Clone, Debug)]
pub(crate) enum Instant {
    Scalar(f64),
    Vector(Vec<Sample>),
    String(String),
}

/// A series with samples over time, as a range vector argument holds it: float points
/// and native histogram points, each sorted by time.
#[derive(Clone, Debug)]
pub(crate) struct RangeSeries {
    pub(crate) labels: Arc<Labels>,
    pub(crate) points: Vec<(i64, f64)>,
    pub(crate) hists: Vec<(i64, Arc<Histogram>)>,
    pub(crate) starts: Starts,
    pub(crate) drop_name: bool,
}

/// The start times (0: unknown) of a series' float points and histogram points, by
/// index; both empty when it has none (only a selector's series can have them: a
/// subquery's points are computed).
#[derive(Clone, Debug, Default)]
pub(crate) struct Starts {
    pub(crate) points: Vec<i64>,
    pub(crate) hists: Vec<i64>,
}

impl Starts {
    /// The start times of `points` and `hists` from a time-sorted list of them.
    pub(crate) fn of(
        starts: &[StartTime],
        points: &[(i64, f64)],
        hists: &[(i64, Arc<Histogram>)],
    ) -> Starts {
        if starts.is_empty() {
            return Starts::default();
        }
        let along = |times: &mut dyn Iterator<Item = i64>| {
            let mut k = 0;
            times
                .map(|t| {
                    while k < starts.len() && starts[k].t < t {
                        k += 1;
                    }
                    starts.get(k).filter(|s| s.t == t).map_or(0, |s| s.st)
                })
                .collect()
        };
        Starts {
            points: along(&mut points.iter().map(|p| p.0)),
            hists: along(&mut hists.iter().map(|p| p.0)),
        }
    }

    /// The start times of the float points `lo..hi` (empty when none are known).
    pub(crate) fn of_points(&self, (lo, hi): (usize, usize)) -> &[i64] {
        self.points.get(lo..hi).unwrap_or(&[])
    }

    /// The start times of the histogram points `lo..hi` (empty when none are known).
    pub(crate) fn of_hists(&self, (lo, hi): (usize, usize)) -> &[i64] {
        self.hists.get(lo..hi).unwrap_or(&[])
    }
}

/// A range vector evaluated at each step: the series, and per step the window
/// `(start, end]` (milliseconds) that step looks at.
#[derive(Clone, Debug)]
pub(crate) struct RangeInput {
    pub(crate) series: Vec<RangeSeries>,
    pub(crate) windows: Vec<(i64, i64)>,
}

impl RangeSeries {
    /// Float points in `(start, end]`.
    pub(crate) fn window(&self, w: (i64, i64)) -> &[(i64, f64)] {
        in_window(&self.points, w)
    }

    /// Float and histogram points in `(start, end]`, merged in time order.
    pub(crate) fn values_in(&self, w: (i64, i64)) -> Vec<(i64, Value)> {
        let mut out: Vec<(i64, Value)> = self
            .window(w)
            .iter()
            .map(|(t, f)| (*t, Value::Float(*f)))
            .chain(
                self.hist_window(w)
                    .iter()
                    .map(|(t, h)| (*t, Value::Histogram(h.clone()))),
            )
            .collect();
        out.sort_by_key(|p| p.0);
        out
    }

    /// Histogram points in `(start, end]`.
    pub(crate) fn hist_window(&self, w: (i64, i64)) -> &[(i64, Arc<Histogram>)] {
        in_window(&self.hists, w)
    }
}

/// Finds the points of one time-sorted list in a sequence of windows `(start, end]`.
/// Steps move their windows forward, so each is found by moving on from the last one
/// (linear in the points over all steps, and cache-friendly where a binary search per
/// window is not); a window that moves back is found by binary search.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cursor {
    lo: usize,
    hi: usize,
    last: Option<(i64, i64)>,
}

impl Cursor {
    /// Moves to window `w` of `points`, each at time `time(p)`; gives the index range.
    fn seek<T>(&mut self, points: &[T], time: impl Fn(&T) -> i64, w: (i64, i64)) -> (usize, usize) {
        match self.last {
            Some(l) if l.0 <= w.0 && l.1 <= w.1 => {
                while self.lo < points.len() && time(&points[self.lo]) <= w.0 {
                    self.lo += 1;
                }
                while self.hi < points.len() && time(&points[self.hi]) <= w.1 {
                    self.hi += 1;
                }
            }
            _ => {
                self.lo = points.partition_point(|p| time(p) <= w.0);
                self.hi = points.partition_point(|p| time(p) <= w.1);
            }
        }
        self.last = Some(w);
        (self.lo, self.hi.max(self.lo))
    }

    /// The index range of the points in window `w`.
    pub(crate) fn span<T>(&mut self, points: &[(i64, T)], w: (i64, i64)) -> (usize, usize) {
        self.seek(points, |p| p.0, w)
    }

    /// The number of points at or before `t`, each at time `time(p)`.
    pub(crate) fn upto<T>(&mut self, points: &[T], time: impl Fn(&T) -> i64, t: i64) -> usize {
        self.seek(points, time, (i64::MIN, t)).1
    }
}

/// The points of a time-sorted list in `(start, end]`.
fn in_window<T>(points: &[(i64, T)], (start, end): (i64, i64)) -> &[(i64, T)] {
    let lo = points.partition_point(|p| p.0 <= start);
    let hi = points.partition_point(|p| p.0 <= end);
    if lo >= hi { &[] } else { &points[lo..hi] }
}

/// What a query returns.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryValue {
    Scalar {
        t: i64,
        v: f64,
    },
    String {
        t: i64,
        v: String,
    },
    /// Instant vector: labels, time, value.
    Vector(Vec<(Labels, i64, Value)>),
    /// Range vector: labels and points, sorted by labels.
    Matrix(Vec<(Labels, Vec<(i64, Value)>)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    pub value: QueryValue,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

/// Label operations on the storage's label sets.
/// Labels removed together with the metric name: its type and unit go with it.
pub(crate) const NAME_LABELS: [&str; 3] = [METRIC_NAME, "__type__", "__unit__"];

pub(crate) fn without_name(l: &Labels) -> Labels {
    Labels::from_pairs(
        l.iter()
            .filter(|x| !NAME_LABELS.contains(&x.name.as_str()))
            .map(|x| (x.name.clone(), x.value.clone())),
    )
}

pub(crate) fn keep_only(l: &Labels, names: &[String]) -> Labels {
    Labels::from_pairs(
        l.iter()
            .filter(|x| names.contains(&x.name))
            .map(|x| (x.name.clone(), x.value.clone())),
    )
}

pub(crate) fn remove(l: &Labels, names: &[String]) -> Labels {
    Labels::from_pairs(
        l.iter()
            .filter(|x| !names.contains(&x.name))
            .map(|x| (x.name.clone(), x.value.clone())),
    )
}

pub(crate) fn with_label(l: &Labels, name: &str, value: &str) -> Labels {
    Labels::from_pairs(
        l.iter()
            .filter(|x| x.name != name)
            .map(|x| (x.name.clone(), x.value.clone()))
            .chain(std::iter::once((name.to_string(), value.to_string()))),
    )
}

/// The labels a sample is reported with: without its name when marked for dropping.
pub(crate) fn final_labels(s: &Sample) -> Labels {
    if s.drop_name {
        without_name(&s.labels)
    } else {
        (*s.labels).clone()
    }
}

/// Number formatting for label values (`count_values`): shortest round-trip decimal
/// without exponent, like Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
pub(crate) fn format_value(v: f64) -> String {
    NumText::new(v, Layout::Decimal).as_str().to_string()
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: shortest digits, at least two exponent
/// digits (`1.5e-07`).
pub(crate) fn format_exp(v: f64) -> String {
    NumText::new(v, Layout::Exponent).as_str().to_string()
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Layout {
    /// `123.25`, `0.000015`, `1000000`.
    Decimal,
    /// `1.2325e+02`.
    Exponent,
}

/// A float's shortest round-trip text, written on the stack (results format millions of
/// values; only a decimal layout of a very large or small number goes to the heap). NaN
/// is `NaN` and infinities are `+Inf` and `-Inf`, in either layout.
pub(crate) struct NumText {
    buf: [u8; 40],
    len: usize,
    long: Option<String>,
}

impl NumText {
    pub(crate) fn new(v: f64, layout: Layout) -> NumText {
        let mut t = NumText {
            buf: [0; 40],
            len: 0,
            long: None,
        };
        if v.is_nan() {
            t.push(b"NaN");
        } else if v.is_infinite() {
            t.push(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        } else if v == 0.0 {
            t.push(if v.is_sign_negative() { b"-0" } else { b"0" });
            if layout == Layout::Exponent {
                t.push(b"e+00");
            }
        } else {
            let mut r = ryu::Buffer::new();
            let (digits, n, point) = decimal_digits(r.format_finite(v.abs()));
            let digits = &digits[..n];
            let n = n as i32;
            let need = match layout {
                Layout::Decimal if point <= 0 => 3 + n - point,
                Layout::Decimal => 2 + n.max(point),
                Layout::Exponent => 0,
            };
            if need > t.buf.len() as i32 {
                t.long = Some(String::with_capacity(need as usize));
            }
            if v < 0.0 {
                t.push(b"-");
            }
            match layout {
                Layout::Decimal if point <= 0 => {
                    t.push(b"0.");
                    t.zeros(-point);
                    t.push(digits);
                }
                Layout::Decimal if point >= n => {
                    t.push(digits);
                    t.zeros(point - n);
                }
                Layout::Decimal => {
                    t.push(&digits[..point as usize]);
                    t.push(b".");
                    t.push(&digits[point as usize..]);
                }
                Layout::Exponent => {
                    t.push(&digits[..1]);
                    if n > 1 {
                        t.push(b".");
                        t.push(&digits[1..]);
                    }
                    let e = point - 1;
                    t.push(if e < 0 { b"e-" } else { b"e+" });
                    let e = e.unsigned_abs();
                    if e >= 100 {
                        t.push(&[b'0' + (e / 100) as u8]);
                    }
                    t.push(&[b'0' + (e / 10 % 10) as u8, b'0' + (e % 10) as u8]);
                }
            }
        }
        t
    }

    fn push(&mut self, b: &[u8]) {
        match &mut self.long {
            // Only ASCII is written.
            Some(l) => l.push_str(std::str::from_utf8(b).unwrap_or_default()),
            None => {
                self.buf[self.len..self.len + b.len()].copy_from_slice(b);
                self.len += b.len();
            }
        }
    }

    fn zeros(&mut self, n: i32) {
        for _ in 0..n {
            self.push(b"0");
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match &self.long {
            Some(l) => l,
            // Only ASCII is written.
            None => std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default(),
        }
    }
}

/// The significant digits of ryu's text of a positive finite float (`123.45`, `0.001`,
/// `1.5e-7`, `1e21`, `100.0`; at most 17 digits) and the position of the decimal point
/// relative to them: the value is `0.<digits> × 10^point`.
fn decimal_digits(s: &str) -> ([u8; 24], usize, i32) {
    let (mantissa, exp) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (s, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits = [0u8; 24];
    let mut n = 0;
    let mut point = int.len() as i32 + exp;
    for d in int.bytes().chain(frac.bytes()) {
        if n == 0 && d == b'0' {
            point -= 1;
        } else if n < digits.len() {
            digits[n] = d;
            n += 1;
        }
    }
    while n > 0 && digits[n - 1] == b'0' {
        n -= 1;
    }
    (digits, n, point)
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)` (and `%g`): exponent form below 1e-4 and
/// from 1e6 (in shortest digits), plain decimal otherwise.
pub(crate) fn format_g(v: f64) -> String {
    if !v.is_finite() || v == 0.0 {
        return format_value(v);
    }
    let (_, _, point) = decimal_digits(ryu::Buffer::new().format_finite(v.abs()));
    let exp = point - 1;
    if !(-4..6).contains(&exp) {
        format_exp(v)
    } else {
        format_value(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cursor finds what a binary search per window finds, over windows that move
    /// forward (as steps), stand still (`@`), jump, and move back.
    #[test]
    fn a_cursor_finds_each_window_as_a_search_does() {
        let points: Vec<(i64, f64)> = [0, 15, 30, 30, 45, 90, 91, 300, 301, 302, 900]
            .iter()
            .map(|&t| (t, t as f64))
            .collect();
        let mut seed = 7u64;
        let mut next = |n: i64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as i64 % n
        };
        for round in 0..200 {
            let (mut c, mut u) = (Cursor::default(), Cursor::default());
            let mut end = next(100) - 50;
            for _ in 0..40 {
                let range = 1 + next(120);
                let w = (end - range, end);
                let want = in_window(&points, w);
                let (lo, hi) = c.span(&points, w);
                assert_eq!(&points[lo..hi], want, "round {round}, window {w:?}");
                let n = want.len() + points.partition_point(|p| p.0 <= w.0);
                assert_eq!(u.upto(&points, |p| p.0, end), n);
                end += match next(10) {
                    0 => -next(200),
                    1 => 0,
                    2 => next(600),
                    _ => next(40),
                };
            }
        }
        assert_eq!(
            Cursor::default().span(&[] as &[(i64, f64)], (0, 10)),
            (0, 0)
        );
    }

    /// The stack formatter writes shortest round-trip digits laid out as Go does. Where
    /// two shortest texts are equally near (a tie), Go and ryu take the even digit and
    /// Rust's `Display` the upper one, so Rust's text is the oracle only for length.
    #[test]
    fn numbers_are_written_as_go_writes_them() {
        // Written by Prometheus 2.42 for these scalars.
        let go = [
            (1284187714123411.0 + 0.25, "1284187714123411.2"),
            (-1284187714123411.0 - 0.25, "-1284187714123411.2"),
            (123456789012345678.0, "123456789012345680"),
            (1e21, "1000000000000000000000"),
            (0.000001, "0.000001"),
        ];
        for (v, want) in go {
            assert_eq!(format_value(v), want);
        }
        assert_eq!(format_value(5e-324), format!("0.{}5", "0".repeat(323)));
        let mut seed = 11u64;
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            100.0,
            1e21,
            1e-7,
            123.456,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            1.5e300,
            2.5e-300,
            1e100,
        ];
        for i in 0..20_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = f64::from_bits(seed);
            if v.is_finite() {
                values.push(v);
            }
            // Values of everyday size, and whole numbers.
            values.push((seed >> 40) as f64 / 1000.0);
            values.push(i as f64);
        }
        for v in values {
            let d = NumText::new(v, Layout::Decimal);
            let e = NumText::new(v, Layout::Exponent);
            assert_eq!(d.as_str().parse::<f64>().ok(), Some(v), "{v:e}");
            assert_eq!(e.as_str().parse::<f64>().ok(), Some(v), "{v:e}");
            assert_eq!(d.as_str().len(), format!("{v}").len(), "{v:e}");
            // Go's exponent: a sign and at least two digits.
            let exp = e.as_str().split_once('e').map(|x| x.1).unwrap_or_default();
            assert!(
                exp.len() >= 3 && exp.starts_with(['+', '-']),
                "{}",
                e.as_str()
            );
        }
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_exp(f64::INFINITY), "+Inf");
        assert_eq!(format_exp(1.5e-7), "1.5e-07");
        assert_eq!(format_exp(-2e300), "-2e+300");
        assert_eq!(format_exp(0.0), "0e+00");
        assert_eq!(format_exp(1.0), "1e+00");
        assert_eq!(format_exp(1e21), "1e+21");
        assert_eq!(format_exp(-1.25e-100), "-1.25e-100");
    }
}
