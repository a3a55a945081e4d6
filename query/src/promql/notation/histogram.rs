//! Histogram literal arithmetic of the test scripts (`{{…}}+{{…}}xN` sequences),
//! like Prometheus' `FloatHistogram.Add/Sub`.

use super::{CUSTOM_BUCKETS_SCHEMA, HistogramLit};

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

/// Adds (or subtracts) bucket list `b` (first index `bo`) to `a` (first index
/// `ao`), aligning them by absolute bucket index.
fn add_buckets(ao: i32, a: &[f64], bo: i32, b: &[f64], sub: bool) -> (i32, Vec<f64>) {
    if b.is_empty() {
        return (ao, a.to_vec());
    }
    if a.is_empty() {
        return (bo, b.iter().map(|&v| op(0.0, v, sub)).collect());
    }
    let (ao64, bo64) = (i64::from(ao), i64::from(bo));
    let start = ao64.min(bo64);
    let end = (ao64 + a.len() as i64).max(bo64 + b.len() as i64);
    let mut out = vec![0.0; (end - start) as usize];
    let a_base = (ao64 - start) as usize;
    for (k, &v) in a.iter().enumerate() {
        out[a_base + k] += v;
    }
    let b_base = (bo64 - start) as usize;
    for (k, &v) in b.iter().enumerate() {
        let slot = &mut out[b_base + k];
        *slot = op(*slot, v, sub);
    }
    (start as i32, out)
}

/// Lowers the resolution of a bucket list by `delta` schema steps: bucket `i`
/// goes to `((i - 1) >> delta) + 1`.
fn reduce_buckets(offset: i32, vals: &[f64], delta: u32) -> (i32, Vec<f64>) {
    if vals.is_empty() || delta == 0 {
        return (offset, vals.to_vec());
    }
    let target = |idx: i64| ((idx - 1) >> delta) + 1;
    let first = target(i64::from(offset));
    let mut out: Vec<f64> = Vec::new();
    for (k, &v) in vals.iter().enumerate() {
        let pos = (target(i64::from(offset) + k as i64) - first) as usize;
        if out.len() <= pos {
            out.resize(pos + 1, 0.0);
        }
        out[pos] += v;
    }
    (first as i32, out)
}

/// Raises the zero threshold to `thr`, moving buckets whose upper bound is at
/// most `thr` into the zero bucket (simplified version of Prometheus'
/// `zeroCountForLargerThreshold`).
fn widen_zero_bucket(h: &mut HistogramLit, thr: f64) {
    if h.zero_threshold >= thr {
        return;
    }
    let factor = 2f64.powi(-h.schema);
    let upper = |idx: i64| (idx as f64 * factor).exp2();
    let mut moved = 0usize;
    for (k, &v) in h.positive.iter().enumerate() {
        if upper(i64::from(h.offset) + k as i64) <= thr {
            h.zero_count += v;
            moved += 1;
        } else {
            break;
        }
    }
    h.positive = h.positive.split_off(moved);
    h.offset += moved as i32;
    let mut moved = 0usize;
    for (k, &v) in h.negative.iter().enumerate() {
        if upper(i64::from(h.n_offset) + k as i64) <= thr {
            h.zero_count += v;
            moved += 1;
        } else {
            break;
        }
    }
    h.negative = h.negative.split_off(moved);
    h.n_offset += moved as i32;
    h.zero_threshold = thr;
}
