//! The contracts between storage and its users: a sink the collector writes to, and
//! one reader per signal for the query side. `Storage` (durable) and `MemStore`
//! (in memory, for tests) implement all of them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::error::Result;
use crate::metrics::Series;
use crate::metrics::exemplars::SeriesExemplars;
use crate::model::{
    Attributes, Labels, LogRecord, LogsBatch, Matcher, MetricMetadata, MetricsBatch, Span,
    TracesBatch,
};

/// How much of a write was stored; the rest was rejected for the reasons given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    pub accepted: u64,
    pub rejected: u64,
    /// Distinct reasons, at most a few, for the client's `partial_success` message.
    pub reasons: Vec<String>,
}

impl WriteOutcome {
    pub fn reject(&mut self, n: u64, reason: impl Into<String>) {
        if n == 0 {
            return;
        }
        self.rejected += n;
        let reason = reason.into();
        if self.reasons.len() < 5 && !self.reasons.contains(&reason) {
            self.reasons.push(reason);
        }
    }

    pub fn merge(&mut self, other: WriteOutcome) {
        self.accepted += other.accepted;
        self.rejected += other.rejected;
        for r in other.reasons {
            if self.reasons.len() < 5 && !self.reasons.contains(&r) {
                self.reasons.push(r);
            }
        }
    }
}

/// Where the collector hands converted batches. A write returns only once what it
/// accepted is durable; an error means nothing of it was accepted.
#[async_trait]
pub trait IngestSink: Send + Sync {
    async fn write_metrics(&self, batch: MetricsBatch) -> Result<WriteOutcome>;
    async fn write_logs(&self, batch: LogsBatch) -> Result<WriteOutcome>;
    async fn write_traces(&self, batch: TracesBatch) -> Result<WriteOutcome>;
}

/// Series selection for PromQL. Times are milliseconds, ranges inclusive.
#[async_trait]
pub trait MetricsReader: Send + Sync {
    /// Series matching all matchers, with their samples in `[start_ms, end_ms]`, sorted by labels.
    async fn select_series(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>>;
    /// Label sets of matching series with data in the range, sorted.
    async fn series_labels(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>>;
    /// Label names of matching series, sorted.
    async fn label_names(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .series_labels(matchers, start_ms, end_ms)
            .await?
            .iter()
            .flat_map(|l| l.iter().map(|l| l.name.clone()).collect::<Vec<_>>())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
    /// Values of one label over matching series, sorted.
    async fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>> {
        let mut values: Vec<String> = self
            .series_labels(matchers, start_ms, end_ms)
            .await?
            .iter()
            .filter_map(|l| l.get(name).map(str::to_owned))
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }
    /// Type, unit and help of metrics, by metric name.
    async fn metadata(&self) -> Result<Vec<MetricMetadata>>;
    /// Exemplars in `[start_ms, end_ms]` of the series matching all matchers of one of
    /// the sets, by series (sorted by labels), oldest first.
    async fn select_exemplars(
        &self,
        sets: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesExemplars>>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    Forward,
    #[default]
    Backward,
}

/// A log search. Times are nanoseconds, `[start_ns, end_ns)`.
#[derive(Clone, Debug, Default)]
pub struct LogQuery {
    pub matchers: Vec<Matcher>,
    pub start_ns: i64,
    pub end_ns: i64,
    /// Case-sensitive substrings that must all occur in the line (LogQL `|=`).
    pub contains: Vec<String>,
    /// Only records of this trace, when set.
    pub trace_id: Option<[u8; 16]>,
    /// What the records must carry; storage may leave the rest out and read fewer columns.
    pub fields: LogFields,
    pub direction: Direction,
    pub limit: usize,
}

impl LogQuery {
    /// Whether a record passes the query's record filters (trace id and substrings); the
    /// stream matchers and the time range are checked by the caller.
    pub(crate) fn record_matches(&self, trace_id: &[u8], line: &str) -> bool {
        self.trace_matches(trace_id) && line_matches(line, &self.contains)
    }

    /// Whether a stored trace id (empty when the record has none) is the query's.
    pub(crate) fn trace_matches(&self, trace_id: &[u8]) -> bool {
        self.trace_id
            .is_none_or(|t| t.as_slice() == trace_id || (trace_id.is_empty() && t == [0; 16]))
    }
}

/// The parts of its records a log query needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFields {
    /// Everything stored.
    #[default]
    All,
    /// What log queries read — time, severity, line, attributes, trace and span id —
    /// with the observed time set to the time, the body to the line as text and flags,
    /// event name and scope left empty.
    Lines,
    /// As `Lines` without the line (for counting lines): the body may be empty. A query
    /// with `contains` still reads the lines to test them.
    NoLines,
}

/// A log record with the stream it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// Shared by the entries of one stream read together (cheap to clone, and
    /// `Arc::ptr_eq` tells a reader the stream is the same without comparing labels).
    pub labels: Arc<Labels>,
    pub resource: Arc<Attributes>,
    pub record: LogRecord,
}

/// A test of a line, run by storage on each line it reads.
pub type LineTest = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Which records' times `LogsReader::log_times` returns. Times are nanoseconds,
/// `[start_ns, end_ns)`.
#[derive(Clone, Default)]
pub struct TimesQuery {
    pub matchers: Vec<Matcher>,
    pub start_ns: i64,
    pub end_ns: i64,
    /// Case-sensitive substrings that must all occur in the line (LogQL `|=`); the
    /// full-text index finds the candidates.
    pub contains: Vec<String>,
    /// A further test of each line that contains them.
    pub line_test: Option<LineTest>,
    /// Read the lines to count their bytes, also when nothing tests them.
    pub bytes: bool,
    /// Return each record's line bytes with its time (`StreamTimes::sizes`).
    pub sizes: bool,
    /// `None` is returned when more than this many records contain the substrings.
    pub max: u64,
}

impl TimesQuery {
    /// Whether the lines must be read.
    pub(crate) fn reads_lines(&self) -> bool {
        self.bytes || self.sizes || !self.contains.is_empty() || self.line_test.is_some()
    }
}

/// What `LogsReader::log_times` found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FoundTimes {
    /// One entry per stream and severity, sorted by both.
    pub streams: Vec<StreamTimes>,
    /// Records read that contain the substrings, and their line bytes when lines were
    /// read (before the line test).
    pub lines: u64,
    pub bytes: u64,
}

/// The times of the records of one stream with one severity in a range.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamTimes {
    pub labels: Arc<Labels>,
    pub severity_number: i32,
    pub severity_text: String,
    /// Ascending.
    pub times: Vec<i64>,
    /// The line bytes of each record, in the order of `times`, when the query asks for
    /// them; else empty.
    pub sizes: Vec<u64>,
}

/// A count of records read, shared by concurrent reads that stop once it passes `max`.
pub(crate) struct ReadBudget {
    max: u64,
    read: AtomicU64,
}

impl ReadBudget {
    pub(crate) fn new(max: u64) -> ReadBudget {
        ReadBudget {
            max,
            read: AtomicU64::new(0),
        }
    }

    /// Counts `n` more records; false once more than `max` have been read in all.
    pub(crate) fn take(&self, n: u64) -> bool {
        self.read.fetch_add(n, Ordering::Relaxed).saturating_add(n) <= self.max
    }

    pub(crate) fn exceeded(&self) -> bool {
        self.read.load(Ordering::Relaxed) > self.max
    }
}

/// Groups times by severity while one stream's records are read in order.
#[derive(Default)]
pub(crate) struct SeverityTimes {
    /// Severities seen in the current stream: number, text, index into `out`.
    seen: Vec<(i32, String, usize)>,
    pub(crate) out: Vec<StreamTimes>,
    pub(crate) lines: u64,
    pub(crate) bytes: u64,
}

impl SeverityTimes {
    /// Counts a record in the range; true when it passes the query's line tests (`line`
    /// is read only when the query tests lines).
    pub(crate) fn test(&mut self, q: &TimesQuery, line: Option<&str>) -> bool {
        let Some(line) = line.filter(|_| q.reads_lines()) else {
            self.lines += 1;
            return true;
        };
        if !line_matches(line, &q.contains) {
            return false;
        }
        self.lines += 1;
        self.bytes += line.len() as u64;
        q.line_test.as_ref().is_none_or(|t| t(line))
    }

    pub(crate) fn found(self) -> FoundTimes {
        FoundTimes {
            streams: self.out,
            lines: self.lines,
            bytes: self.bytes,
        }
    }

    /// Starts the next stream.
    pub(crate) fn stream(&mut self) {
        self.seen.clear();
    }

    /// Adds a record's time (and its line bytes, when they are asked for).
    pub(crate) fn push(
        &mut self,
        labels: &Arc<Labels>,
        (number, text): (i32, &str),
        t: i64,
        size: Option<usize>,
    ) {
        let i = match self.seen.iter().find(|s| s.0 == number && s.1 == text) {
            Some(s) => s.2,
            None => {
                self.out.push(StreamTimes {
                    labels: labels.clone(),
                    severity_number: number,
                    severity_text: text.to_string(),
                    times: Vec::new(),
                    sizes: Vec::new(),
                });
                self.seen
                    .push((number, text.to_string(), self.out.len() - 1));
                self.out.len() - 1
            }
        };
        self.out[i].times.push(t);
        if let Some(n) = size {
            self.out[i].sizes.push(n as u64);
        }
    }
}

#[async_trait]
pub trait LogsReader: Send + Sync {
    /// Matching records ordered by time in `direction` (then by stream labels), at most `limit`.
    async fn query_logs(&self, q: &LogQuery) -> Result<Vec<LogEntry>>;
    /// The times of the matching records, by stream and severity: what counting lines
    /// needs, without building records. `None` when more than `q.max` records contain
    /// the substrings (reading stops soon after passing it).
    async fn log_times(&self, q: &TimesQuery) -> Result<Option<FoundTimes>>;
    /// Label sets of matching streams with records in `[start_ns, end_ns)`, sorted.
    async fn log_streams(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<Labels>>;
}

/// A span search. Times are nanoseconds; a span matches when it starts in `[start_ns, end_ns)`.
#[derive(Clone, Debug, Default)]
pub struct SpanQuery {
    pub service: Option<String>,
    pub operation: Option<String>,
    /// Key/value pairs that must all equal a span attribute or a resource attribute (as text).
    pub attributes: Vec<(String, String)>,
    pub min_duration_ns: Option<i64>,
    pub max_duration_ns: Option<i64>,
    pub start_ns: i64,
    pub end_ns: i64,
    /// At most this many spans, newest first.
    pub limit: usize,
    /// Only the spans of the newest this many traces (ranked by their newest matching
    /// span), 0 for any number. A hint: storage may return spans of more traces.
    pub max_traces: usize,
}

/// A span with the service and resource that sent it.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanRecord {
    pub service_name: String,
    pub resource: Arc<Attributes>,
    pub span: Span,
}

#[async_trait]
pub trait TracesReader: Send + Sync {
    /// Every span of a trace, ordered by start time.
    async fn trace(&self, trace_id: [u8; 16]) -> Result<Vec<SpanRecord>>;
    async fn search_spans(&self, q: &SpanQuery) -> Result<Vec<SpanRecord>>;
    /// Services that sent spans, sorted.
    async fn services(&self) -> Result<Vec<String>>;
    /// Operation names and span kinds of a service, sorted.
    async fn operations(&self, service: &str) -> Result<Vec<(String, i32)>>;
}

/// Whether a span matches a search (everything but the time range and limit).
pub(crate) fn span_matches(
    q: &SpanQuery,
    service: &str,
    resource: &Attributes,
    span: &Span,
) -> bool {
    if q.service.as_deref().is_some_and(|s| s != service) {
        return false;
    }
    if q.operation.as_deref().is_some_and(|o| o != span.name) {
        return false;
    }
    let d = span.duration_ns();
    if q.min_duration_ns.is_some_and(|m| d < m) || q.max_duration_ns.is_some_and(|m| d > m) {
        return false;
    }
    q.attributes.iter().all(|(k, v)| {
        let text = |a: &Attributes| a.get(k).map(|x| x.to_text());
        text(&span.attributes).or_else(|| text(resource)).as_deref() == Some(v.as_str())
    })
}

/// Joins the times of streams read from several sources (head, parts) into one entry per
/// stream and severity, sorted by both, the times ascending.
pub(crate) fn join_stream_times(all: Vec<FoundTimes>) -> FoundTimes {
    type Key = (Arc<Labels>, i32, String);
    let mut by: BTreeMap<Key, (Vec<i64>, Vec<u64>)> = BTreeMap::new();
    let (mut lines, mut bytes) = (0, 0);
    for f in all {
        lines += f.lines;
        bytes += f.bytes;
        for s in f.streams {
            if s.times.is_empty() {
                continue;
            }
            let (times, sizes) = by
                .entry((s.labels, s.severity_number, s.severity_text))
                .or_default();
            times.extend(s.times);
            sizes.extend(s.sizes);
        }
    }
    let streams = by
        .into_iter()
        .map(
            |((labels, severity_number, severity_text), (mut times, mut sizes))| {
                // Ascending runs, one per source: a merging sort joins them cheaply.
                if sizes.len() == times.len() {
                    let mut pairs: Vec<(i64, u64)> = times.into_iter().zip(sizes).collect();
                    pairs.sort_by_key(|p| p.0);
                    (times, sizes) = pairs.into_iter().unzip();
                } else {
                    times.sort();
                    sizes.clear();
                }
                StreamTimes {
                    labels,
                    severity_number,
                    severity_text,
                    times,
                    sizes,
                }
            },
        )
        .collect();
    FoundTimes {
        streams,
        lines,
        bytes,
    }
}

/// Sorts log entries by time in the query's direction and applies its limit.
/// Entries at one time: by stream labels (the same stream without comparing them).
fn stream_order(a: &LogEntry, b: &LogEntry) -> std::cmp::Ordering {
    if Arc::ptr_eq(&a.labels, &b.labels) {
        std::cmp::Ordering::Equal
    } else {
        a.labels.cmp(&b.labels)
    }
}

pub(crate) fn order_and_limit(entries: &mut Vec<LogEntry>, q: &LogQuery) {
    match q.direction {
        Direction::Forward => entries.sort_by(|a, b| {
            a.record
                .time_ns
                .cmp(&b.record.time_ns)
                .then_with(|| stream_order(a, b))
        }),
        Direction::Backward => entries.sort_by(|a, b| {
            b.record
                .time_ns
                .cmp(&a.record.time_ns)
                .then_with(|| stream_order(a, b))
        }),
    }
    if q.limit > 0 {
        entries.truncate(q.limit);
    }
}

/// Whether a line contains every required substring.
pub(crate) fn line_matches(line: &str, contains: &[String]) -> bool {
    contains
        .iter()
        .all(|c| memchr::memmem::find(line.as_bytes(), c.as_bytes()).is_some())
}
