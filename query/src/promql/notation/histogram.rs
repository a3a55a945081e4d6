//! Histogram literal arithmetic of the test scripts (`{{…}}+{{…}}xN` sequences): the
//! engine's histogram addition, with the literal's counter-reset hint.

use signalbox_storage::{Buckets, Histogram, ResetHint};

use super::{CUSTOM_BUCKETS_SCHEMA, HistogramLit};
use crate::promql::histogram::combine;

impl HistogramLit {
    /// The literal as a stored histogram (an absent hint is `Unknown`).
    pub fn to_histogram(&self) -> Histogram {
        Histogram {
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: self.zero_count,
            count: self.count,
            sum: self.sum,
            positive: Buckets {
                offset: self.offset,
                counts: self.positive.clone(),
            },
            negative: Buckets {
                offset: self.n_offset,
                counts: self.negative.clone(),
            },
            custom_values: self.custom_values.clone(),
            hint: self.counter_reset_hint.unwrap_or_default(),
        }
    }

    fn from_histogram(h: Histogram, counter_reset_hint: Option<ResetHint>) -> HistogramLit {
        HistogramLit {
            schema: h.schema,
            sum: h.sum,
            count: h.count,
            zero_count: h.zero_count,
            zero_threshold: h.zero_threshold,
            positive: h.positive.counts,
            offset: h.positive.offset,
            negative: h.negative.counts,
            n_offset: h.negative.offset,
            custom_values: h.custom_values,
            counter_reset_hint,
        }
    }
}

/// `a + b` (or `a - b`), like Prometheus' `FloatHistogram.Add/Sub`. `b`'s schema must
/// not be lower than `a`'s, and custom bounds must be the same.
pub(super) fn combine_histograms(
    a: &HistogramLit,
    b: &HistogramLit,
    sub: bool,
) -> Result<HistogramLit, String> {
    let exponential = a.schema != CUSTOM_BUCKETS_SCHEMA && b.schema != CUSTOM_BUCKETS_SCHEMA;
    if exponential && a.schema > b.schema {
        return Err(format!(
            "cannot merge from schema {} to {}",
            b.schema, a.schema
        ));
    }
    match combine(&a.to_histogram(), &b.to_histogram(), sub) {
        None => Err("cannot combine a custom-bucket histogram with an exponential one".into()),
        Some((_, true)) => {
            Err("cannot combine custom-bucket histograms with different bounds".into())
        }
        Some((h, false)) => Ok(HistogramLit::from_histogram(
            h,
            combine_hints(a.counter_reset_hint, b.counter_reset_hint),
        )),
    }
}

/// Counter-reset hint of a sum, following Prometheus' rules (absent = unknown).
fn combine_hints(a: Option<ResetHint>, b: Option<ResetHint>) -> Option<ResetHint> {
    match (a, b) {
        (None, None) => None,
        _ => Some(a.unwrap_or_default().added(b.unwrap_or_default()).0),
    }
}
