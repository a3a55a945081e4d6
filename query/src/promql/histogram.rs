//! Native histogram arithmetic for evaluation, for exponential and custom-bucket
//! histograms: sums and differences across resolutions, zero buckets and bounds,
//! scaling, counter-reset detection, the bucket list with bounds, and the statistics the
//! `histogram_*` functions return.

use signalbox_storage::{Buckets, CUSTOM_BUCKETS_SCHEMA, Histogram, ResetHint};

/// Info added when custom bucket bounds had to be reconciled; `during` names the
/// operation: addition, subtraction or aggregation.
pub(crate) fn reconciled_info(during: &str) -> String {
    format!("PromQL info: mismatched custom buckets were reconciled during {during}")
}

/// Warning for a mix of exponential and custom-bucket histograms of a metric.
pub(crate) fn mixed_schemas_warning(metric: &str) -> String {
    format!(
        "PromQL warning: vector contains a mix of histograms with exponential and custom buckets schemas for metric name {metric:?}"
    )
}

/// Warning for a window (or step) holding both floats and histograms of a metric.
pub(crate) fn mixed_floats_warning(metric: &str) -> String {
    format!("PromQL warning: encountered a mix of histograms and floats for metric name {metric:?}")
}

/// Warning for a counter function (`rate`, `increase`, `irate`) over gauge histograms.
pub(crate) fn not_counter_warning(metric: &str) -> String {
    format!("PromQL warning: this native histogram metric is not a counter: {metric:?}")
}

/// Warning for histograms of which one says a counter reset happened and another says
/// none did; `during` names the operation: addition, subtraction or aggregation.
pub(crate) fn reset_collision_warning(during: &str) -> String {
    format!("PromQL warning: conflicting counter resets during histogram {during}")
}

/// Warning for a gauge function (`delta`, `idelta`) over counter histograms.
pub(crate) fn not_gauge_warning(metric: &str) -> String {
    format!("PromQL warning: this native histogram metric is not a gauge: {metric:?}")
}

fn add_or_sub(x: f64, y: f64, sub: bool) -> f64 {
    if sub { x - y } else { x + y }
}

/// One bucket: bounds, count, and whether each bound belongs to it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub count: f64,
    pub lower_inclusive: bool,
    pub upper_inclusive: bool,
}

impl Bucket {
    /// Prometheus' boundary rule number of the JSON encoding: 0 `(l, u]`, 1 `[l, u)`,
    /// 2 `(l, u)`, 3 `[l, u]`.
    pub fn boundary_rule(&self) -> u8 {
        match (self.lower_inclusive, self.upper_inclusive) {
            (false, true) => 0,
            (true, false) => 1,
            (false, false) => 2,
            (true, true) => 3,
        }
    }
}

/// Upper bound of positive bucket `idx` at `schema`: `2^(idx * 2^-schema)`.
pub(crate) fn upper_bound(idx: i64, schema: i32) -> f64 {
    if schema <= 0 {
        // Exact powers of two.
        let shift = (-schema).min(62) as u32;
        let e = idx.saturating_mul(1i64 << shift);
        return 2f64.powi(e.clamp(-1100, 1100) as i32);
    }
    (idx as f64 / f64::from(1u32 << schema.min(30))).exp2()
}

/// Every bucket from the lowest to the highest: negative buckets (most negative first),
/// the zero bucket, then the positive buckets. Empty buckets are included.
pub fn all_buckets(h: &Histogram) -> Vec<Bucket> {
    let mut out = Vec::with_capacity(h.positive.counts.len() + h.negative.counts.len() + 1);
    let neg = &h.negative;
    for (k, &count) in neg.counts.iter().enumerate().rev() {
        let idx = i64::from(neg.offset) + k as i64;
        out.push(Bucket {
            lower: -upper_bound(idx, h.schema),
            // A bucket reaching into the zero bucket ends where that begins.
            upper: (-upper_bound(idx - 1, h.schema)).min(-h.zero_threshold),
            count,
            lower_inclusive: true,
            upper_inclusive: false,
        });
    }
    if h.zero_threshold != 0.0 || h.zero_count != 0.0 {
        out.push(Bucket {
            lower: -h.zero_threshold,
            upper: h.zero_threshold,
            count: h.zero_count,
            lower_inclusive: true,
            upper_inclusive: true,
        });
    }
    let pos = &h.positive;
    for (k, &count) in pos.counts.iter().enumerate() {
        let idx = i64::from(pos.offset) + k as i64;
        let (lower, upper) = if h.uses_custom_buckets() {
            (custom_bound(h, idx - 1), custom_bound(h, idx))
        } else {
            let lower = upper_bound(idx - 1, h.schema).max(h.zero_threshold);
            (lower, upper_bound(idx, h.schema))
        };
        out.push(Bucket {
            lower,
            upper,
            count,
            // The first custom bucket starts at -Inf, included.
            lower_inclusive: lower == f64::NEG_INFINITY,
            upper_inclusive: true,
        });
    }
    out
}

/// Upper bound of custom bucket `idx`: `-Inf` below the first, `+Inf` for the last.
pub(crate) fn custom_bound(h: &Histogram, idx: i64) -> f64 {
    if idx < 0 {
        return f64::NEG_INFINITY;
    }
    h.custom_values
        .get(idx as usize)
        .copied()
        .unwrap_or(f64::INFINITY)
}

/// The custom bounds two histograms have in common.
fn shared_bounds(a: &Histogram, b: &Histogram) -> Vec<f64> {
    a.custom_values
        .iter()
        .filter(|v| b.custom_values.contains(v))
        .copied()
        .collect()
}

/// The counts of a custom-bucket histogram regrouped onto `bounds`, a subset of its own
/// bounds: each bucket goes to the first bound at or above its upper bound (or +Inf).
fn rebucket(h: &Histogram, bounds: &[f64]) -> Buckets {
    let mut counts = vec![0.0; bounds.len() + 1];
    for (k, &c) in h.positive.counts.iter().enumerate() {
        let upper = custom_bound(h, i64::from(h.positive.offset) + k as i64);
        counts[bounds.partition_point(|b| *b < upper)] += c;
    }
    Buckets { offset: 0, counts }
}

/// Adds (or subtracts) bucket list `b` (first index `bo`) to `a` (first index `ao`),
/// aligning them by absolute bucket index.
fn add_buckets(ao: i32, a: &[f64], bo: i32, b: &[f64], sub: bool) -> (i32, Vec<f64>) {
    if b.is_empty() {
        return (ao, a.to_vec());
    }
    if a.is_empty() {
        return (bo, b.iter().map(|&v| add_or_sub(0.0, v, sub)).collect());
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
        *slot = add_or_sub(*slot, v, sub);
    }
    (start as i32, out)
}

/// Lowers the resolution of a bucket list by `delta` schema steps: bucket `i` goes to
/// `((i - 1) >> delta) + 1`.
fn reduce_buckets(offset: i32, vals: &[f64], delta: u32) -> (i32, Vec<f64>) {
    if vals.is_empty() || delta == 0 {
        return (offset, vals.to_vec());
    }
    let delta = delta.min(62);
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

fn reduced(b: &Buckets, delta: u32) -> Buckets {
    let (offset, counts) = reduce_buckets(b.offset, &b.counts, delta);
    Buckets { offset, counts }
}

fn added(a: &Buckets, b: &Buckets, sub: bool) -> Buckets {
    let (offset, counts) = add_buckets(a.offset, &a.counts, b.offset, &b.counts, sub);
    Buckets { offset, counts }
}

/// `h` at a lower resolution `schema` (no change when it is not lower).
pub fn to_schema(h: &Histogram, schema: i32) -> Histogram {
    if schema >= h.schema || h.uses_custom_buckets() || schema == CUSTOM_BUCKETS_SCHEMA {
        return h.clone();
    }
    let delta = (h.schema - schema) as u32;
    Histogram {
        schema,
        positive: reduced(&h.positive, delta),
        negative: reduced(&h.negative, delta),
        ..h.clone()
    }
}

/// Prometheus' widening of a zero bucket to at least `thr`: the zero count with every
/// bucket whose lower end (in magnitude) is below the threshold, and the threshold
/// reached, raised to the outer end of a populated bucket it would cut through.
fn zero_count_for_threshold(h: &Histogram, mut thr: f64) -> (f64, f64) {
    if thr <= h.zero_threshold {
        return (h.zero_count, h.zero_threshold);
    }
    let bound = |offset: i32, k: usize| {
        let idx = i64::from(offset) + k as i64;
        (upper_bound(idx - 1, h.schema), upper_bound(idx, h.schema))
    };
    // Adds the buckets of one side lying in the zero bucket to `zc`; the threshold
    // raised to the outer end of a populated bucket it cuts through, if it does.
    let absorb = |b: &Buckets, zc: &mut f64, thr: f64| -> Option<f64> {
        for (k, &c) in b.counts.iter().enumerate() {
            let (inner, outer) = bound(b.offset, k);
            if inner >= thr {
                break;
            }
            *zc += c;
            if outer > thr {
                return (c != 0.0).then_some(outer);
            }
        }
        None
    };
    loop {
        let mut zc = h.zero_count;
        if let Some(t) = absorb(&h.positive, &mut zc, thr) {
            thr = t;
        }
        // A raise on the negative side means looking at the positive side again.
        match absorb(&h.negative, &mut zc, thr) {
            Some(t) => thr = t,
            None => return (zc, thr),
        }
    }
}

/// `h` with its zero bucket widened to at least `thr` (see `zero_count_for_threshold`),
/// without the buckets now inside it.
fn with_zero_threshold(mut h: Histogram, thr: f64) -> Histogram {
    if h.zero_threshold >= thr || h.uses_custom_buckets() {
        return h;
    }
    let (zc, thr) = zero_count_for_threshold(&h, thr);
    for b in [&mut h.positive, &mut h.negative] {
        let inside = (0..b.counts.len())
            .take_while(|k| upper_bound(i64::from(b.offset) + *k as i64 - 1, h.schema) < thr)
            .count();
        b.counts.drain(..inside);
        b.offset += inside as i32;
    }
    h.zero_count = zc;
    h.zero_threshold = thr;
    h
}

/// Exponential histograms with one zero threshold: the widest, raised further where it
/// cuts a populated bucket of any of them.
fn common_zero_threshold(mut hs: Vec<Histogram>) -> Vec<Histogram> {
    // Each round can only raise the threshold to a bucket bound: a few rounds suffice.
    for _ in 0..64 {
        let thr = hs.iter().map(|h| h.zero_threshold).fold(0.0, f64::max);
        if hs.iter().all(|h| h.zero_threshold == thr) {
            break;
        }
        hs = hs
            .into_iter()
            .map(|h| with_zero_threshold(h, thr))
            .collect();
    }
    hs
}

/// `a + b` (or `a - b`) with the flag whether custom bounds had to be reconciled; `None`
/// when one has custom buckets and the other exponential ones. The hint is the one
/// `ResetHint::added` gives (as Prometheus' `Add` and `Sub`; PromQL's `-` then makes the
/// result a gauge).
///
/// Exponential histograms are added at the lower of the two schemas and the wider of the
/// two zero buckets. Custom-bucket histograms with different bounds are added on the
/// bounds they share.
pub fn combine(a: &Histogram, b: &Histogram, sub: bool) -> Option<(Histogram, bool)> {
    let op = |x: f64, y: f64| add_or_sub(x, y, sub);
    let hint = a.hint.added(b.hint).0;
    match (a.uses_custom_buckets(), b.uses_custom_buckets()) {
        (false, false) => Some((
            Histogram {
                hint,
                ..combine_exponential(a, b, sub)
            },
            false,
        )),
        (true, true) => {
            let (positive, custom_values, reconciled) = if a.custom_values == b.custom_values {
                let positive = added(&a.positive, &b.positive, sub);
                (positive, a.custom_values.clone(), false)
            } else {
                let shared = shared_bounds(a, b);
                let positive = added(&rebucket(a, &shared), &rebucket(b, &shared), sub);
                (positive, shared, true)
            };
            let h = Histogram {
                schema: a.schema,
                count: op(a.count, b.count),
                sum: op(a.sum, b.sum),
                positive,
                custom_values,
                hint,
                ..Histogram::default()
            };
            Some((h, reconciled))
        }
        _ => None,
    }
}

fn combine_exponential(a: &Histogram, b: &Histogram, sub: bool) -> Histogram {
    let schema = a.schema.min(b.schema);
    let hs = common_zero_threshold(vec![to_schema(a, schema), to_schema(b, schema)]);
    let [a, b] = <[Histogram; 2]>::try_from(hs).unwrap_or_default();
    let op = |x: f64, y: f64| add_or_sub(x, y, sub);
    Histogram {
        schema,
        zero_threshold: a.zero_threshold,
        zero_count: op(a.zero_count, b.zero_count),
        count: op(a.count, b.count),
        sum: op(a.sum, b.sum),
        positive: added(&a.positive, &b.positive, sub),
        negative: added(&a.negative, &b.negative, sub),
        custom_values: Vec::new(),
        hint: ResetHint::Unknown,
    }
}

/// Histograms brought to one layout, for adding many: the lowest schema and the widest
/// zero bucket, or the custom bounds all share (with the flag whether any bounds had to
/// be dropped). `None` when exponential and custom-bucket histograms meet.
fn align(hs: &[&Histogram]) -> Option<(Vec<Histogram>, bool)> {
    let first = hs.first()?;
    let custom = first.uses_custom_buckets();
    if hs.iter().any(|h| h.uses_custom_buckets() != custom) {
        return None;
    }
    if custom {
        let mut bounds = first.custom_values.clone();
        for h in &hs[1..] {
            bounds.retain(|b| h.custom_values.contains(b));
        }
        let reconciled = hs.iter().any(|h| h.custom_values != bounds);
        let out = hs
            .iter()
            .map(|h| Histogram {
                positive: rebucket(h, &bounds),
                custom_values: bounds.clone(),
                ..(*h).clone()
            })
            .collect();
        return Some((out, reconciled));
    }
    let schema = hs.iter().map(|h| h.schema).min().unwrap_or(0);
    let out = common_zero_threshold(hs.iter().map(|h| to_schema(h, schema)).collect());
    Some((out, false))
}

/// One histogram from aligned histograms, each count and the sum made by `f` from the
/// values the histograms have there (0 for a bucket a histogram lacks).
fn per_component(hs: &[Histogram], f: impl Fn(&[f64]) -> f64) -> Histogram {
    let at = |b: &Buckets, idx: i64| {
        usize::try_from(idx - i64::from(b.offset))
            .ok()
            .and_then(|k| b.counts.get(k).copied())
            .unwrap_or(0.0)
    };
    let side = |sel: fn(&Histogram) -> &Buckets| -> Buckets {
        let used = || hs.iter().map(sel).filter(|b| !b.counts.is_empty());
        let (Some(lo), Some(hi)) = (
            used().map(|b| i64::from(b.offset)).min(),
            used()
                .map(|b| i64::from(b.offset) + b.counts.len() as i64)
                .max(),
        ) else {
            return Buckets::default();
        };
        let counts = (lo..hi)
            .map(|idx| f(&hs.iter().map(|h| at(sel(h), idx)).collect::<Vec<_>>()))
            .collect();
        Buckets {
            offset: lo as i32,
            counts,
        }
    };
    let of = |g: fn(&Histogram) -> f64| f(&hs.iter().map(g).collect::<Vec<_>>());
    Histogram {
        schema: hs[0].schema,
        zero_threshold: hs[0].zero_threshold,
        zero_count: of(|h| h.zero_count),
        count: of(|h| h.count),
        sum: of(|h| h.sum),
        positive: side(|h| &h.positive),
        negative: side(|h| &h.negative),
        custom_values: hs[0].custom_values.clone(),
        hint: ResetHint::Unknown,
    }
}

/// The sum (compensated, as Prometheus' Kahan summation) or the mean of histograms of
/// metric `name`. `None` for a mix of exponential and custom-bucket histograms (with
/// Prometheus' warning in `notes`) or no histograms; reconciled custom bounds add the
/// info. The hint is that of adding them one by one; one histogram with a reset and
/// another without adds the collision warning.
pub(crate) fn sum_or_mean(
    hs: &[&Histogram],
    mean: bool,
    name: &str,
    notes: &mut Vec<String>,
) -> Option<Histogram> {
    let Some((aligned, reconciled)) = align(hs) else {
        if !hs.is_empty() {
            notes.push(mixed_schemas_warning(name));
        }
        return None;
    };
    if reconciled {
        notes.push(reconciled_info("aggregation"));
    }
    let has = |x: ResetHint| hs.iter().any(|h| h.hint == x);
    if has(ResetHint::Reset) && has(ResetHint::NotReset) {
        notes.push(reset_collision_warning("aggregation"));
    }
    let hint = hs.iter().map(|h| h.hint).reduce(|a, b| a.added(b).0);
    let f = if mean {
        super::aggregate::mean
    } else {
        super::aggregate::kahan_sum
    };
    Some(Histogram {
        hint: hint.unwrap_or_default(),
        ..per_component(&aligned, f)
    })
}

/// `h` with every count and the sum passed through `f`.
fn map_counts(h: &Histogram, f: impl Fn(f64) -> f64) -> Histogram {
    let m = |b: &Buckets| Buckets {
        offset: b.offset,
        counts: b.counts.iter().map(|c| f(*c)).collect(),
    };
    Histogram {
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: f(h.zero_count),
        count: f(h.count),
        sum: f(h.sum),
        positive: m(&h.positive),
        negative: m(&h.negative),
        custom_values: h.custom_values.clone(),
        hint: h.hint,
    }
}

/// Every count and the sum multiplied by `f` (a negative factor makes them negative,
/// and the histogram a gauge, as in Prometheus).
pub fn scale(h: &Histogram, f: f64) -> Histogram {
    negative_makes_gauge(map_counts(h, |c| c * f), f)
}

fn negative_makes_gauge(mut h: Histogram, f: f64) -> Histogram {
    if f < 0.0 {
        h.hint = ResetHint::Gauge;
    }
    h
}

/// Every count and the sum divided by `f`. Division by zero leaves no buckets (only the
/// count, sum and zero count become infinite or NaN), as in Prometheus.
pub fn divide(h: &Histogram, f: f64) -> Histogram {
    let mut d = map_counts(h, |c| c / f);
    if f == 0.0 {
        d.positive = Buckets::default();
        d.negative = Buckets::default();
    }
    negative_makes_gauge(d, f)
}

/// The histogram as Prometheus prints it (the label value `count_values` gives it):
/// count, sum and every non-empty bucket with its bounds, in `%g` notation.
pub fn to_text(h: &Histogram) -> String {
    use super::types::format_g as g;
    let mut s = format!("{{count:{}, sum:{}", g(h.count), g(h.sum));
    for b in all_buckets(h) {
        if b.count == 0.0 {
            continue;
        }
        let (open, close) = (
            if b.lower_inclusive { '[' } else { '(' },
            if b.upper_inclusive { ']' } else { ')' },
        );
        s.push_str(&format!(
            ", {open}{},{}{close}:{}",
            g(b.lower),
            g(b.upper),
            g(b.count)
        ));
    }
    s.push('}');
    s
}

/// Whether two histograms are the same: schema, zero bucket, count, sum and the
/// non-empty buckets.
pub fn equals(a: &Histogram, b: &Histogram) -> bool {
    let nonempty = |x: &Buckets| -> Vec<(i64, u64)> {
        x.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c != 0.0)
            .map(|(k, c)| (i64::from(x.offset) + k as i64, c.to_bits()))
            .collect()
    };
    a.schema == b.schema
        && a.custom_values == b.custom_values
        && a.zero_threshold == b.zero_threshold
        && a.zero_count.to_bits() == b.zero_count.to_bits()
        && a.count.to_bits() == b.count.to_bits()
        && a.sum.to_bits() == b.sum.to_bits()
        && nonempty(&a.positive) == nonempty(&b.positive)
        && nonempty(&a.negative) == nonempty(&b.negative)
}

/// Whether `curr` after `prev` is a counter reset: fewer observations, a finer schema,
/// a narrower zero bucket, or any bucket (compared at the common schema) that went down.
pub fn is_reset(prev: &Histogram, curr: &Histogram) -> bool {
    if curr.count < prev.count {
        return true;
    }
    let went_down = |a: &Buckets, b: &Buckets| {
        let (_, d) = add_buckets(b.offset, &b.counts, a.offset, &a.counts, true);
        d.iter().any(|x| *x < 0.0)
    };
    if curr.uses_custom_buckets() {
        if !prev.uses_custom_buckets() {
            return true;
        }
        // Compared on the bounds both have.
        let shared = shared_bounds(curr, prev);
        return went_down(&rebucket(prev, &shared), &rebucket(curr, &shared));
    }
    if curr.schema > prev.schema || curr.zero_threshold < prev.zero_threshold {
        return true;
    }
    let p = to_schema(prev, curr.schema);
    let (zc, thr) = zero_count_for_threshold(&p, curr.zero_threshold);
    // The zero bucket would cut a populated bucket of the previous sample.
    if thr != curr.zero_threshold || curr.zero_count < zc {
        return true;
    }
    let p = with_zero_threshold(p, thr);
    went_down(&p.positive, &curr.positive) || went_down(&p.negative, &curr.negative)
}

/// `histogram_quantile(q, h)` for a native histogram: the bucket holding the rank,
/// interpolated exponentially inside it (linearly in the zero bucket). NaN when the rank
/// lies above every bucket because of NaN observations.
pub fn quantile(q: f64, h: &Histogram) -> (f64, Option<NanEffect>) {
    if q < 0.0 {
        return (f64::NEG_INFINITY, None);
    }
    if q > 1.0 {
        return (f64::INFINITY, None);
    }
    if h.count == 0.0 || q.is_nan() {
        return (f64::NAN, None);
    }
    let buckets = all_buckets(h);
    let forward = h.sum.is_nan() || q < 0.5;
    let mut rank = if forward {
        q * h.count
    } else {
        (1.0 - q) * h.count
    };
    let mut count = 0.0;
    let mut found: Option<Bucket> = None;
    let order: Box<dyn Iterator<Item = &Bucket>> = if forward {
        Box::new(buckets.iter())
    } else {
        Box::new(buckets.iter().rev())
    };
    for b in order {
        if b.count == 0.0 {
            continue;
        }
        found = Some(*b);
        count += b.count;
        if count >= rank {
            break;
        }
    }
    // No bucket holds an observation: all of them were NaN when the sum is NaN.
    let Some(mut b) = found else {
        return (f64::NAN, h.sum.is_nan().then_some(NanEffect::ResultNaN));
    };
    let custom = h.uses_custom_buckets();
    if custom {
        if b.lower == f64::NEG_INFINITY {
            if b.upper <= 0.0 {
                return (b.upper, None);
            }
            b.lower = 0.0;
        } else if b.upper == f64::INFINITY {
            return (b.lower, None);
        }
    } else if b.lower < 0.0 && b.upper > 0.0 {
        if h.negative.counts.is_empty() && !h.positive.counts.is_empty() {
            b.lower = 0.0;
        } else if h.positive.counts.is_empty() && !h.negative.counts.is_empty() {
            b.upper = 0.0;
        }
    }
    count = count.min(h.count);
    if count < rank {
        return if h.sum.is_nan() {
            (f64::NAN, Some(NanEffect::ResultNaN))
        } else {
            (b.upper, None)
        };
    }
    if forward {
        rank -= count - b.count;
    } else {
        rank = count - rank;
    }
    // NaN observations count in `count` but in no bucket.
    let effect = (h.sum.is_nan() && bucket_total(&buckets) < h.count).then_some(NanEffect::Skewed);
    let fraction = rank / b.count;
    if custom || b.lower <= 0.0 && b.upper >= 0.0 {
        return (b.lower + (b.upper - b.lower) * fraction, effect);
    }
    let (ll, lu) = (b.lower.abs().log2(), b.upper.abs().log2());
    let v = if b.lower > 0.0 {
        (ll + (lu - ll) * fraction).exp2()
    } else {
        -(lu + (ll - lu) * (1.0 - fraction)).exp2()
    };
    (v, effect)
}

/// What NaN observations did to a quantile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NanEffect {
    /// The rank lies above every bucket: the result is NaN.
    ResultNaN,
    /// The result is taken as if the NaNs were above every bucket.
    Skewed,
}

impl NanEffect {
    /// Prometheus' info for a histogram of metric `name`.
    pub fn info(self, name: &str) -> String {
        let what = match self {
            NanEffect::ResultNaN => "result is NaN",
            NanEffect::Skewed => "result is skewed higher",
        };
        with_metric_name(
            format!("PromQL info: input to histogram_quantile has NaN observations, {what}"),
            name,
        )
    }
}

/// ` for metric name "…"` added to a message when the name is known.
pub(crate) fn with_metric_name(msg: String, name: &str) -> String {
    if name.is_empty() {
        msg
    } else {
        format!("{msg} for metric name {name:?}")
    }
}

fn bucket_total(buckets: &[Bucket]) -> f64 {
    buckets.iter().map(|b| b.count).sum()
}

/// The fraction of bucket `b` below `v`, linear or on a logarithmic scale.
fn fraction_below(b: &Bucket, v: f64, linear: bool) -> f64 {
    if v <= b.lower {
        return 0.0;
    }
    if v >= b.upper {
        return 1.0;
    }
    if linear || b.lower <= 0.0 && b.upper >= 0.0 {
        if b.lower == f64::NEG_INFINITY {
            // A bucket without a lower end is not interpolated: it counts whole (only the
            // first bucket can be one, so this is all of the rank below it).
            return 1.0;
        }
        return (v - b.lower) / (b.upper - b.lower);
    }
    if b.lower > 0.0 {
        let (lo, hi) = (b.lower.log2(), b.upper.log2());
        (v.log2() - lo) / (hi - lo)
    } else {
        // Mirrored for negative buckets: |lower| is the larger magnitude.
        let (lo, hi) = ((-b.upper).log2(), (-b.lower).log2());
        (hi - (-v).log2()) / (hi - lo)
    }
}

/// `histogram_fraction(lower, upper, h)`: the share of observations in `[lower, upper]`,
/// interpolated inside the buckets the bounds fall in; and whether NaN observations were
/// left out of it.
pub fn fraction(lower: f64, upper: f64, h: &Histogram) -> (f64, bool) {
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return (f64::NAN, false);
    }
    if lower >= upper {
        return (0.0, false);
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, None, None);
    let custom = h.uses_custom_buckets();
    let buckets = all_buckets(h);
    for &b in &buckets {
        let mut b = b;
        let zero_bucket = b.lower <= 0.0 && b.upper >= 0.0;
        if zero_bucket {
            if h.negative.counts.is_empty() && !h.positive.counts.is_empty() {
                b.lower = 0.0;
            } else if h.positive.counts.is_empty() && !h.negative.counts.is_empty() {
                b.upper = 0.0;
            }
        }
        let at = |v: f64| rank + b.count * fraction_below(&b, v, custom || zero_bucket);
        if lower_rank.is_none() && b.lower >= lower {
            lower_rank = Some(rank);
        }
        if upper_rank.is_none() && b.lower >= upper {
            upper_rank = Some(rank);
        }
        if lower_rank.is_none() && b.lower < lower && b.upper > lower {
            lower_rank = Some(at(lower));
        }
        if upper_rank.is_none() && b.lower < upper && b.upper > upper {
            upper_rank = Some(at(upper));
        }
        if lower_rank.is_some() && upper_rank.is_some() {
            break;
        }
        rank += b.count;
    }
    let total = if h.sum.is_nan() {
        bucket_total(&buckets)
    } else {
        h.count
    };
    let l = lower_rank.map_or(total, |r: f64| r.min(total));
    let u = upper_rank.map_or(total, |r: f64| r.min(total));
    ((u - l) / h.count, total < h.count)
}

/// `histogram_stdvar(h)`: the variance of the observations, each bucket's observations
/// taken at its geometric middle (0 in the zero bucket).
pub fn variance(h: &Histogram) -> f64 {
    if h.count == 0.0 {
        return f64::NAN;
    }
    let mean = h.sum / h.count;
    let mut parts = Vec::new();
    for b in all_buckets(h) {
        if b.count == 0.0 {
            continue;
        }
        let v = if h.uses_custom_buckets() {
            (b.lower + b.upper) / 2.0
        } else if b.lower <= 0.0 && b.upper >= 0.0 {
            0.0
        } else if b.lower > 0.0 {
            (b.lower * b.upper).sqrt()
        } else {
            -(b.lower * b.upper).sqrt()
        };
        let d = v - mean;
        parts.push(b.count * d * d);
    }
    super::aggregate::kahan_sum(&parts) / h.count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(schema: i32, offset: i32, counts: &[f64], zero: f64) -> Histogram {
        let total: f64 = counts.iter().sum::<f64>() + zero;
        Histogram {
            schema,
            zero_threshold: 0.001,
            zero_count: zero,
            count: total,
            sum: 10.0,
            positive: Buckets {
                offset,
                counts: counts.to_vec(),
            },
            negative: Buckets::default(),
            custom_values: Vec::new(),
            ..Histogram::default()
        }
    }

    fn custom(bounds: &[f64], counts: &[f64]) -> Histogram {
        Histogram {
            schema: signalbox_storage::CUSTOM_BUCKETS_SCHEMA,
            count: counts.iter().sum(),
            sum: 10.0,
            positive: Buckets {
                offset: 0,
                counts: counts.to_vec(),
            },
            custom_values: bounds.to_vec(),
            ..Histogram::default()
        }
    }

    #[test]
    fn custom_buckets_add_on_shared_bounds_and_interpolate_linearly() {
        let a = custom(&[1.0, 2.0, 4.0], &[1.0, 1.0, 1.0, 1.0]);
        let b = custom(&[2.0, 4.0], &[2.0, 2.0, 2.0]);
        let (s, reconciled) = combine(&a, &b, false).unwrap();
        assert!(reconciled);
        assert_eq!(s.custom_values, vec![2.0, 4.0]);
        // (-Inf, 2] gets a's first two buckets.
        assert_eq!(s.positive.counts, vec![4.0, 3.0, 3.0]);
        assert!(combine(&a, &hist(0, 1, &[1.0], 0.0), false).is_none());
        let bs = all_buckets(&a);
        assert_eq!(
            (bs[0].lower, bs[0].upper, bs[0].boundary_rule()),
            (f64::NEG_INFINITY, 1.0, 3)
        );
        assert_eq!(bs[3].upper, f64::INFINITY);
        // Rank 2 of 4 is the end of (1, 2]; the first bucket counts from 0.
        assert_eq!(quantile(0.5, &a).0, 2.0);
        assert_eq!(quantile(0.25, &a).0, 1.0);
        // The +Inf bucket answers its lower bound.
        assert_eq!(quantile(0.99, &a).0, 4.0);
        assert_eq!(fraction(1.0, 1.5, &a).0, 0.125);
        // The first bucket counts from 0 when the bounds are positive.
        assert_eq!(fraction(0.0, 0.5, &a).0, 0.125);
        assert!(is_reset(&a, &custom(&[2.0, 4.0], &[1.0, 1.0, 1.0])));
        assert!(!is_reset(&custom(&[2.0, 4.0], &[1.0, 1.0, 1.0]), &a));
    }

    #[test]
    fn bucket_bounds_follow_the_schema() {
        let b = all_buckets(&hist(0, 1, &[1.0, 2.0], 0.0));
        // Zero bucket, (1, 2], (2, 4].
        assert_eq!(b.len(), 3);
        assert_eq!((b[1].lower, b[1].upper), (1.0, 2.0));
        assert_eq!((b[2].lower, b[2].upper), (2.0, 4.0));
        assert_eq!(b[1].boundary_rule(), 0);
        assert_eq!(b[0].boundary_rule(), 3);
        let b = all_buckets(&hist(1, 1, &[1.0], 0.0));
        assert!((b[1].upper - 2f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn sums_reduce_to_the_coarser_schema() {
        let a = hist(0, 1, &[1.0, 1.0], 0.0);
        // Schema 1 buckets 1..4 are (1, 1.41], (1.41, 2], (2, 2.83], (2.83, 4].
        let b = hist(1, 1, &[1.0, 2.0, 3.0, 4.0], 0.0);
        let (s, reconciled) = combine(&a, &b, false).unwrap();
        assert!(!reconciled);
        assert_eq!(s.schema, 0);
        assert_eq!(s.positive.offset, 1);
        assert_eq!(s.positive.counts, vec![4.0, 8.0]);
        assert_eq!(s.count, 12.0);
        let (d, _) = combine(&s, &a, true).unwrap();
        assert_eq!(d.positive.counts, vec![3.0, 7.0]);
    }

    #[test]
    fn a_wider_zero_bucket_takes_the_buckets_it_reaches() {
        let a = hist(0, 1, &[1.0, 2.0], 0.0);
        // A zero bucket of 1.5 cuts the populated (1, 2]: it widens to 2.
        let b = Histogram {
            zero_threshold: 1.5,
            zero_count: 1.0,
            count: 1.0,
            ..Histogram::default()
        };
        let (s, _) = combine(&a, &b, false).unwrap();
        assert_eq!(s.zero_threshold, 2.0);
        assert_eq!(s.zero_count, 2.0);
        assert_eq!(
            (s.positive.offset, s.positive.counts.clone()),
            (2, vec![2.0])
        );
        assert_eq!(s.count, 4.0);
        // A later sample whose zero bucket cuts a populated bucket is a reset.
        let wider = Histogram {
            zero_threshold: 1.5,
            ..a.clone()
        };
        assert!(is_reset(&a, &wider));
    }

    #[test]
    fn a_decrease_in_any_bucket_is_a_reset() {
        let a = hist(0, 1, &[2.0, 2.0], 0.0);
        let b = hist(0, 1, &[3.0, 1.0], 0.0);
        assert!(is_reset(&a, &b));
        let c = hist(0, 1, &[2.0, 3.0], 0.0);
        assert!(!is_reset(&a, &c));
        assert!(is_reset(&c, &a));
    }

    #[test]
    fn quantiles_interpolate_exponentially() {
        // All 4 observations in (1, 2]: the median is at sqrt(2).
        let h = hist(0, 1, &[4.0], 0.0);
        assert!((quantile(0.5, &h).0 - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(quantile(1.5, &h).0, f64::INFINITY);
        assert!((fraction(f64::NEG_INFINITY, 2f64.sqrt(), &h).0 - 0.5).abs() < 1e-12);
        assert_eq!(fraction(2.0, 1.0, &h).0, 0.0);
        // One NaN observation: in the count, in no bucket.
        let nan = Histogram {
            sum: f64::NAN,
            count: 5.0,
            ..h.clone()
        };
        assert_eq!(quantile(0.5, &nan).1, Some(NanEffect::Skewed));
        assert_eq!(quantile(0.99, &nan).1, Some(NanEffect::ResultNaN));
        assert!(quantile(0.99, &nan).0.is_nan());
        assert_eq!(fraction(0.0, 10.0, &nan), (0.8, true));
    }
}
