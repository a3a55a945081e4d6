//! OTLP traces → spans grouped by resource, with ids checked for length and non-zero.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span as PSpan;
use signalbox_storage::{ResourceSpans, Scope, Span, SpanEvent, SpanLink, TracesBatch};

use super::{attributes, ns, scope, span_id, trace_id};

pub(crate) struct Converted {
    pub(crate) batch: TracesBatch,
    pub(crate) rejected: u64,
    pub(crate) reasons: Vec<String>,
}

fn span(s: &PSpan, sc: &Arc<Scope>) -> Result<Span, String> {
    let tid = trace_id(&s.trace_id)?;
    let sid = span_id(&s.span_id)?;
    if tid == [0; 16] {
        return Err("span has no trace id".into());
    }
    if sid == [0; 8] {
        return Err("span has no span id".into());
    }
    let parent = span_id(&s.parent_span_id).map_err(|e| format!("parent {e}"))?;
    let mut links = Vec::with_capacity(s.links.len());
    for l in &s.links {
        links.push(SpanLink {
            trace_id: trace_id(&l.trace_id).map_err(|e| format!("link {e}"))?,
            span_id: span_id(&l.span_id).map_err(|e| format!("link {e}"))?,
            trace_state: l.trace_state.clone(),
            attributes: attributes(&l.attributes),
            dropped_attributes_count: l.dropped_attributes_count,
            flags: l.flags,
        });
    }
    let (status_code, status_message) = s
        .status
        .as_ref()
        .map(|st| (st.code, st.message.clone()))
        .unwrap_or_default();
    Ok(Span {
        trace_id: tid,
        span_id: sid,
        parent_span_id: parent,
        trace_state: s.trace_state.clone(),
        flags: s.flags,
        name: s.name.clone(),
        kind: s.kind,
        start_ns: ns(s.start_time_unix_nano),
        end_ns: ns(s.end_time_unix_nano.max(s.start_time_unix_nano)),
        attributes: attributes(&s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        events: s
            .events
            .iter()
            .map(|e| SpanEvent {
                time_ns: ns(e.time_unix_nano),
                name: e.name.clone(),
                attributes: attributes(&e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: s.dropped_events_count,
        links,
        dropped_links_count: s.dropped_links_count,
        status_code,
        status_message,
        scope: sc.clone(),
    })
}

pub(crate) fn convert(req: &ExportTraceServiceRequest) -> Converted {
    let mut resources = Vec::new();
    let mut rejected = 0;
    let mut reasons: Vec<String> = Vec::new();
    for rs in &req.resource_spans {
        let resource = Arc::new(
            rs.resource
                .as_ref()
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default(),
        );
        let service_name = resource
            .get("service.name")
            .map(|v| v.to_text())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown_service".into());
        let mut spans = Vec::new();
        for ss in &rs.scope_spans {
            let sc = Arc::new(scope(ss.scope.as_ref()));
            for s in &ss.spans {
                match span(s, &sc) {
                    Ok(sp) => spans.push(sp),
                    Err(e) => {
                        rejected += 1;
                        if reasons.len() < 5 && !reasons.contains(&e) {
                            reasons.push(e);
                        }
                    }
                }
            }
        }
        if !spans.is_empty() {
            resources.push(ResourceSpans {
                service_name,
                resource,
                spans,
            });
        }
    }
    Converted {
        batch: TracesBatch { resources },
        rejected,
        reasons,
    }
}
