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

    /// The encoding: schema, zero threshold, zero count, count, sum, then offset, length
    /// and counts of the positive and the negative buckets; a custom-bucket histogram adds
    /// the number of bounds and the bounds.
    pub(crate) fn encode(&self, e: &mut Enc) {
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
        let schema = i32::try_from(d.ivarint()?)
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

/// All points of one series in a batch.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SeriesPoints {
    pub labels: Labels,
    pub samples: Vec<Sample>,
    pub histograms: Vec<HistogramSample>,
    pub exemplars: Vec<Exemplar>,
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
        fn histogram_roundtrip(schema in -4i32..9, zc in 0f64..100.0, pos in proptest::collection::vec(0f64..1e6, 0..20), off in -50i32..50) {
            let h = Histogram { schema, zero_threshold: 1e-128, zero_count: zc, count: 10.0, sum: 3.5,
                positive: Buckets { offset: off, counts: pos }, negative: Buckets::default(),
                custom_values: Vec::new() };
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
}
