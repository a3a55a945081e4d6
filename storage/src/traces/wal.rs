//! The traces WAL record (a whole batch) and the encodings of span events and links
//! shared with the part format.

use std::sync::Arc;

use crate::codec::{Dec, Enc};
use crate::error::{Result, StorageError};
use crate::model::{Attributes, ResourceSpans, Scope, Span, SpanEvent, SpanLink, TracesBatch};

pub(crate) const BATCH: u8 = 1;

fn u32_of(v: u64, what: &'static str) -> Result<u32> {
    u32::try_from(v).map_err(|_| StorageError::decode("span", format!("{what} out of range")))
}

fn i32_of(v: i64, what: &'static str) -> Result<i32> {
    i32::try_from(v).map_err(|_| StorageError::decode("span", format!("{what} out of range")))
}

pub(crate) fn encode_events(events: &[SpanEvent], e: &mut Enc) {
    e.uvarint(events.len() as u64);
    for ev in events {
        e.ivarint(ev.time_ns);
        e.str(&ev.name);
        ev.attributes.encode(e);
        e.uvarint(u64::from(ev.dropped_attributes_count));
    }
}

pub(crate) fn decode_events(d: &mut Dec<'_>) -> Result<Vec<SpanEvent>> {
    let n = d.count(4)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(SpanEvent {
            time_ns: d.ivarint()?,
            name: d.string()?,
            attributes: Attributes::decode(d)?,
            dropped_attributes_count: u32_of(d.uvarint()?, "dropped count")?,
        });
    }
    Ok(v)
}

pub(crate) fn encode_links(links: &[SpanLink], e: &mut Enc) {
    e.uvarint(links.len() as u64);
    for l in links {
        e.raw(&l.trace_id);
        e.raw(&l.span_id);
        e.str(&l.trace_state);
        l.attributes.encode(e);
        e.uvarint(u64::from(l.dropped_attributes_count));
        e.uvarint(u64::from(l.flags));
    }
}

pub(crate) fn decode_links(d: &mut Dec<'_>) -> Result<Vec<SpanLink>> {
    let n = d.count(28)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(SpanLink {
            trace_id: d.fixed::<16>()?,
            span_id: d.fixed::<8>()?,
            trace_state: d.string()?,
            attributes: Attributes::decode(d)?,
            dropped_attributes_count: u32_of(d.uvarint()?, "dropped count")?,
            flags: u32_of(d.uvarint()?, "flags")?,
        });
    }
    Ok(v)
}

pub(crate) fn encode(batch: &TracesBatch) -> Vec<u8> {
    let mut e = Enc::with_capacity(512 * batch.spans() + 64);
    e.uvarint(batch.resources.len() as u64);
    for r in &batch.resources {
        e.str(&r.service_name);
        r.resource.encode(&mut e);
        e.uvarint(r.spans.len() as u64);
        let mut last_scope: Option<&Arc<Scope>> = None;
        for s in &r.spans {
            e.raw(&s.trace_id);
            e.raw(&s.span_id);
            e.raw(&s.parent_span_id);
            e.str(&s.trace_state);
            e.uvarint(u64::from(s.flags));
            e.str(&s.name);
            e.ivarint(i64::from(s.kind));
            e.ivarint(s.start_ns);
            e.ivarint(s.end_ns.wrapping_sub(s.start_ns));
            s.attributes.encode(&mut e);
            e.uvarint(u64::from(s.dropped_attributes_count));
            encode_events(&s.events, &mut e);
            e.uvarint(u64::from(s.dropped_events_count));
            encode_links(&s.links, &mut e);
            e.uvarint(u64::from(s.dropped_links_count));
            e.ivarint(i64::from(s.status_code));
            e.str(&s.status_message);
            if last_scope.is_some_and(|l| Arc::ptr_eq(l, &s.scope) || **l == *s.scope) {
                e.u8(0);
            } else {
                e.u8(1);
                s.scope.encode(&mut e);
                last_scope = Some(&s.scope);
            }
        }
    }
    e.buf
}

pub(crate) fn decode(payload: &[u8]) -> Result<TracesBatch> {
    let mut d = Dec::new(payload, "traces wal record");
    let n = d.count(3)?;
    let mut resources = Vec::with_capacity(n);
    for _ in 0..n {
        let service_name = d.string()?;
        let resource = Arc::new(Attributes::decode(&mut d)?);
        let ns = d.count(40)?;
        let mut spans = Vec::with_capacity(ns);
        let mut scope = Arc::new(Scope::default());
        for _ in 0..ns {
            let trace_id = d.fixed::<16>()?;
            let span_id = d.fixed::<8>()?;
            let parent_span_id = d.fixed::<8>()?;
            let trace_state = d.string()?;
            let flags = u32_of(d.uvarint()?, "flags")?;
            let name = d.string()?;
            let kind = i32_of(d.ivarint()?, "kind")?;
            let start_ns = d.ivarint()?;
            let end_ns = start_ns.wrapping_add(d.ivarint()?);
            let attributes = Attributes::decode(&mut d)?;
            let dropped_attributes_count = u32_of(d.uvarint()?, "dropped count")?;
            let events = decode_events(&mut d)?;
            let dropped_events_count = u32_of(d.uvarint()?, "dropped count")?;
            let links = decode_links(&mut d)?;
            let dropped_links_count = u32_of(d.uvarint()?, "dropped count")?;
            let status_code = i32_of(d.ivarint()?, "status")?;
            let status_message = d.string()?;
            if d.u8()? == 1 {
                scope = Arc::new(Scope::decode(&mut d)?);
            }
            spans.push(Span {
                trace_id,
                span_id,
                parent_span_id,
                trace_state,
                flags,
                name,
                kind,
                start_ns,
                end_ns,
                attributes,
                dropped_attributes_count,
                events,
                dropped_events_count,
                links,
                dropped_links_count,
                status_code,
                status_message,
                scope: scope.clone(),
            });
        }
        resources.push(ResourceSpans {
            service_name,
            resource,
            spans,
        });
    }
    Ok(TracesBatch { resources })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::value::tests::attributes;
    use proptest::prelude::*;

    pub(crate) fn span() -> impl Strategy<Value = Span> {
        (
            any::<[u8; 16]>(),
            any::<[u8; 8]>(),
            any::<[u8; 8]>(),
            "[a-z/]{0,8}",
            0i32..6,
            any::<i64>(),
            any::<i64>(),
            attributes(),
            proptest::collection::vec(("[a-z]{0,4}", any::<i64>(), attributes()), 0..2),
            proptest::collection::vec((any::<[u8; 16]>(), any::<[u8; 8]>(), attributes()), 0..2),
            0i32..3,
        )
            .prop_map(
                |(tid, sid, pid, name, kind, start, end, attributes, events, links, status)| Span {
                    trace_id: tid,
                    span_id: sid,
                    parent_span_id: pid,
                    name,
                    kind,
                    start_ns: start,
                    end_ns: end,
                    attributes,
                    events: events
                        .into_iter()
                        .map(|(n, t, a)| SpanEvent {
                            time_ns: t,
                            name: n,
                            attributes: a,
                            dropped_attributes_count: 0,
                        })
                        .collect(),
                    links: links
                        .into_iter()
                        .map(|(t, s, a)| SpanLink {
                            trace_id: t,
                            span_id: s,
                            attributes: a,
                            ..Default::default()
                        })
                        .collect(),
                    status_code: status,
                    status_message: "m".into(),
                    scope: Arc::new(Scope {
                        name: "lib".into(),
                        version: "1".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
    }

    proptest! {
        #[test]
        fn batch_roundtrip(res in proptest::collection::vec(("[a-z]{1,5}", attributes(), proptest::collection::vec(span(), 0..3)), 0..3)) {
            let batch = TracesBatch { resources: res.into_iter().map(|(s, r, spans)| ResourceSpans { service_name: s, resource: Arc::new(r), spans }).collect() };
            prop_assert_eq!(decode(&encode(&batch)).unwrap(), batch);
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(b in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&b);
        }
    }
}
