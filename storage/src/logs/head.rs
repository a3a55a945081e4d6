//! The logs head: streams keyed by label set, each with its records in time order.

use std::collections::HashMap;
use std::sync::Arc;

use crate::api::{FoundTimes, LogEntry, LogQuery, SeverityTimes, TimesQuery};
use crate::index::Postings;
use crate::model::{Attributes, Labels, LogRecord, LogStream, Matcher};

pub(crate) struct HeadStream {
    pub(crate) labels: Labels,
    pub(crate) resource: Arc<Attributes>,
    /// Sorted by time; records with equal times keep their arrival order.
    pub(crate) records: Vec<LogRecord>,
}

#[derive(Default)]
pub(crate) struct LogsHead {
    pub(crate) streams: Vec<HeadStream>,
    by_labels: HashMap<Labels, u32>,
    postings: Postings,
    bytes: u64,
    records: u64,
    min_ns: i64,
    max_ns: i64,
}

impl LogsHead {
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records == 0
    }

    pub(crate) fn insert_stream(&mut self, s: LogStream) {
        let idx = match self.by_labels.get(&s.labels) {
            Some(&i) => i,
            None => {
                let i = self.streams.len() as u32;
                self.bytes += 128
                    + s.labels
                        .iter()
                        .map(|l| l.name.len() + l.value.len() + 48)
                        .sum::<usize>() as u64;
                self.postings.add(i, &s.labels);
                self.by_labels.insert(s.labels.clone(), i);
                self.streams.push(HeadStream {
                    labels: s.labels,
                    resource: s.resource,
                    records: Vec::new(),
                });
                i
            }
        };
        let stream = &mut self.streams[idx as usize];
        for r in s.records {
            self.bytes += r.heap_bytes() as u64;
            if self.records == 0 {
                self.min_ns = r.time_ns;
                self.max_ns = r.time_ns;
            } else {
                self.min_ns = self.min_ns.min(r.time_ns);
                self.max_ns = self.max_ns.max(r.time_ns);
            }
            self.records += 1;
            match stream.records.last() {
                Some(last) if last.time_ns > r.time_ns => {
                    let at = stream.records.partition_point(|x| x.time_ns <= r.time_ns);
                    stream.records.insert(at, r);
                }
                _ => stream.records.push(r),
            }
        }
    }

    fn matching_streams<'a>(
        &'a self,
        matchers: &'a [Matcher],
    ) -> impl Iterator<Item = &'a HeadStream> + 'a {
        self.postings
            .candidates(matchers)
            .into_iter()
            .map(|i| &self.streams[i as usize])
            .filter(|s| s.labels.matches(matchers))
    }

    pub(crate) fn query(&self, q: &LogQuery) -> Vec<LogEntry> {
        let mut out = Vec::new();
        if self.records == 0 || q.end_ns <= self.min_ns || q.start_ns > self.max_ns {
            return out;
        }
        for s in self.matching_streams(&q.matchers) {
            let lo = s.records.partition_point(|r| r.time_ns < q.start_ns);
            let hi = s.records.partition_point(|r| r.time_ns < q.end_ns);
            let mut hits: Vec<&LogRecord> = s.records[lo..hi.max(lo)]
                .iter()
                .filter(|r| q.record_matches(&r.trace_id, &r.line()))
                .collect();
            if q.limit > 0 && hits.len() > q.limit {
                // Only the first `limit` in query order can make the final cut.
                match q.direction {
                    crate::api::Direction::Forward => hits.truncate(q.limit),
                    crate::api::Direction::Backward => {
                        hits.drain(..hits.len() - q.limit);
                    }
                }
            }
            if hits.is_empty() {
                continue;
            }
            let labels = Arc::new(s.labels.clone());
            out.extend(hits.into_iter().map(|r| LogEntry {
                labels: labels.clone(),
                resource: s.resource.clone(),
                record: r.clone(),
            }));
        }
        out
    }

    /// The times of the records `q` selects, by stream and severity.
    pub(crate) fn times(&self, q: &TimesQuery) -> FoundTimes {
        let mut acc = SeverityTimes::default();
        if self.records == 0 || q.end_ns <= self.min_ns || q.start_ns > self.max_ns {
            return acc.found();
        }
        for s in self.matching_streams(&q.matchers) {
            let lo = s.records.partition_point(|r| r.time_ns < q.start_ns);
            let hi = s.records.partition_point(|r| r.time_ns < q.end_ns);
            if lo >= hi {
                continue;
            }
            let labels = Arc::new(s.labels.clone());
            acc.stream();
            for r in &s.records[lo..hi] {
                let line = q.reads_lines().then(|| r.line());
                if acc.test(q, line.as_deref()) {
                    let size = line.as_ref().filter(|_| q.sizes).map(|l| l.len());
                    let severity = (r.severity_number, r.severity_text.as_str());
                    acc.push(&labels, severity, r.time_ns, size);
                }
            }
        }
        acc.found()
    }

    pub(crate) fn stream_labels(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Vec<Labels> {
        self.matching_streams(matchers)
            .filter(|s| {
                s.records
                    .iter()
                    .any(|r| r.time_ns >= start_ns && r.time_ns < end_ns)
            })
            .map(|s| s.labels.clone())
            .collect()
    }
}
