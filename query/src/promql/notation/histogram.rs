//! Histogram literal arithmetic of the test scripts (`{{…}}+{{…}}xN` sequences),
//! like Prometheus' `FloatHistogram.Add/Sub`.

use super::{CUSTOM_BUCKETS_SCHEMA, HistogramLit};
use crate::promql::histogram::{add_buckets, reduce_buckets, widen_zero};

fn op(x: f64, y: f64, sub: bool) -> f64 {
    if sub { x - y } else { x + y }
}

/// `a + b` (or `a - b`) bucket-wise, like Prometheus' `FloatHistogram.Add/Sub`.
/// `b` is reduced to `a`'s schema (its schema must not be lower).
pub(super) fn combine_histograms(
    a: &HistogramLit,
    b: &HistogramLit,
    sub: bool,
) -> Result<HistogramLit, String> {
    let a_custom = a.schema == CUSTOM_BUCKETS_SCHEMA;
    let b_custom = b.schema == CUSTOM_BUCKETS_SCHEMA;
    if a_custom != b_custom {
        return Err("cannot combine a custom-bucket histogram with an exponential one".to_string());
    }
    let mut a = a.clone();
    let mut b = b.clone();
    if a_custom {
        if a.custom_values != b.custom_values {
            return Err(
                "cannot combine custom-bucket histograms with different bounds".to_string(),
            );
        }
    } else {
        if a.schema > b.schema {
            return Err(format!(
                "cannot merge from schema {} to {}",
                b.schema, a.schema
            ));
        }
        if b.schema > a.schema {
            let delta = (b.schema - a.schema) as u32;
            (b.offset, b.positive) = reduce_buckets(b.offset, &b.positive, delta);
            (b.n_offset, b.negative) = reduce_buckets(b.n_offset, &b.negative, delta);
            b.schema = a.schema;
        }
        if a.zero_threshold != b.zero_threshold {
            let thr = a.zero_threshold.max(b.zero_threshold);
            widen_zero_bucket(&mut a, thr);
            widen_zero_bucket(&mut b, thr);
        }
    }
    let (offset, positive) = add_buckets(a.offset, &a.positive, b.offset, &b.positive, sub);
    let (n_offset, negative) = add_buckets(a.n_offset, &a.negative, b.n_offset, &b.negative, sub);
    let counter_reset_hint = combine_hints(
        a.counter_reset_hint.as_deref(),
        b.counter_reset_hint.as_deref(),
    );
    Ok(HistogramLit {
        schema: a.schema,
        sum: op(a.sum, b.sum, sub),
        count: op(a.count, b.count, sub),
        zero_count: op(a.zero_count, b.zero_count, sub),
        zero_threshold: a.zero_threshold,
        positive,
        offset,
        negative,
        n_offset,
        custom_values: a.custom_values,
        counter_reset_hint,
    })
}

/// Counter-reset hint of a sum, following Prometheus' rules (absent = unknown).
fn combine_hints(a: Option<&str>, b: Option<&str>) -> Option<String> {
    let ha = a.unwrap_or("unknown");
    let hb = b.unwrap_or("unknown");
    if ha == hb {
        return a.or(b).map(str::to_string);
    }
    if ha == "gauge" || hb == "gauge" {
        return Some("gauge".to_string());
    }
    Some("unknown".to_string())
}

/// Raises the zero threshold to `thr`, moving buckets whose upper bound is at most
/// `thr` into the zero bucket.
fn widen_zero_bucket(h: &mut HistogramLit, thr: f64) {
    if h.zero_threshold >= thr {
        return;
    }
    widen_zero(
        h.schema,
        thr,
        &mut h.zero_count,
        &mut h.offset,
        &mut h.positive,
    );
    widen_zero(
        h.schema,
        thr,
        &mut h.zero_count,
        &mut h.n_offset,
        &mut h.negative,
    );
    h.zero_threshold = thr;
}
