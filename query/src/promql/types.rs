//! Values flowing through evaluation, and query results.

use std::sync::Arc;

use signalbox_storage::{Histogram, Labels};

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
    pub(crate) drop_name: bool,
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
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)` for a finite `v`: the shortest digits and
/// an exponent with its sign and at least two digits (`1.5e-07`).
pub(crate) fn format_exp(v: f64) -> String {
    let s = format!("{v:e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let (sign, digits) = match e.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', e),
    };
    format!("{m}e{sign}{digits:0>2}")
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)` (and `%g`): exponent form below 1e-4 and
/// from 1e6 (in shortest digits), plain decimal otherwise.
pub(crate) fn format_g(v: f64) -> String {
    if !v.is_finite() || v == 0.0 {
        return format_value(v);
    }
    let exp = format!("{v:e}")
        .split_once('e')
        .and_then(|(_, e)| e.parse::<i32>().ok())
        .unwrap_or(0);
    if !(-4..6).contains(&exp) {
        format_exp(v)
    } else {
        format_value(v)
    }
}
