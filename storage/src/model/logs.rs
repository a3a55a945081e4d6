//! Log records grouped into streams: a stream is one label set (from the
//! resource, or given by a Loki push) with the resource it came from.

use std::sync::Arc;

use super::{AnyValue, Attributes, Labels, Scope};

#[derive(Clone, Debug, PartialEq, Default)]
pub struct LogRecord {
    /// Nanoseconds since the Unix epoch (the observed time when the record had none).
    pub time_ns: i64,
    pub observed_time_ns: i64,
    pub severity_number: i32,
    pub severity_text: String,
    pub body: AnyValue,
    pub attributes: Attributes,
    /// All zero when the record carries no trace context.
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u32,
    pub event_name: String,
    pub scope: Arc<Scope>,
}

impl LogRecord {
    /// The log line as LogQL filters see it: the body as text.
    pub fn line(&self) -> std::borrow::Cow<'_, str> {
        match &self.body {
            AnyValue::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
            other => std::borrow::Cow::Owned(other.to_text()),
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.severity_text.len()
            + self.body.heap_bytes()
            + self.attributes.heap_bytes()
            + self.event_name.len()
            + std::mem::size_of::<LogRecord>()
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct LogStream {
    pub labels: Labels,
    pub resource: Arc<Attributes>,
    pub records: Vec<LogRecord>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct LogsBatch {
    pub streams: Vec<LogStream>,
}

impl LogsBatch {
    pub fn records(&self) -> usize {
        self.streams.iter().map(|s| s.records.len()).sum()
    }
}
