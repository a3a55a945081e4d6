//! The data model every signal is stored in: labels and matchers, attribute values,
//! and one batch type per signal (what the collector hands to storage).

mod labels;
mod logs;
mod metrics;
mod traces;
pub(crate) mod value;

pub use labels::{Label, Labels, MatchOp, Matcher};
pub use logs::{LogRecord, LogStream, LogsBatch};
pub use metrics::{
    Buckets, CUSTOM_BUCKETS_SCHEMA, Exemplar, Histogram, HistogramSample, MetricKind,
    MetricMetadata, MetricsBatch, ResetHint, STALE_NAN_BITS, Sample, SeriesPoints, StartTime,
    is_stale_nan, start_at,
};
pub use traces::{ResourceSpans, Span, SpanEvent, SpanLink, TracesBatch};
pub use value::{AnyValue, Attributes, Scope, hex_lower};

pub(crate) use labels::CompactLabels;
