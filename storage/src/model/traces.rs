//! Spans with everything the Jaeger UI shows, grouped by the resource
//! (service) that produced them.

use std::sync::Arc;

use super::{Attributes, Scope};

#[derive(Clone, Debug, PartialEq, Default)]
pub struct SpanEvent {
    pub time_ns: i64,
    pub name: String,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct SpanLink {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub trace_state: String,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
    pub flags: u32,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Span {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// All zero for a root span.
    pub parent_span_id: [u8; 8],
    pub trace_state: String,
    pub flags: u32,
    pub name: String,
    /// OTLP `SpanKind` number (0 unspecified … 5 consumer).
    pub kind: i32,
    pub start_ns: i64,
    pub end_ns: i64,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
    pub events: Vec<SpanEvent>,
    pub dropped_events_count: u32,
    pub links: Vec<SpanLink>,
    pub dropped_links_count: u32,
    /// OTLP `Status.code` (0 unset, 1 ok, 2 error).
    pub status_code: i32,
    pub status_message: String,
    pub scope: Arc<Scope>,
}

impl Span {
    pub fn duration_ns(&self) -> i64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Span>()
            + self.name.len()
            + self.trace_state.len()
            + self.status_message.len()
            + self.attributes.heap_bytes()
            + self
                .events
                .iter()
                .map(|e| e.name.len() + e.attributes.heap_bytes() + 64)
                .sum::<usize>()
            + self
                .links
                .iter()
                .map(|l| l.trace_state.len() + l.attributes.heap_bytes() + 80)
                .sum::<usize>()
    }
}

/// The spans one resource (one service instance) sent.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ResourceSpans {
    pub service_name: String,
    pub resource: Arc<Attributes>,
    pub spans: Vec<Span>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct TracesBatch {
    pub resources: Vec<ResourceSpans>,
}

impl TracesBatch {
    pub fn spans(&self) -> usize {
        self.resources.iter().map(|r| r.spans.len()).sum()
    }
}
