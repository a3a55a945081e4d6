//! `MemStore`: the heads alone, without WAL or parts. It implements the same sink and
//! reader contracts as `Storage`, for tests of the collector and the query side.

use std::collections::BTreeSet;

use async_trait::async_trait;
use parking_lot::RwLock;

use crate::api::{
    FoundTimes, IngestSink, LogEntry, LogQuery, LogsReader, MetricsReader, SpanQuery, SpanRecord,
    TimesQuery, TracesReader, WriteOutcome, join_stream_times, order_and_limit,
};
use crate::config::Limits;
use crate::error::Result;
use crate::logs::head::LogsHead;
use crate::metrics::exemplars::{ExemplarBuffer, SeriesExemplars};
use crate::metrics::head::MetricsHead;
use crate::metrics::{Series, merge_series};
use crate::model::{Labels, LogsBatch, Matcher, MetricMetadata, MetricsBatch, TracesBatch};
use crate::traces::head::TracesHead;
use crate::validate::{self, TimeBounds};

/// In-memory storage for tests: accepts any timestamp and keeps everything.
#[derive(Default)]
pub struct MemStore {
    metrics: RwLock<MetricsHead>,
    exemplars: parking_lot::Mutex<ExemplarBuffer>,
    logs: RwLock<LogsHead>,
    traces: RwLock<TracesHead>,
    limits: Limits,
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }

    pub fn with_limits(limits: Limits) -> MemStore {
        MemStore {
            exemplars: parking_lot::Mutex::new(ExemplarBuffer::new(limits.max_exemplars)),
            limits,
            ..Default::default()
        }
    }

    fn bounds() -> TimeBounds {
        TimeBounds {
            min_ms: i64::MIN,
            max_ms: i64::MAX,
        }
    }
}

#[async_trait]
impl IngestSink for MemStore {
    async fn write_metrics(&self, batch: MetricsBatch) -> Result<WriteOutcome> {
        let (batch, outcome) = validate::metrics(batch, &self.limits, Self::bounds());
        crate::db::insert_metrics(
            &mut self.metrics.write(),
            &batch,
            self.limits.max_active_series,
            None,
        )?;
        self.exemplars.lock().keep(&batch);
        Ok(outcome)
    }

    async fn write_logs(&self, batch: LogsBatch) -> Result<WriteOutcome> {
        let (batch, outcome) = validate::logs(batch, Self::bounds());
        let mut h = self.logs.write();
        for s in batch.streams {
            h.insert_stream(s);
        }
        Ok(outcome)
    }

    async fn write_traces(&self, batch: TracesBatch) -> Result<WriteOutcome> {
        let (batch, outcome) = validate::traces(batch, Self::bounds());
        let mut h = self.traces.write();
        for r in batch.resources {
            h.insert(r);
        }
        Ok(outcome)
    }
}

#[async_trait]
impl MetricsReader for MemStore {
    async fn select_series(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>> {
        Ok(merge_series(vec![
            self.metrics.read().select(matchers, start_ms, end_ms),
        ]))
    }

    async fn series_labels(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>> {
        let set: BTreeSet<Labels> = self
            .metrics
            .read()
            .series_labels(matchers, start_ms, end_ms)
            .into_iter()
            .collect();
        Ok(set.into_iter().collect())
    }

    async fn metadata(&self) -> Result<Vec<MetricMetadata>> {
        let mut v: Vec<MetricMetadata> = self.metrics.read().metadata.values().cloned().collect();
        v.sort_by(|a, b| a.metric.cmp(&b.metric));
        Ok(v)
    }

    async fn select_exemplars(
        &self,
        sets: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesExemplars>> {
        Ok(self.exemplars.lock().select(sets, start_ms, end_ms))
    }
}

#[async_trait]
impl LogsReader for MemStore {
    async fn query_logs(&self, q: &LogQuery) -> Result<Vec<LogEntry>> {
        let mut v = self.logs.read().query(q);
        order_and_limit(&mut v, q);
        Ok(v)
    }

    async fn log_times(&self, q: &TimesQuery) -> Result<Option<FoundTimes>> {
        let found = join_stream_times(vec![self.logs.read().times(q)]);
        Ok((found.lines <= q.max).then_some(found))
    }

    async fn log_streams(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<Labels>> {
        let set: BTreeSet<Labels> = self
            .logs
            .read()
            .stream_labels(matchers, start_ns, end_ns)
            .into_iter()
            .collect();
        Ok(set.into_iter().collect())
    }
}

#[async_trait]
impl TracesReader for MemStore {
    async fn trace(&self, trace_id: [u8; 16]) -> Result<Vec<SpanRecord>> {
        let mut v = self.traces.read().trace(&trace_id);
        v.sort_by_key(|s| s.span.start_ns);
        Ok(v)
    }

    async fn search_spans(&self, q: &SpanQuery) -> Result<Vec<SpanRecord>> {
        let mut v = self.traces.read().search(q);
        v.sort_by_key(|r| std::cmp::Reverse(r.span.start_ns));
        if q.limit > 0 {
            v.truncate(q.limit);
        }
        Ok(v)
    }

    async fn services(&self) -> Result<Vec<String>> {
        Ok(self.traces.read().operations.keys().cloned().collect())
    }

    async fn operations(&self, service: &str) -> Result<Vec<(String, i32)>> {
        Ok(self
            .traces
            .read()
            .operations
            .get(service)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default())
    }
}
