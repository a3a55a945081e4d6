//! The Jaeger query API's JSON model (`/jaeger/api/...`), as the trace pages read it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The envelope of every Jaeger API answer: `data`, or `errors`.
#[derive(Debug, Clone, Deserialize)]
pub struct JaegerEnvelope<T> {
    pub data: Option<T>,
    #[serde(default)]
    pub errors: Option<Vec<JaegerError>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JaegerError {
    #[serde(default)]
    pub code: i64,
    pub msg: String,
}

impl<T> JaegerEnvelope<T> {
    /// The data, or the errors joined as the API words them.
    pub fn into_result(self) -> Result<T, String> {
        match (self.data, self.errors) {
            (_, Some(errors)) if !errors.is_empty() => Err(errors
                .into_iter()
                .map(|e| e.msg)
                .collect::<Vec<_>>()
                .join("; ")),
            (Some(d), _) => Ok(d),
            (None, _) => Err("the answer has no data".into()),
        }
    }
}

/// A trace: its spans and the processes (services) they ran in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    pub spans: Vec<Span>,
    #[serde(default)]
    pub processes: BTreeMap<String, Process>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    #[serde(rename = "spanID")]
    pub span_id: String,
    #[serde(rename = "operationName")]
    pub operation: String,
    #[serde(default)]
    pub references: Vec<Reference>,
    /// Microseconds since the Unix epoch.
    #[serde(rename = "startTime")]
    pub start_us: i64,
    /// Microseconds.
    #[serde(rename = "duration")]
    pub duration_us: i64,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub logs: Vec<SpanEvent>,
    #[serde(rename = "processID", default)]
    pub process_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    #[serde(rename = "refType")]
    pub ref_type: String,
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
}

/// A key/value attribute; the value is a string, number or boolean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: serde_json::Value,
}

impl Tag {
    /// The value as text.
    pub fn text(&self) -> String {
        match &self.value {
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        }
    }
}

/// A span event (Jaeger calls them logs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanEvent {
    /// Microseconds since the Unix epoch.
    pub timestamp: i64,
    #[serde(default)]
    pub fields: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    #[serde(rename = "serviceName")]
    pub service: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl Span {
    pub fn end_us(&self) -> i64 {
        self.start_us + self.duration_us
    }

    /// The value of a tag, as text.
    pub fn tag(&self, key: &str) -> Option<String> {
        self.tags.iter().find(|t| t.key == key).map(Tag::text)
    }

    /// The span this one is a child of, if any.
    pub fn parent_id(&self) -> Option<&str> {
        self.references
            .iter()
            .find(|r| r.ref_type == "CHILD_OF")
            .map(|r| r.span_id.as_str())
    }

    /// Whether the span failed: OpenTelemetry status ERROR, or Jaeger's `error` tag.
    pub fn is_error(&self) -> bool {
        self.tags.iter().any(|t| {
            (t.key == "error" && (t.value == serde_json::Value::Bool(true) || t.text() == "true"))
                || (t.key == "otel.status_code" && t.text() == "ERROR")
        })
    }
}

impl Trace {
    /// The service a span ran in.
    pub fn service_of(&self, span: &Span) -> &str {
        self.processes
            .get(&span.process_id)
            .map(|p| p.service.as_str())
            .unwrap_or("unknown")
    }
}
