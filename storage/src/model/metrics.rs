//! Metric samples as PromQL sees them: float samples and native histograms
//! per label set, in milliseconds, plus per-metric metadata.

use crate::codec::{Dec, Enc};
use crate::error::{Result, StorageError};

use super::Labels;

/// The bit pattern Prometheus uses to mark a series as stale.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    pub v: f64,
}

/// Sparse buckets of a native histogram: `counts[i]` is the count of bucket index `offset + i`
/// (Prometheus indexing: bucket `i` covers `(base^(i-1), base^i]`).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Buckets {
    pub offset: i32,
    pub counts: Vec<f64>,
}

/// Schema of a native histogram with custom bucket bounds (Prometheus' NHCB).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// What a native histogram sample says about counter resets, as Prometheus' counter-reset
/// hint: nothing known, a reset since the previous sample, none since the previous
/// sample, or a gauge histogram (which may go up and down).
///
/// A writer may give `Gauge` or `Reset` (OTLP conversion gives neither: its histograms
/// are counters). The metrics head then keeps what a reader of Prometheus' chunks would
/// see: `Gauge` for gauges, `NotReset` for a counter sample that continues the one
/// before it, `Unknown` for any other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ResetHint {
    #[default]
    Unknown,
    Reset,
    NotReset,
    Gauge,
}

impl ResetHint {
    /// Prometheus' name of the hint, as in its test notation.
    pub fn as_str(self) -> &'static str {
        match self {
            ResetHint::Unknown => "unknown",
            ResetHint::Reset => "reset",
            ResetHint::NotReset => "not_reset",
            ResetHint::Gauge => "gauge",
        }
    }

    /// The hint of a Prometheus name (`unknown`, `reset`, `not_reset`, `gauge`).
    pub fn parse(s: &str) -> Option<ResetHint> {
        [
            ResetHint::Unknown,
            ResetHint::Reset,
            ResetHint::NotReset,
            ResetHint::Gauge,
        ]
        .into_iter()
        .find(|h| h.as_str() == s)
    }

    /// The hint of the sum (or difference) of histograms with hints `self` and `other`,
    /// as Prometheus sets it: a gauge makes a gauge, an unknown makes an unknown, and a
    /// reset meeting a not-reset makes an unknown and a collision (`true`).
    pub fn added(self, other: ResetHint) -> (ResetHint, bool) {
        use ResetHint::{Gauge, Unknown};
        match (self, other) {
            (a, b) if a == b => (a, false),
            (Gauge, _) | (_, Gauge) => (Gauge, false),
            (Unknown, _) | (_, Unknown) => (Unknown, false),
            _ => (Unknown, true),
        }
    }

    fn code(self) -> i64 {
        match self {
            ResetHint::Unknown => 0,
            ResetHint::Reset => 1,
            ResetHint::NotReset => 2,
            ResetHint::Gauge => 3,
        }
    }

    fn from_code(c: i64) -> Option<ResetHint> {
        Some(match c {
            0 => ResetHint::Unknown,
            1 => ResetHint::Reset,
            2 => ResetHint::NotReset,
            3 => ResetHint::Gauge,
            _ => return None,
        })
    }
}

/// An encoded histogram whose hint is not `Unknown` starts with this value minus the
/// hint's code, before the schema (schemas are never this low).
const HINT_MARK: i64 = -1000;

/// Prometheus' head starts a new chunk at every multiple of its block range (2 hours);
/// the first sample of a chunk carries no hint.
const CHUNK_RANGE_MS: i64 = 2 * 3600 * 1000;

/// A native histogram with absolute bucket counts: exponential buckets, or (schema
/// `CUSTOM_BUCKETS_SCHEMA`) buckets with the upper bounds `custom_values` and a last
/// bucket up to +Inf, held as positive buckets by index.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Histogram {
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    pub positive: Buckets,
    pub negative: Buckets,
    /// Upper bounds of the custom buckets; empty for exponential schemas.
    pub custom_values: Vec<f64>,
    pub hint: ResetHint,
}

impl Histogram {
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// A schema Prometheus knows (-4 to 8, or custom buckets) and bucket indices that
    /// stand for floats: within ±1100·2^schema for exponential buckets (2^±1024 and
    /// a little more), within the bounds (and the +Inf bucket) for custom buckets.
    pub fn is_valid(&self) -> bool {
        let limit = if self.uses_custom_buckets() {
            self.custom_values.len() as i64 + 1
        } else if (-4..=8).contains(&self.schema) {
            (1100i64 << (self.schema + 4)) >> 4
        } else {
            return false;
        };
        let in_range = |b: &Buckets| {
            b.counts.is_empty()
                || (i64::from(b.offset) >= -limit
                    && i64::from(b.offset) + b.counts.len() as i64 <= limit + 1)
        };
        if self.uses_custom_buckets() {
            // Custom buckets are positive buckets only.
            return in_range(&self.positive) && self.negative.counts.is_empty();
        }
        in_range(&self.positive) && in_range(&self.negative)
    }

    /// Whether this counter sample continues `prev` in one Prometheus chunk: the same
    /// layout (schema, zero bucket, custom bounds) and nothing that went down (the
    /// count, the zero count, any bucket). Anything else starts a new chunk.
    pub(crate) fn continues(&self, prev: &Histogram) -> bool {
        let covers = |cur: &Buckets, old: &Buckets| {
            old.counts.iter().enumerate().all(|(k, &c)| {
                let idx = i64::from(old.offset) + k as i64 - i64::from(cur.offset);
                let now = usize::try_from(idx)
                    .ok()
                    .and_then(|i| cur.counts.get(i).copied());
                match now {
                    Some(n) => n >= c,
                    None => c == 0.0,
                }
            })
        };
        self.schema == prev.schema
            && self.zero_threshold == prev.zero_threshold
            && self.custom_values == prev.custom_values
            && self.count >= prev.count
            && self.zero_count >= prev.zero_count
            && covers(&self.positive, &prev.positive)
            && covers(&self.negative, &prev.negative)
    }

    /// The hint a reader sees for this sample at `t` given the sample before it in the
    /// series (`prev`: its time and, if it was a histogram, the histogram). A gauge stays
    /// a gauge; a counter sample that continues a counter histogram within one chunk
    /// range is `NotReset`; any other (an explicit reset included) is `Unknown`.
    pub(crate) fn read_hint(&self, t: i64, prev: Option<(i64, Option<&Histogram>)>) -> ResetHint {
        if self.hint == ResetHint::Gauge {
            return ResetHint::Gauge;
        }
        match prev {
            Some((pt, Some(p)))
                if self.hint != ResetHint::Reset
                    && p.hint != ResetHint::Gauge
                    && pt.div_euclid(CHUNK_RANGE_MS) == t.div_euclid(CHUNK_RANGE_MS)
                    && self.continues(p) =>
            {
                ResetHint::NotReset
            }
            _ => ResetHint::Unknown,
        }
    }

    /// The encoding: schema, zero threshold, zero count, count, sum, then offset, length
    /// and counts of the positive and the negative buckets; a custom-bucket histogram adds
    /// the number of bounds and the bounds. A hint other than `Unknown` comes first, as
    /// `HINT_MARK` minus its code (data written before hints existed has none).
    pub(crate) fn encode(&self, e: &mut Enc) {
        if self.hint != ResetHint::Unknown {
            e.ivarint(HINT_MARK - self.hint.code());
        }
        e.ivarint(i64::from(self.schema));
        e.f64(self.zero_threshold);
        e.f64(self.zero_count);
        e.f64(self.count);
        e.f64(self.sum);
        for b in [&self.positive, &self.negative] {
            e.ivarint(i64::from(b.offset));
            e.uvarint(b.counts.len() as u64);
            for c in &b.counts {
                e.f64(*c);
            }
        }
        if self.uses_custom_buckets() {
            e.uvarint(self.custom_values.len() as u64);
            for v in &self.custom_values {
                e.f64(*v);
            }
        }
    }

    pub(crate) fn decode(d: &mut Dec<'_>) -> Result<Histogram> {
        let mut first = d.ivarint()?;
        let mut hint = ResetHint::Unknown;
        if first <= HINT_MARK {
            hint = ResetHint::from_code(HINT_MARK - first)
                .ok_or_else(|| StorageError::decode("histogram", "unknown counter-reset hint"))?;
            first = d.ivarint()?;
        }
        let schema = i32::try_from(first)
            .map_err(|_| StorageError::decode("histogram", "schema out of range"))?;
        let zero_threshold = d.f64()?;
        let zero_count = d.f64()?;
        let count = d.f64()?;
        let sum = d.f64()?;
        let mut bs = [Buckets::default(), Buckets::default()];
        for b in &mut bs {
            b.offset = i32::try_from(d.ivarint()?)
                .map_err(|_| StorageError::decode("histogram", "offset out of range"))?;
            let n = d.count(8)?;
            b.counts = (0..n).map(|_| d.f64()).collect::<Result<_>>()?;
        }
        let [positive, negative] = bs;
        let custom_values = if schema == CUSTOM_BUCKETS_SCHEMA {
            let n = d.count(8)?;
            (0..n).map(|_| d.f64()).collect::<Result<_>>()?
        } else {
            Vec::new()
        };
        Ok(Histogram {
            schema,
            zero_threshold,
            zero_count,
            count,
            sum,
            positive,
            negative,
            custom_values,
            hint,
        })
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut e = Enc::default();
        self.encode(&mut e);
        e.buf
    }

    pub(crate) fn from_bytes(b: &[u8]) -> Result<Histogram> {
        Histogram::decode(&mut Dec::new(b, "histogram"))
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        (self.positive.counts.len() + self.negative.counts.len() + self.custom_values.len()) * 8
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSample {
    pub t: i64,
    pub h: Histogram,
}

/// An example observation of a series, usually pointing at a trace (`trace_id`,
/// `span_id` labels).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Exemplar {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    pub value: f64,
    pub labels: Labels,
}

/// When the count that reached the sample at `t` began (OTLP's start time of a
/// cumulative point; a writer of delta samples would give the previous sample's time),
/// in milliseconds. PromQL's `rate` family can read a start time after the previous
/// sample as a reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartTime {
    pub t: i64,
    pub st: i64,
}

/// The start time of the sample at `t` in a time-sorted list; 0 (unknown) if none.
pub fn start_at(starts: &[StartTime], t: i64) -> i64 {
    starts
        .binary_search_by_key(&t, |s| s.t)
        .map_or(0, |i| starts[i].st)
}

/// All points of one series in a batch. `starts` holds the start times of those
/// samples (float or histogram) that have one.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SeriesPoints {
    pub labels: Labels,
    pub samples: Vec<Sample>,
    pub histograms: Vec<HistogramSample>,
    pub exemplars: Vec<Exemplar>,
    pub starts: Vec<StartTime>,
}

impl SeriesPoints {
    pub fn points(&self) -> usize {
        self.samples.len() + self.histograms.len()
    }
}

/// The Prometheus metric type of a metric family, as `/api/v1/metadata` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    Unknown,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
            MetricKind::GaugeHistogram => "gaugehistogram",
            MetricKind::Summary => "summary",
            MetricKind::Info => "info",
            MetricKind::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> MetricKind {
        match s {
            "counter" => MetricKind::Counter,
            "gauge" => MetricKind::Gauge,
            "histogram" => MetricKind::Histogram,
            "gaugehistogram" => MetricKind::GaugeHistogram,
            "summary" => MetricKind::Summary,
            "info" => MetricKind::Info,
            _ => MetricKind::Unknown,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MetricMetadata {
    pub metric: String,
    pub kind: MetricKind,
    pub unit: String,
    pub help: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsBatch {
    pub series: Vec<SeriesPoints>,
    pub metadata: Vec<MetricMetadata>,
}

impl MetricsBatch {
    pub fn points(&self) -> usize {
        self.series.iter().map(SeriesPoints::points).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn histogram_roundtrip(schema in -4i32..9, zc in 0f64..100.0, pos in proptest::collection::vec(0f64..1e6, 0..20), off in -50i32..50, code in 0i64..4) {
            let h = Histogram { schema, zero_threshold: 1e-128, zero_count: zc, count: 10.0, sum: 3.5,
                positive: Buckets { offset: off, counts: pos }, negative: Buckets::default(),
                custom_values: Vec::new(), hint: ResetHint::from_code(code).unwrap() };
            prop_assert_eq!(Histogram::from_bytes(&h.to_bytes()).unwrap(), h);
        }

        #[test]
        fn custom_bucket_histogram_roundtrip(bounds in proptest::collection::vec(-1e6f64..1e6, 0..10), pos in proptest::collection::vec(0f64..1e6, 0..11)) {
            let h = Histogram { schema: CUSTOM_BUCKETS_SCHEMA, count: pos.iter().sum(), sum: 1.5,
                positive: Buckets { offset: 0, counts: pos }, custom_values: bounds, ..Histogram::default() };
            // Followed by other data, as in a log record: the decoder stops at its end.
            let mut b = h.to_bytes();
            b.push(0xAB);
            let mut d = Dec::new(&b, "histogram");
            prop_assert_eq!(Histogram::decode(&mut d).unwrap(), h);
        }
    }

    #[test]
    fn histograms_written_before_hints_decode_as_unknown() {
        // schema 0, zero threshold, zero count, count, sum, empty buckets on both sides
        let mut e = Enc::default();
        e.ivarint(0);
        for v in [0.0, 0.0, 4.0, 2.5] {
            e.f64(v);
        }
        for _ in 0..2 {
            e.ivarint(0);
            e.uvarint(0);
        }
        let h = Histogram::from_bytes(&e.buf).unwrap();
        assert_eq!((h.schema, h.count, h.hint), (0, 4.0, ResetHint::Unknown));
        // An unknown hint code before a valid histogram is refused; a known one is read.
        let with_code = |code: i64| {
            let mut b = Enc::default();
            b.ivarint(HINT_MARK - code);
            b.raw(&e.buf);
            Histogram::from_bytes(&b.buf)
        };
        assert!(with_code(9).is_err());
        assert_eq!(with_code(3).unwrap().hint, ResetHint::Gauge);
    }

    fn counter(count: f64, buckets: &[f64]) -> Histogram {
        Histogram {
            count,
            positive: Buckets {
                offset: 0,
                counts: buckets.to_vec(),
            },
            ..Histogram::default()
        }
    }

    #[test]
    fn read_hints_follow_prometheus_chunks() {
        let a = counter(2.0, &[1.0, 1.0]);
        let up = counter(3.0, &[1.0, 2.0]);
        let bucket_down = counter(3.0, &[0.0, 3.0]);
        let finer = Histogram {
            schema: 1,
            ..up.clone()
        };
        let gauge = Histogram {
            hint: ResetHint::Gauge,
            ..a.clone()
        };
        let reset = Histogram {
            hint: ResetHint::Reset,
            ..up.clone()
        };
        let after = |h: &Histogram, p: &Histogram| h.read_hint(60_000, Some((0, Some(p))));
        assert_eq!(after(&up, &a), ResetHint::NotReset);
        assert_eq!(after(&bucket_down, &a), ResetHint::Unknown);
        assert_eq!(after(&a, &up), ResetHint::Unknown);
        assert_eq!(after(&finer, &a), ResetHint::Unknown);
        assert_eq!(after(&up, &gauge), ResetHint::Unknown);
        assert_eq!(after(&gauge, &a), ResetHint::Gauge);
        assert_eq!(after(&reset, &a), ResetHint::Unknown);
        // After a float sample, with nothing before, or across a 2-hour boundary.
        assert_eq!(up.read_hint(60_000, Some((0, None))), ResetHint::Unknown);
        assert_eq!(up.read_hint(60_000, None), ResetHint::Unknown);
        let next_range = CHUNK_RANGE_MS + 1;
        assert_eq!(
            up.read_hint(next_range, Some((CHUNK_RANGE_MS - 1, Some(&a)))),
            ResetHint::Unknown
        );
    }
}
