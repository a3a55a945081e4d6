//! OTLP metrics → Prometheus series, following the OpenTelemetry→Prometheus
//! compatibility rules: normalised names with unit and `_total` suffixes, `job` and
//! `instance` from the service attributes, other resource attributes on `target_info`,
//! classic histograms as `_bucket`/`_sum`/`_count`, exponential histograms as native
//! histograms, summaries as quantile series, delta temporality accumulated into
//! cumulative values, and no scope labels.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint,
    metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use signalbox_storage::{
    Attributes, Buckets, Exemplar, Histogram, HistogramSample, Labels, MetricKind, MetricMetadata,
    MetricsBatch, ResetHint, STALE_NAN_BITS, Sample, SeriesPoints, StartTime, hex_lower,
};

use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::{attributes, labels_from_attributes, labels_from_kvs};

const FLAG_NO_RECORDED_VALUE: u32 = 1;
/// Prometheus' zero threshold when OTLP gives none.
const DEFAULT_ZERO_THRESHOLD: f64 = 1e-128;
const MAX_SCHEMA: i32 = 8;
const MIN_SCHEMA: i32 = -4;

/// Accumulated totals of delta series, keyed by the output series' label hash.
#[derive(Default)]
pub(crate) struct DeltaState {
    entries: HashMap<u64, (Accum, Instant)>,
}

#[derive(Clone, Debug)]
pub(crate) enum Accum {
    Sum(f64),
    Classic {
        bounds: Vec<f64>,
        buckets: Vec<f64>,
        count: f64,
        sum: f64,
    },
    Native(Histogram),
}

impl DeltaState {
    /// Applies the totals of a request that storage accepted.
    pub(crate) fn commit(&mut self, updates: Vec<(u64, Accum)>) {
        let now = Instant::now();
        for (k, a) in updates {
            self.entries.insert(k, (a, now));
        }
    }

    /// Forgets series that sent no delta for `idle`.
    pub(crate) fn expire(&mut self, idle: Duration) {
        self.entries.retain(|_, (_, t)| t.elapsed() < idle);
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

pub(crate) struct Converted {
    pub(crate) batch: MetricsBatch,
    pub(crate) rejected: u64,
    pub(crate) reasons: Vec<String>,
    pub(crate) delta_updates: Vec<(u64, Accum)>,
}

/// Whether a request carries delta temporality (its conversion then depends on state).
pub(crate) fn has_delta(req: &ExportMetricsServiceRequest) -> bool {
    let delta = AggregationTemporality::Delta as i32;
    req.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .any(|m| match &m.data {
            Some(metric::Data::Sum(s)) => s.aggregation_temporality == delta,
            Some(metric::Data::Histogram(h)) => h.aggregation_temporality == delta,
            Some(metric::Data::ExponentialHistogram(h)) => h.aggregation_temporality == delta,
            _ => false,
        })
}

struct Ctx<'a> {
    out: Vec<SeriesPoints>,
    /// label hash → indexes into `out` with that hash
    index: rustc_hash::FxHashMap<u64, Vec<usize>>,
    metadata: HashMap<String, MetricMetadata>,
    rejected: u64,
    reasons: Vec<String>,
    state: &'a DeltaState,
    pending: HashMap<u64, Accum>,
    /// The start time of the point being converted, given to every sample made from it
    /// (none for gauges and for delta points, whose running totals start unknown).
    start: Option<i64>,
    keep_starts: bool,
}

impl Ctx<'_> {
    fn reject(&mut self, n: u64, reason: String) {
        self.rejected += n;
        if self.reasons.len() < 5 && !self.reasons.contains(&reason) {
            self.reasons.push(reason);
        }
    }

    fn series(&mut self, labels: Labels) -> &mut SeriesPoints {
        let h = labels.hash64();
        let slot = self.index.entry(h).or_default();
        let i = match slot.iter().copied().find(|&i| self.out[i].labels == labels) {
            Some(i) => i,
            None => {
                self.out.push(SeriesPoints {
                    labels,
                    ..Default::default()
                });
                slot.push(self.out.len() - 1);
                self.out.len() - 1
            }
        };
        &mut self.out[i]
    }

    fn push(&mut self, labels: Labels, t: i64, v: f64) {
        let start = self.start;
        let s = self.series(labels);
        s.samples.push(Sample { t, v });
        if let Some(st) = start {
            s.starts.push(StartTime { t, st });
        }
    }

    /// Takes the start time of a point (OTLP: 0 when unknown) for its samples.
    fn start_from(&mut self, start_ns: u64, known: bool) {
        self.start = (self.keep_starts && known && start_ns != 0).then(|| ms(start_ns));
    }

    /// The point's time in milliseconds; a point without one is rejected.
    fn timestamp(&mut self, metric: &str, t_ns: u64) -> Option<i64> {
        if t_ns == 0 {
            self.reject(1, format!("data point of {metric} has no timestamp"));
            return None;
        }
        Some(ms(t_ns))
    }

    fn accum(&self, key: u64) -> Option<&Accum> {
        self.pending
            .get(&key)
            .or_else(|| self.state.entries.get(&key).map(|(a, _)| a))
    }

    fn meta(&mut self, metric: &str, kind: MetricKind, unit: &str, help: &str) {
        self.metadata
            .entry(metric.to_string())
            .or_insert_with(|| MetricMetadata {
                metric: metric.to_string(),
                kind,
                unit: unit.to_string(),
                help: help.to_string(),
            });
    }
}

/// Converts a request; with `start_times`, samples of cumulative points keep the points'
/// start times.
pub(crate) fn convert(
    req: &ExportMetricsServiceRequest,
    state: &DeltaState,
    start_times: bool,
) -> Converted {
    let mut cx = Ctx {
        out: Vec::new(),
        index: Default::default(),
        metadata: HashMap::new(),
        rejected: 0,
        reasons: Vec::new(),
        state,
        pending: HashMap::new(),
        start: None,
        keep_starts: start_times,
    };
    for rm in &req.resource_metrics {
        let (base, target_info) = resource_labels(rm.resource.as_ref());
        let mut latest: Option<i64> = None;
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                if let Some(t) = convert_metric(&mut cx, &base, m) {
                    latest = Some(latest.map_or(t, |l: i64| l.max(t)));
                }
            }
        }
        if let (Some(info), Some(t)) = (target_info, latest) {
            cx.meta("target_info", MetricKind::Gauge, "", "Target metadata");
            cx.start = None;
            cx.push(info, t, 1.0);
        }
    }
    Converted {
        batch: MetricsBatch {
            series: cx.out,
            metadata: cx.metadata.into_values().collect(),
        },
        rejected: cx.rejected,
        reasons: cx.reasons,
        delta_updates: cx.pending.into_iter().collect(),
    }
}

/// `job`/`instance` pairs for every series of a resource, and the `target_info` labels
/// when the resource has other attributes.
fn resource_labels(resource: Option<&Resource>) -> (Vec<(String, String)>, Option<Labels>) {
    let attrs = resource
        .map(|r| attributes(&r.attributes))
        .unwrap_or_default();
    let text = |k: &str| attrs.get(k).map(|v| v.to_text()).filter(|s| !s.is_empty());
    let mut base = Vec::new();
    if let Some(name) = text("service.name") {
        let job = match text("service.namespace") {
            Some(ns) => format!("{ns}/{name}"),
            None => name,
        };
        base.push(("job".to_string(), job));
    }
    if let Some(inst) = text("service.instance.id") {
        base.push(("instance".to_string(), inst));
    }
    let others = Attributes(
        attrs
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "service.name" | "service.namespace" | "service.instance.id"
                )
            })
            .cloned()
            .collect(),
    );
    let info = (!others.is_empty()).then(|| {
        let mut pairs = labels_from_attributes(&others);
        pairs.retain(|(k, _)| k != "job" && k != "instance");
        pairs.extend(base.iter().cloned());
        pairs.push(("__name__".into(), "target_info".into()));
        Labels::from_pairs(pairs)
    });
    (base, info)
}

fn point_labels(
    name: &str,
    base: &[(String, String)],
    attrs: &[KeyValue],
    extra: Option<(&str, String)>,
) -> Labels {
    let mut pairs = labels_from_kvs(attrs);
    // The resource's job and instance win over data point attributes of the same name.
    pairs.retain(|(k, _)| !base.iter().any(|(b, _)| b == k) && k != "__name__");
    pairs.extend(base.iter().cloned());
    if let Some((k, v)) = extra {
        pairs.push((k.to_string(), v));
    }
    pairs.push(("__name__".to_string(), name.to_string()));
    Labels::from_pairs(pairs)
}

fn ms(t_ns: u64) -> i64 {
    (t_ns / 1_000_000) as i64
}

fn stale() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// `le` and `quantile` label values: shortest round-trip decimal, `+Inf` for infinity.
pub(crate) fn format_bound(b: f64) -> String {
    if b.is_infinite() {
        if b > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if b.is_nan() {
        "NaN".into()
    } else {
        format!("{b}")
    }
}

/// An OTLP exemplar: its filtered attributes as labels, plus `trace_id` and `span_id`
/// (lowercase hex) when set. `None` without a time or value.
fn exemplar(e: &opentelemetry_proto::tonic::metrics::v1::Exemplar) -> Option<Exemplar> {
    use opentelemetry_proto::tonic::metrics::v1::exemplar::Value;
    let value = match e.value? {
        Value::AsDouble(d) => d,
        Value::AsInt(i) => i as f64,
    };
    if e.time_unix_nano == 0 {
        return None;
    }
    let mut pairs = labels_from_kvs(&e.filtered_attributes);
    if e.trace_id.iter().any(|b| *b != 0) {
        pairs.push(("trace_id".into(), hex_lower(&e.trace_id)));
    }
    if e.span_id.iter().any(|b| *b != 0) {
        pairs.push(("span_id".into(), hex_lower(&e.span_id)));
    }
    Some(Exemplar {
        t: ms(e.time_unix_nano),
        value,
        labels: Labels::from_pairs(pairs),
    })
}

/// The exemplars of a point, on the series with `labels`.
fn exemplars_of(
    cx: &mut Ctx<'_>,
    labels: &Labels,
    es: &[opentelemetry_proto::tonic::metrics::v1::Exemplar],
) {
    // Most points carry none: the labels are copied only for those that do.
    let es: Vec<Exemplar> = es.iter().filter_map(exemplar).collect();
    if !es.is_empty() {
        cx.series(labels.clone()).exemplars.extend(es);
    }
}

fn number(p: &NumberDataPoint) -> f64 {
    match p.value {
        Some(number_data_point::Value::AsDouble(d)) => d,
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        None => 0.0,
    }
}

/// Converts one metric; returns the latest timestamp it produced, in milliseconds.
fn convert_metric(
    cx: &mut Ctx<'_>,
    base: &[(String, String)],
    m: &opentelemetry_proto::tonic::metrics::v1::Metric,
) -> Option<i64> {
    let delta = AggregationTemporality::Delta as i32;
    let mut latest = None;
    let mut note = |t: i64| latest = Some(latest.map_or(t, |l: i64| l.max(t)));
    if m.name.is_empty() {
        let n = points_in(m);
        cx.reject(n, "metric without a name".into());
        return None;
    }
    let unit = prom_unit(&m.unit);
    match &m.data {
        None => {
            cx.reject(1, format!("metric {} has no data", m.name));
        }
        Some(metric::Data::Gauge(g)) => {
            let name = metric_name(&m.name, &m.unit, NameKind::Gauge);
            cx.meta(&name, MetricKind::Gauge, &unit, &m.description);
            cx.start = None;
            for p in &g.data_points {
                let Some(t) = cx.timestamp(&m.name, p.time_unix_nano) else {
                    continue;
                };
                note(t);
                let v = if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
                    stale()
                } else {
                    number(p)
                };
                let labels = point_labels(&name, base, &p.attributes, None);
                exemplars_of(cx, &labels, &p.exemplars);
                cx.push(labels, t, v);
            }
        }
        Some(metric::Data::Sum(s)) => {
            let kind = if s.is_monotonic {
                NameKind::Counter
            } else {
                NameKind::Gauge
            };
            let name = metric_name(&m.name, &m.unit, kind);
            let mkind = if s.is_monotonic {
                MetricKind::Counter
            } else {
                MetricKind::Gauge
            };
            cx.meta(&name, mkind, &unit, &m.description);
            for p in &s.data_points {
                let Some(t) = cx.timestamp(&m.name, p.time_unix_nano) else {
                    continue;
                };
                note(t);
                cx.start_from(
                    p.start_time_unix_nano,
                    s.is_monotonic && s.aggregation_temporality != delta,
                );
                let labels = point_labels(&name, base, &p.attributes, None);
                let v = if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
                    stale()
                } else if s.aggregation_temporality == delta {
                    let key = labels.hash64();
                    let prev = match cx.accum(key) {
                        Some(Accum::Sum(v)) => *v,
                        _ => 0.0,
                    };
                    let total = prev + number(p);
                    cx.pending.insert(key, Accum::Sum(total));
                    total
                } else {
                    number(p)
                };
                exemplars_of(cx, &labels, &p.exemplars);
                cx.push(labels, t, v);
            }
        }
        Some(metric::Data::Histogram(h)) => {
            let name = metric_name(&m.name, &m.unit, NameKind::Other);
            cx.meta(&name, MetricKind::Histogram, &unit, &m.description);
            for p in &h.data_points {
                let Some(t) = cx.timestamp(&m.name, p.time_unix_nano) else {
                    continue;
                };
                if !p.bucket_counts.is_empty()
                    && p.bucket_counts.len() != p.explicit_bounds.len() + 1
                {
                    cx.reject(
                        1,
                        format!(
                            "histogram {} has {} bucket counts for {} bounds",
                            m.name,
                            p.bucket_counts.len(),
                            p.explicit_bounds.len()
                        ),
                    );
                    continue;
                }
                note(t);
                cx.start_from(p.start_time_unix_nano, h.aggregation_temporality != delta);
                classic_histogram(cx, &name, base, p, t, h.aggregation_temporality == delta);
            }
        }
        Some(metric::Data::ExponentialHistogram(h)) => {
            let name = metric_name(&m.name, &m.unit, NameKind::Other);
            cx.meta(&name, MetricKind::Histogram, &unit, &m.description);
            for p in &h.data_points {
                let Some(t) = cx.timestamp(&m.name, p.time_unix_nano) else {
                    continue;
                };
                let labels = point_labels(&name, base, &p.attributes, None);
                cx.start_from(p.start_time_unix_nano, h.aggregation_temporality != delta);
                if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
                    note(t);
                    cx.push(labels, t, stale());
                    continue;
                }
                let mut hist = match native_histogram(p) {
                    Ok(h) => h,
                    Err(why) => {
                        cx.reject(1, format!("exponential histogram {}: {why}", m.name));
                        continue;
                    }
                };
                note(t);
                if h.aggregation_temporality == delta {
                    let key = labels.hash64();
                    if let Some(Accum::Native(prev)) = cx.accum(key) {
                        hist = add_native(prev, &hist);
                    }
                    cx.pending.insert(key, Accum::Native(hist.clone()));
                }
                exemplars_of(cx, &labels, &p.exemplars);
                let start = cx.start;
                let series = cx.series(labels);
                series.histograms.push(HistogramSample { t, h: hist });
                if let Some(st) = start {
                    series.starts.push(StartTime { t, st });
                }
            }
        }
        Some(metric::Data::Summary(s)) => {
            let name = metric_name(&m.name, &m.unit, NameKind::Other);
            cx.meta(&name, MetricKind::Summary, &unit, &m.description);
            for p in &s.data_points {
                let Some(t) = cx.timestamp(&m.name, p.time_unix_nano) else {
                    continue;
                };
                note(t);
                cx.start_from(p.start_time_unix_nano, true);
                let attrs = &p.attributes;
                let no_value = p.flags & FLAG_NO_RECORDED_VALUE != 0;
                let val = |v: f64| if no_value { stale() } else { v };
                for q in &p.quantile_values {
                    let l = point_labels(
                        &name,
                        base,
                        attrs,
                        Some(("quantile", format_bound(q.quantile))),
                    );
                    cx.push(l, t, val(q.value));
                }
                cx.push(
                    point_labels(&format!("{name}_sum"), base, attrs, None),
                    t,
                    val(p.sum),
                );
                cx.push(
                    point_labels(&format!("{name}_count"), base, attrs, None),
                    t,
                    val(p.count as f64),
                );
            }
        }
    }
    latest
}

fn points_in(m: &opentelemetry_proto::tonic::metrics::v1::Metric) -> u64 {
    (match &m.data {
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
        None => 1,
    }) as u64
}

fn classic_histogram(
    cx: &mut Ctx<'_>,
    name: &str,
    base: &[(String, String)],
    p: &HistogramDataPoint,
    t: i64,
    delta: bool,
) {
    let attrs = &p.attributes;
    let mut buckets: Vec<f64> = p.bucket_counts.iter().map(|&c| c as f64).collect();
    let mut count = p.count as f64;
    let mut sum = p.sum.unwrap_or(0.0);
    let count_labels = point_labels(&format!("{name}_count"), base, attrs, None);
    if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
        for b in p
            .explicit_bounds
            .iter()
            .chain(std::iter::once(&f64::INFINITY))
        {
            cx.push(
                point_labels(
                    &format!("{name}_bucket"),
                    base,
                    attrs,
                    Some(("le", format_bound(*b))),
                ),
                t,
                stale(),
            );
        }
        if p.sum.is_some() {
            cx.push(
                point_labels(&format!("{name}_sum"), base, attrs, None),
                t,
                stale(),
            );
        }
        cx.push(count_labels, t, stale());
        return;
    }
    if delta {
        let key = count_labels.hash64();
        if let Some(Accum::Classic {
            bounds,
            buckets: pb,
            count: pc,
            sum: ps,
        }) = cx.accum(key)
            && *bounds == p.explicit_bounds
            && pb.len() == buckets.len()
        {
            for (b, prev) in buckets.iter_mut().zip(pb) {
                *b += prev;
            }
            count += pc;
            sum += ps;
        }
        cx.pending.insert(
            key,
            Accum::Classic {
                bounds: p.explicit_bounds.clone(),
                buckets: buckets.clone(),
                count,
                sum,
            },
        );
    }
    // Each exemplar goes to the bucket series of the first bound at or above its value.
    let mut exemplars: Vec<Exemplar> = p.exemplars.iter().filter_map(exemplar).collect();
    let mut cumulative = 0.0;
    for (i, bound) in p.explicit_bounds.iter().enumerate() {
        cumulative += buckets.get(i).copied().unwrap_or(0.0);
        let l = point_labels(
            &format!("{name}_bucket"),
            base,
            attrs,
            Some(("le", format_bound(*bound))),
        );
        let (here, rest): (Vec<Exemplar>, Vec<Exemplar>) =
            exemplars.into_iter().partition(|e| e.value <= *bound);
        exemplars = rest;
        if !here.is_empty() {
            cx.series(l.clone()).exemplars.extend(here);
        }
        cx.push(l, t, cumulative);
    }
    let l = point_labels(
        &format!("{name}_bucket"),
        base,
        attrs,
        Some(("le", "+Inf".into())),
    );
    if !exemplars.is_empty() {
        cx.series(l.clone()).exemplars.extend(exemplars);
    }
    cx.push(l, t, count);
    if p.sum.is_some() {
        cx.push(
            point_labels(&format!("{name}_sum"), base, attrs, None),
            t,
            sum,
        );
    }
    cx.push(count_labels, t, count);
}

/// OTLP exponential histogram → native histogram. OTLP bucket `i` covers
/// `(base^i, base^(i+1)]`, Prometheus bucket `i` covers `(base^(i-1), base^i]`, so the
/// offset moves by one; scales above 8 are reduced by merging neighbouring buckets.
fn native_histogram(p: &ExponentialHistogramDataPoint) -> Result<Histogram, String> {
    if p.scale < MIN_SCHEMA {
        return Err(format!("scale {} is below {MIN_SCHEMA}", p.scale));
    }
    let reduce = (p.scale - MAX_SCHEMA).max(0) as u32;
    let buckets = |b: Option<
        &opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets,
    >| {
        let Some(b) = b else {
            return Buckets::default();
        };
        let counts: Vec<f64> = b.bucket_counts.iter().map(|&c| c as f64).collect();
        downscale(b.offset, &counts, reduce)
    };
    let h = Histogram {
        schema: p.scale.min(MAX_SCHEMA),
        zero_threshold: if p.zero_threshold > 0.0 {
            p.zero_threshold
        } else {
            DEFAULT_ZERO_THRESHOLD
        },
        zero_count: p.zero_count as f64,
        count: p.count as f64,
        sum: p.sum.unwrap_or(0.0),
        positive: buckets(p.positive.as_ref()),
        negative: buckets(p.negative.as_ref()),
        custom_values: Vec::new(),
        hint: ResetHint::Unknown,
    };
    if !h.is_valid() {
        return Err(format!(
            "bucket offsets {} and {} are beyond any float value at scale {}",
            p.positive.as_ref().map_or(0, |b| b.offset),
            p.negative.as_ref().map_or(0, |b| b.offset),
            p.scale
        ));
    }
    Ok(h)
}

/// Merges OTLP buckets `2^reduce` at a time and converts to Prometheus indexing.
fn downscale(offset: i32, counts: &[f64], reduce: u32) -> Buckets {
    if counts.is_empty() {
        return Buckets::default();
    }
    let mut out: Vec<f64> = Vec::new();
    // In i64: an offset near the i32 limits must not overflow (such a histogram is then
    // rejected as out of range).
    let first = i64::from(offset) >> reduce;
    for (i, c) in counts.iter().enumerate() {
        let idx = ((i64::from(offset) + i as i64) >> reduce) - first;
        let idx = idx as usize;
        if out.len() <= idx {
            out.resize(idx + 1, 0.0);
        }
        out[idx] += c;
    }
    Buckets {
        offset: i32::try_from(first + 1).unwrap_or(i32::MAX),
        counts: out,
    }
}

fn add_native(a: &Histogram, b: &Histogram) -> Histogram {
    if a.schema != b.schema || a.zero_threshold != b.zero_threshold {
        // Incompatible layouts: the newer delta starts a new total (seen as a counter reset).
        return b.clone();
    }
    let add = |x: &Buckets, y: &Buckets| -> Buckets {
        if x.counts.is_empty() {
            return y.clone();
        }
        if y.counts.is_empty() {
            return x.clone();
        }
        let lo = x.offset.min(y.offset);
        let hi = (x.offset + x.counts.len() as i32).max(y.offset + y.counts.len() as i32);
        let mut counts = vec![0.0; (hi - lo) as usize];
        for src in [x, y] {
            for (i, c) in src.counts.iter().enumerate() {
                counts[(src.offset - lo) as usize + i] += c;
            }
        }
        Buckets { offset: lo, counts }
    };
    Histogram {
        schema: a.schema,
        zero_threshold: a.zero_threshold,
        zero_count: a.zero_count + b.zero_count,
        count: a.count + b.count,
        sum: a.sum + b.sum,
        positive: add(&a.positive, &b.positive),
        negative: add(&a.negative, &b.negative),
        custom_values: Vec::new(),
        hint: ResetHint::Unknown,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum NameKind {
    Counter,
    Gauge,
    Other,
}

/// The Prometheus name of an OTLP metric: name tokens (split on anything not a letter or
/// digit) joined by `_`, then the unit, `per_<unit>`, `_total` for counters and `_ratio`
/// for gauges of unit `1`, each only when not already in the name.
pub(crate) fn metric_name(name: &str, unit: &str, kind: NameKind) -> String {
    let mut tokens: Vec<String> = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if kind == NameKind::Counter {
        tokens.retain(|t| t != "total");
    }
    let unit_clean = strip_annotations(unit);
    let (main, per) = match unit_clean.split_once('/') {
        Some((m, p)) => (m.to_string(), Some(p.to_string())),
        None => (unit_clean.clone(), None),
    };
    let main = main_unit(&main);
    if !main.is_empty() && !tokens.contains(&main) {
        tokens.extend(main.split('_').map(str::to_string));
    }
    if let Some(per) = per.map(|p| per_unit(&p)).filter(|p| !p.is_empty())
        && !tokens.windows(2).any(|w| w[0] == "per" && w[1] == per)
    {
        tokens.push("per".into());
        tokens.push(per);
    }
    if kind == NameKind::Counter {
        tokens.push("total".into());
    }
    if kind == NameKind::Gauge && unit_clean == "1" && !tokens.iter().any(|t| t == "ratio") {
        tokens.push("ratio".into());
    }
    let mut s = tokens.join("_");
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// The unit as Prometheus metadata reports it (the suffix word, or empty).
fn prom_unit(unit: &str) -> String {
    let u = strip_annotations(unit);
    match u.split_once('/') {
        Some((m, p)) => {
            let (m, p) = (main_unit(m), per_unit(p));
            match (m.is_empty(), p.is_empty()) {
                (_, true) => m,
                (true, false) => format!("per_{p}"),
                (false, false) => format!("{m}_per_{p}"),
            }
        }
        None => main_unit(&u),
    }
}

fn strip_annotations(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    let mut depth = 0;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

fn main_unit(u: &str) -> String {
    let mapped = match u {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        "1" | "" => "",
        other => return clean(other),
    };
    mapped.to_string()
}

fn per_unit(u: &str) -> String {
    let mapped = match u {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => return clean(other),
    };
    mapped.to_string()
}

fn clean(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

#[cfg(test)]
mod tests;
