//! OTLP logs → log streams. A stream's labels are the resource's scalar attributes with
//! Prometheus-style names (`service.name` → `service_name`); `service_name` is
//! `unknown_service` when the resource has none.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use signalbox_storage::{AnyValue, Attributes, Labels, LogRecord, LogStream, LogsBatch};

use super::{any_value, attributes, label_name, now_ns, ns, scope, span_id, trace_id};

pub(crate) struct Converted {
    pub(crate) batch: LogsBatch,
    pub(crate) rejected: u64,
    pub(crate) reasons: Vec<String>,
}

pub(crate) fn stream_labels(resource: &Attributes) -> Labels {
    let mut pairs: Vec<(String, String)> = resource
        .iter()
        .filter(|(_, v)| !matches!(v, AnyValue::Array(_) | AnyValue::Map(_) | AnyValue::Empty))
        .map(|(k, v)| (label_name(k).into_owned(), v.to_text()))
        .collect();
    if !pairs.iter().any(|(k, _)| k == "service_name") {
        pairs.push(("service_name".into(), "unknown_service".into()));
    }
    Labels::from_pairs(pairs)
}

pub(crate) fn convert(req: &ExportLogsServiceRequest) -> Converted {
    let mut streams: Vec<LogStream> = Vec::new();
    let mut rejected = 0;
    let mut reasons: Vec<String> = Vec::new();
    let now = now_ns();
    for rl in &req.resource_logs {
        let resource = Arc::new(
            rl.resource
                .as_ref()
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default(),
        );
        let labels = stream_labels(&resource);
        let mut records = Vec::new();
        for sl in &rl.scope_logs {
            let sc = Arc::new(scope(sl.scope.as_ref()));
            for r in &sl.log_records {
                let ids = trace_id(&r.trace_id).and_then(|t| span_id(&r.span_id).map(|s| (t, s)));
                let (tid, sid) = match ids {
                    Ok(x) => x,
                    Err(e) => {
                        rejected += 1;
                        if reasons.len() < 5 && !reasons.contains(&e) {
                            reasons.push(e);
                        }
                        continue;
                    }
                };
                let observed = if r.observed_time_unix_nano > 0 {
                    ns(r.observed_time_unix_nano)
                } else {
                    now
                };
                let time = if r.time_unix_nano > 0 {
                    ns(r.time_unix_nano)
                } else {
                    observed
                };
                records.push(LogRecord {
                    time_ns: time,
                    observed_time_ns: observed,
                    severity_number: r.severity_number,
                    severity_text: r.severity_text.clone(),
                    body: any_value(r.body.as_ref()),
                    attributes: attributes(&r.attributes),
                    trace_id: tid,
                    span_id: sid,
                    flags: r.flags,
                    event_name: r.event_name.clone(),
                    scope: sc.clone(),
                });
            }
        }
        if !records.is_empty() {
            streams.push(LogStream {
                labels,
                resource,
                records,
            });
        }
    }
    Converted {
        batch: LogsBatch { streams },
        rejected,
        reasons,
    }
}
