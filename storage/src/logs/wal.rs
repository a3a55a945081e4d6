//! The logs WAL record: a whole batch (streams with labels, resource and records).

use std::sync::Arc;

use crate::codec::{Dec, Enc};
use crate::error::{Result, StorageError};
use crate::model::{AnyValue, Attributes, Labels, LogRecord, LogStream, LogsBatch, Scope};

pub(crate) const BATCH: u8 = 1;

pub(crate) fn encode(batch: &LogsBatch) -> Vec<u8> {
    let mut e = Enc::with_capacity(256 * batch.records() + 64);
    e.uvarint(batch.streams.len() as u64);
    for s in &batch.streams {
        s.labels.encode(&mut e);
        s.resource.encode(&mut e);
        e.uvarint(s.records.len() as u64);
        let mut last_scope: Option<&Arc<Scope>> = None;
        for r in &s.records {
            e.ivarint(r.time_ns);
            e.ivarint(r.observed_time_ns.wrapping_sub(r.time_ns));
            e.ivarint(i64::from(r.severity_number));
            e.str(&r.severity_text);
            r.body.encode(&mut e);
            r.attributes.encode(&mut e);
            if r.trace_id == [0; 16] {
                e.u8(0);
            } else {
                e.u8(1);
                e.raw(&r.trace_id);
                e.raw(&r.span_id);
            }
            e.uvarint(u64::from(r.flags));
            e.str(&r.event_name);
            // Records of one scope share it: write it once per run.
            if last_scope.is_some_and(|l| Arc::ptr_eq(l, &r.scope) || **l == *r.scope) {
                e.u8(0);
            } else {
                e.u8(1);
                r.scope.encode(&mut e);
                last_scope = Some(&r.scope);
            }
        }
    }
    e.buf
}

pub(crate) fn decode(payload: &[u8]) -> Result<LogsBatch> {
    let mut d = Dec::new(payload, "logs wal record");
    let n = d.count(3)?;
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let labels = Labels::decode(&mut d)?;
        let resource = Arc::new(Attributes::decode(&mut d)?);
        let nr = d.count(8)?;
        let mut records = Vec::with_capacity(nr);
        let mut scope = Arc::new(Scope::default());
        for _ in 0..nr {
            let time_ns = d.ivarint()?;
            let observed_time_ns = time_ns.wrapping_add(d.ivarint()?);
            let severity_number = i32::try_from(d.ivarint()?)
                .map_err(|_| StorageError::decode("logs wal record", "severity out of range"))?;
            let severity_text = d.string()?;
            let body = AnyValue::decode(&mut d)?;
            let attributes = Attributes::decode(&mut d)?;
            let (trace_id, span_id) = if d.u8()? == 1 {
                (d.fixed::<16>()?, d.fixed::<8>()?)
            } else {
                ([0; 16], [0; 8])
            };
            let flags = u32::try_from(d.uvarint()?)
                .map_err(|_| StorageError::decode("logs wal record", "flags out of range"))?;
            let event_name = d.string()?;
            if d.u8()? == 1 {
                scope = Arc::new(Scope::decode(&mut d)?);
            }
            records.push(LogRecord {
                time_ns,
                observed_time_ns,
                severity_number,
                severity_text,
                body,
                attributes,
                trace_id,
                span_id,
                flags,
                event_name,
                scope: scope.clone(),
            });
        }
        streams.push(LogStream {
            labels,
            resource,
            records,
        });
    }
    Ok(LogsBatch { streams })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::value::tests::{any_value, attributes};
    use proptest::prelude::*;

    fn record() -> impl Strategy<Value = LogRecord> {
        (
            any::<i64>(),
            any::<i64>(),
            0i32..25,
            ".{0,6}",
            any_value(),
            attributes(),
            any::<[u8; 16]>(),
            any::<[u8; 8]>(),
            "[a-z]{0,4}",
        )
            .prop_map(
                |(t, o, sn, st, body, attributes, tid, sid, scope)| LogRecord {
                    time_ns: t,
                    observed_time_ns: o,
                    severity_number: sn,
                    severity_text: st,
                    body,
                    attributes,
                    trace_id: tid,
                    span_id: if tid == [0; 16] { [0; 8] } else { sid },
                    flags: 1,
                    event_name: String::new(),
                    scope: Arc::new(Scope {
                        name: scope,
                        ..Default::default()
                    }),
                },
            )
    }

    proptest! {
        #[test]
        fn batch_roundtrip(streams in proptest::collection::vec((proptest::collection::vec(("[a-z]{1,3}", "[a-z]{1,3}"), 0..3), attributes(), proptest::collection::vec(record(), 0..4)), 0..3)) {
            let batch = LogsBatch { streams: streams.into_iter().map(|(l, r, recs)| LogStream { labels: Labels::from_pairs(l), resource: Arc::new(r), records: recs }).collect() };
            prop_assert_eq!(decode(&encode(&batch)).unwrap(), batch);
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(b in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = decode(&b);
        }
    }
}
