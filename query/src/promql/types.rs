//! Values flowing through evaluation, and query results.

use std::sync::Arc;

use signalbox_storage::Labels;

pub(crate) const METRIC_NAME: &str = "__name__";

/// One element of an instant vector. `drop_name` marks a sample whose metric name is
/// removed when the query result is produced (delayed name removal).
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    pub(crate) labels: Arc<Labels>,
    pub(crate) f: f64,
    pub(crate) drop_name: bool,
}

/// The value of an expression at one evaluation step.
#[derive(Clone, Debug)]
pub(crate) enum Instant {
    Scalar(f64),
    Vector(Vec<Sample>),
    String(String),
}

/// A series with samples over time, as a range vector argument holds it.
#[derive(Clone, Debug)]
pub(crate) struct RangeSeries {
    pub(crate) labels: Arc<Labels>,
    pub(crate) points: Vec<(i64, f64)>,
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
    /// Points in `(start, end]`.
    pub(crate) fn window(&self, (start, end): (i64, i64)) -> &[(i64, f64)] {
        let lo = self.points.partition_point(|p| p.0 <= start);
        let hi = self.points.partition_point(|p| p.0 <= end);
        if lo >= hi { &[] } else { &self.points[lo..hi] }
    }
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
    Vector(Vec<(Labels, i64, f64)>),
    /// Range vector: labels and points, sorted by labels.
    Matrix(Vec<(Labels, Vec<(i64, f64)>)>),
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
