//! Spans in Jaeger's UI JSON model, following the OpenTelemetry → Jaeger mapping:
//! `service.name` → process service name, other resource attributes → process tags,
//! scope → `otel.scope.*` tags, kind → `span.kind`, status → `otel.status_code` /
//! `error` / `otel.status_description`, events → logs, links → `FOLLOWS_FROM`.

use std::sync::Arc;

use serde_json::{Value, json};
use signalbox_storage::{AnyValue, Attributes, SpanRecord};

use super::{hex, kind_name};

/// 32 hex digits, or 16 when the high half is zero.
pub(crate) fn trace_id_hex(id: &[u8; 16]) -> String {
    if id[..8] == [0; 8] {
        hex(&id[8..])
    } else {
        hex(id)
    }
}

fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn kv(key: &str, v: &AnyValue) -> Value {
    const MAX_SAFE: i64 = (1 << 53) - 1;
    match v {
        AnyValue::String(s) => json!({"key": key, "type": "string", "value": s}),
        AnyValue::Bool(b) => json!({"key": key, "type": "bool", "value": b}),
        AnyValue::Int(i) if (-MAX_SAFE..=MAX_SAFE).contains(i) => {
            json!({"key": key, "type": "int64", "value": i})
        }
        AnyValue::Int(i) => json!({"key": key, "type": "int64", "value": i.to_string()}),
        AnyValue::Double(d) => match serde_json::Number::from_f64(*d) {
            Some(n) => json!({"key": key, "type": "float64", "value": n}),
            None => json!({"key": key, "type": "float64", "value": v.to_text()}),
        },
        AnyValue::Bytes(b) => json!({"key": key, "type": "binary", "value": base64(b)}),
        AnyValue::Empty => json!({"key": key, "type": "string", "value": ""}),
        AnyValue::Array(_) | AnyValue::Map(_) => {
            json!({"key": key, "type": "string", "value": v.to_json().to_string()})
        }
    }
}

fn tags(a: &Attributes) -> Vec<Value> {
    a.iter().map(|(k, v)| kv(k, v)).collect()
}

fn span_json(r: &SpanRecord, process_id: &str) -> Value {
    let s = &r.span;
    let trace_hex = trace_id_hex(&s.trace_id);
    let mut refs = Vec::new();
    if s.parent_span_id != [0; 8] {
        refs.push(
            json!({"refType": "CHILD_OF", "traceID": trace_hex, "spanID": hex(&s.parent_span_id)}),
        );
    }
    for l in &s.links {
        refs.push(json!({"refType": "FOLLOWS_FROM", "traceID": trace_id_hex(&l.trace_id), "spanID": hex(&l.span_id)}));
    }
    let mut t = Vec::new();
    if !s.scope.name.is_empty() {
        t.push(kv(
            "otel.scope.name",
            &AnyValue::String(s.scope.name.clone()),
        ));
    }
    if !s.scope.version.is_empty() {
        t.push(kv(
            "otel.scope.version",
            &AnyValue::String(s.scope.version.clone()),
        ));
    }
    t.extend(tags(&s.attributes));
    let kind = kind_name(s.kind);
    if !kind.is_empty() {
        t.push(kv("span.kind", &AnyValue::String(kind.into())));
    }
    match s.status_code {
        1 => t.push(kv("otel.status_code", &AnyValue::String("OK".into()))),
        2 => {
            t.push(kv("otel.status_code", &AnyValue::String("ERROR".into())));
            t.push(kv("error", &AnyValue::Bool(true)));
        }
        _ => {}
    }
    if !s.status_message.is_empty() {
        t.push(kv(
            "otel.status_description",
            &AnyValue::String(s.status_message.clone()),
        ));
    }
    if !s.trace_state.is_empty() {
        t.push(kv(
            "w3c.tracestate",
            &AnyValue::String(s.trace_state.clone()),
        ));
    }
    let logs: Vec<Value> = s
        .events
        .iter()
        .map(|e| {
            let mut fields = vec![kv("event", &AnyValue::String(e.name.clone()))];
            fields.extend(tags(&e.attributes));
            json!({"timestamp": e.time_ns / 1000, "fields": fields})
        })
        .collect();
    json!({
        "traceID": trace_hex,
        "spanID": hex(&s.span_id),
        "operationName": s.name,
        "references": refs,
        "startTime": s.start_ns / 1000,
        "duration": (s.end_ns - s.start_ns) / 1000,
        "tags": t,
        "logs": logs,
        "processID": process_id,
        "warnings": null,
    })
}

/// One trace (its spans) in the UI model, with its process table.
fn trace_json(spans: &[SpanRecord]) -> Value {
    // A process is a service with its resource; spans read together share the resource's
    // `Arc`, so equal resources are mostly found by address.
    let mut processes: Vec<(&str, &Arc<Attributes>)> = Vec::new();
    let mut out = Vec::with_capacity(spans.len());
    for r in spans {
        let known = processes.iter().position(|(svc, res)| {
            *svc == r.service_name && (Arc::ptr_eq(res, &r.resource) || ***res == *r.resource)
        });
        let n = match known {
            Some(i) => i + 1,
            None => {
                processes.push((&r.service_name, &r.resource));
                processes.len()
            }
        };
        out.push(span_json(r, &format!("p{n}")));
    }
    let procs: serde_json::Map<String, Value> = processes
        .into_iter()
        .enumerate()
        .map(|(i, (svc, res))| {
            let t: Vec<Value> = res
                .iter()
                .filter(|(k, _)| k != "service.name")
                .map(|(k, v)| kv(k, v))
                .collect();
            (
                format!("p{}", i + 1),
                json!({"serviceName": svc, "tags": t}),
            )
        })
        .collect();
    json!({
        "traceID": spans.first().map(|s| trace_id_hex(&s.span.trace_id)).unwrap_or_default(),
        "spans": out,
        "processes": procs,
        "warnings": null,
    })
}

/// Traces in the UI model (the `data` of a traces response).
pub fn traces_json(traces: &[Vec<SpanRecord>]) -> Value {
    Value::Array(traces.iter().map(|t| trace_json(t)).collect())
}
