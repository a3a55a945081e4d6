//! The traces head: spans in arrival order, an index by trace id, and the
//! services and operations seen.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::api::{SpanQuery, SpanRecord, span_matches};
use crate::model::{Attributes, ResourceSpans};

#[derive(Default)]
pub(crate) struct TracesHead {
    resources: Vec<(String, Arc<Attributes>)>,
    resource_ids: HashMap<(String, Vec<u8>), u32>,
    pub(crate) spans: Vec<(u32, crate::model::Span)>,
    by_trace: HashMap<[u8; 16], Vec<u32>>,
    pub(crate) operations: BTreeMap<String, BTreeSet<(String, i32)>>,
    bytes: u64,
    min_ns: i64,
    max_ns: i64,
}

impl TracesHead {
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    pub(crate) fn insert(&mut self, r: ResourceSpans) {
        let key = (r.service_name.clone(), r.resource.to_bytes());
        let res = match self.resource_ids.get(&key) {
            Some(&i) => i,
            None => {
                let i = self.resources.len() as u32;
                self.bytes += (r.resource.heap_bytes() + r.service_name.len() + 64) as u64;
                self.resources
                    .push((r.service_name.clone(), r.resource.clone()));
                self.resource_ids.insert(key, i);
                i
            }
        };
        for s in r.spans {
            if self.spans.is_empty() {
                self.min_ns = s.start_ns;
                self.max_ns = s.start_ns;
            } else {
                self.min_ns = self.min_ns.min(s.start_ns);
                self.max_ns = self.max_ns.max(s.start_ns);
            }
            let ops = self.operations.entry(r.service_name.clone()).or_default();
            if !ops.contains(&(s.name.clone(), s.kind)) {
                ops.insert((s.name.clone(), s.kind));
            }
            self.bytes += s.heap_bytes() as u64 + 16;
            self.by_trace
                .entry(s.trace_id)
                .or_default()
                .push(self.spans.len() as u32);
            self.spans.push((res, s));
        }
    }

    fn record(&self, i: usize) -> SpanRecord {
        let (res, span) = &self.spans[i];
        let (service, resource) = &self.resources[*res as usize];
        SpanRecord {
            service_name: service.clone(),
            resource: resource.clone(),
            span: span.clone(),
        }
    }

    pub(crate) fn trace(&self, id: &[u8; 16]) -> Vec<SpanRecord> {
        self.by_trace
            .get(id)
            .map(|v| v.iter().map(|&i| self.record(i as usize)).collect())
            .unwrap_or_default()
    }

    pub(crate) fn search(&self, q: &SpanQuery) -> Vec<SpanRecord> {
        if self.spans.is_empty() || q.end_ns <= self.min_ns || q.start_ns > self.max_ns {
            return Vec::new();
        }
        let mut rows: Vec<(i64, [u8; 16], usize)> = (0..self.spans.len())
            .filter(|&i| {
                let (res, s) = &self.spans[i];
                let (service, resource) = &self.resources[*res as usize];
                s.start_ns >= q.start_ns
                    && s.start_ns < q.end_ns
                    && span_matches(q, service, resource, s)
            })
            .map(|i| (self.spans[i].1.start_ns, self.spans[i].1.trace_id, i))
            .collect();
        super::part::newest(&mut rows, q.max_traces, q.limit);
        rows.into_iter().map(|(_, _, i)| self.record(i)).collect()
    }

    /// Every span, sorted by trace id then start time (what a part is written from).
    pub(crate) fn sorted_refs(&self) -> Vec<super::part::SpanRef<'_>> {
        let mut v: Vec<super::part::SpanRef<'_>> = self
            .spans
            .iter()
            .map(|(res, span)| {
                let (service, resource) = &self.resources[*res as usize];
                super::part::SpanRef {
                    service,
                    resource,
                    span,
                }
            })
            .collect();
        v.sort_by_key(|r| (r.span.trace_id, r.span.start_ns));
        v
    }
}
