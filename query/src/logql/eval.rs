//! The LogQL engine: parsing, log queries, and the log scan both query kinds share.

use std::collections::BTreeMap;
use std::sync::Arc;

use logql::{Expr, LabelMatcher, LogQuery as LogExpr, MatchOp};
use signalbox_storage::{
    Direction, LogEntry, LogFields, LogQuery, LogsReader, MatchOp as StoreOp, Matcher, TimesQuery,
};

use crate::jaeger::hex;

use super::pipeline::{Entry, LabelMap, Pipeline, sanitize};

/// Why a query failed. Everything but `Storage` is the caller's to fix.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum LogqlError {
    #[error("parse error : {0}")]
    Parse(String),
    /// The query parses but cannot be run as asked.
    #[error("{0}")]
    Invalid(String),
    /// The query would read more than the engine allows.
    #[error("{0}")]
    Limit(String),
    #[error("{0}")]
    Storage(String),
}

impl LogqlError {
    /// Whether the client caused it (HTTP 400) rather than the server (500).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, LogqlError::Storage(_))
    }
}

/// Log lines of one stream, in the query's direction. Times are nanoseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamResult {
    pub labels: signalbox_storage::Labels,
    pub entries: Vec<(i64, String)>,
}

/// What a query returns. Metric times are milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub enum LogqlResult {
    Streams(Vec<StreamResult>),
    Scalar(i64, f64),
    Vector(Vec<(signalbox_storage::Labels, i64, f64)>),
    Matrix(Vec<(signalbox_storage::Labels, Vec<(i64, f64)>)>),
}

/// How much a query read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    pub lines: u64,
    pub bytes: u64,
}

/// Evaluates LogQL against a `LogsReader`.
#[derive(Clone)]
pub struct LogqlEngine {
    pub(crate) reader: Arc<dyn LogsReader>,
    /// At most this many log lines are read for one metric query.
    pub(crate) max_lines: u64,
    /// Records one slice of a metric query's scan holds (see `scan_all`).
    pub(crate) slice_records: usize,
}

/// Labels of an entry that came from the record rather than the stream, with the
/// values they had before the pipeline.
pub(crate) type Metadata = Vec<(String, String)>;

const BATCH: usize = 2000;
const MAX_BATCH: usize = 65_536;
/// Records one slice of a metric query's scan holds at most (before it is cut shorter).
const SLICE_RECORDS: usize = 250_000;
const FIRST_SLICE_NS: i64 = 60_000_000_000;

/// Lines of one stream: nanosecond time and text.
type Lines = Vec<(i64, String)>;

pub(crate) fn parse(q: &str) -> Result<Expr, LogqlError> {
    logql::parse(q).map_err(|e| LogqlError::Parse(e.to_string()))
}

/// Storage matchers for a stream selector; like Loki, at least one matcher must not
/// match the empty string, so a query cannot scan every stream by accident.
pub(crate) fn matchers(ms: &[LabelMatcher]) -> Result<Vec<Matcher>, LogqlError> {
    let out = ms
        .iter()
        .map(|m| {
            let op = match m.op {
                MatchOp::Eq => StoreOp::Equal,
                MatchOp::Neq => StoreOp::NotEqual,
                MatchOp::Re => StoreOp::RegexMatch,
                _ => StoreOp::RegexNoMatch,
            };
            Matcher::new(op, m.name.clone(), m.value.clone())
                .map_err(|e| LogqlError::Invalid(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !out.iter().any(|m| !m.matches_empty()) {
        return Err(LogqlError::Invalid(
            "queries require at least one regexp or equality matcher that does not have an empty-compatible value. \
             For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will"
                .into(),
        ));
    }
    Ok(out)
}

/// The normalised level of a record: from its severity number, else its severity text.
pub(crate) fn level(number: i32, text: &str) -> Option<String> {
    let by_number = match number {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => "",
    };
    if !by_number.is_empty() {
        return Some(by_number.into());
    }
    let t = text.trim().to_ascii_lowercase();
    (!t.is_empty()).then(|| match t.as_str() {
        "warning" => "warn".into(),
        "err" => "error".into(),
        "critical" | "crit" | "emergency" | "alert" => "fatal".into(),
        _ => t,
    })
}

/// One metadata label of a record as `entry` would give it (the first non-empty value
/// under that name), without building the others.
pub(crate) fn metadata_value(r: &signalbox_storage::LogRecord, name: &str) -> Option<String> {
    let builtin = match name {
        "level" => level(r.severity_number, &r.severity_text),
        "severity_text" => Some(r.severity_text.clone()),
        "trace_id" => (r.trace_id != [0; 16]).then(|| hex(&r.trace_id)),
        "span_id" => (r.span_id != [0; 8]).then(|| hex(&r.span_id)),
        _ => None,
    };
    builtin.filter(|v| !v.is_empty()).or_else(|| {
        r.attributes
            .iter()
            .filter(|(k, _)| sanitize(k) == name)
            .map(|(_, v)| v.to_text())
            .find(|v| !v.is_empty())
    })
}

/// The pipeline's view of a stored record: stream labels plus the record's metadata.
pub(crate) fn entry(e: &LogEntry) -> (Entry, Metadata) {
    let mut labels: LabelMap = e
        .labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect();
    let r = &e.record;
    let mut meta: Metadata = Vec::new();
    if let Some(l) = level(r.severity_number, &r.severity_text) {
        meta.push(("level".into(), l));
    }
    if !r.severity_text.is_empty() {
        meta.push(("severity_text".into(), r.severity_text.clone()));
    }
    if r.trace_id != [0; 16] {
        meta.push(("trace_id".into(), hex(&r.trace_id)));
    }
    if r.span_id != [0; 8] {
        meta.push(("span_id".into(), hex(&r.span_id)));
    }
    for (k, v) in r.attributes.iter() {
        meta.push((sanitize(k), v.to_text()));
    }
    meta.retain(|(k, v)| !k.is_empty() && !v.is_empty() && !labels.contains_key(k));
    for (k, v) in &meta {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let entry = Entry {
        t_ns: r.time_ns,
        line: r.line().into_owned(),
        labels,
    };
    (entry, meta)
}

/// The query's time bounds, `[start, end)` nanoseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    pub(crate) start_ns: i64,
    pub(crate) end_ns: i64,
}

/// A compiled live-tail query and the lines it has already returned (time, hash).
pub(crate) struct Tail {
    ms: Vec<Matcher>,
    pipeline: Pipeline,
    seen: std::collections::BTreeSet<(i64, u64)>,
}

/// What Loki's `index/stats` reports for a selector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub streams: u64,
    pub chunks: u64,
    pub entries: u64,
    pub bytes: u64,
}

impl LogqlEngine {
    pub fn new(reader: Arc<dyn LogsReader>, max_lines: u64) -> LogqlEngine {
        LogqlEngine {
            reader,
            max_lines,
            slice_records: SLICE_RECORDS,
        }
    }

    /// Reads matching records in `direction` order, handing each to `visit` until it
    /// returns false or the range is exhausted. Records are read in batches so a log
    /// query with a selective pipeline does not load the whole range at once.
    pub(crate) async fn scan(
        &self,
        matchers: &[Matcher],
        pushdown: &Pipeline,
        span: Span,
        direction: Direction,
        stats: &mut ScanStats,
        mut visit: impl FnMut(&LogEntry) -> Result<bool, LogqlError>,
    ) -> Result<(), LogqlError> {
        let (mut lo, mut hi) = (span.start_ns, span.end_ns);
        let mut batch = BATCH;
        // Records at the boundary timestamp already visited: the next batch starts with them.
        let mut skip: Option<(i64, usize)> = None;
        while lo < hi {
            let q = LogQuery {
                matchers: matchers.to_vec(),
                start_ns: lo,
                end_ns: hi,
                contains: pushdown.required.clone(),
                trace_id: pushdown.trace_id,
                fields: LogFields::Lines,
                direction,
                limit: batch,
            };
            let got = self
                .reader
                .query_logs(&q)
                .await
                .map_err(|e| LogqlError::Storage(e.to_string()))?;
            let n = got.len();
            let Some(last_t) = got.last().map(|e| e.record.time_ns) else {
                return Ok(());
            };
            let mut skipping =
                skip.map_or(0, |(t, k)| if got[0].record.time_ns == t { k } else { 0 });
            let mut at_last = 0;
            for e in &got {
                if e.record.time_ns == last_t {
                    at_last += 1;
                }
                if skipping > 0 {
                    skipping -= 1;
                    continue;
                }
                stats.lines += 1;
                stats.bytes += e.record.line().len() as u64;
                if !visit(e)? {
                    return Ok(());
                }
            }
            if n < batch {
                return Ok(());
            }
            // Later batches grow: a selective pipeline should not mean many small reads.
            batch = batch.saturating_mul(2).min(MAX_BATCH);
            if at_last == n {
                // One timestamp fills the batch: read it again, larger.
                batch = n.saturating_mul(2);
            }
            skip = Some((last_t, at_last));
            match direction {
                Direction::Forward => lo = last_t,
                Direction::Backward => hi = last_t.saturating_add(1),
            }
        }
        Ok(())
    }

    /// Reads every matching record of `span` in time order for a metric query, in time
    /// slices sized to hold about `slice_records` records each, so memory stays bounded
    /// however much the range holds. With `LogFields::NoLines` the records come without
    /// their lines, and the bytes in `stats` count none.
    pub(crate) async fn scan_all(
        &self,
        matchers: &[Matcher],
        pushdown: &Pipeline,
        fields: LogFields,
        span: Span,
        stats: &mut ScanStats,
        mut visit: impl FnMut(&LogEntry) -> Result<(), LogqlError>,
    ) -> Result<(), LogqlError> {
        let mut slice = FIRST_SLICE_NS;
        let mut limit = self.slice_records;
        let mut lo = span.start_ns;
        while lo < span.end_ns {
            let hi = lo.saturating_add(slice).min(span.end_ns);
            let q = LogQuery {
                matchers: matchers.to_vec(),
                start_ns: lo,
                end_ns: hi,
                contains: pushdown.required.clone(),
                trace_id: pushdown.trace_id,
                fields,
                direction: Direction::Forward,
                limit,
            };
            let got = self
                .reader
                .query_logs(&q)
                .await
                .map_err(|e| LogqlError::Storage(e.to_string()))?;
            let full = got.len() >= limit;
            // A full slice was cut at its last timestamp: finish the records before it and
            // read that timestamp again with the next slice.
            let cut = match got.last() {
                Some(last) if full => last.record.time_ns,
                _ => hi,
            };
            if full && cut == lo {
                // One timestamp holds more than the limit: read it whole.
                limit = limit.saturating_mul(2);
                continue;
            }
            for e in got.iter().take_while(|e| e.record.time_ns < cut) {
                stats.lines += 1;
                if fields != LogFields::NoLines {
                    stats.bytes += e.record.line().len() as u64;
                }
                visit(e)?;
            }
            if full {
                slice = (slice / 2).max(1);
            } else if got.len() < self.slice_records / 4 {
                slice = slice.saturating_mul(2);
            }
            limit = self.slice_records;
            lo = cut;
        }
        Ok(())
    }

    /// A log query: at most `limit` lines from `[start, end)`, newest first when backward.
    pub(crate) async fn select_logs(
        &self,
        q: &LogExpr,
        span: Span,
        direction: Direction,
        limit: usize,
        stats: &mut ScanStats,
    ) -> Result<Vec<StreamResult>, LogqlError> {
        let ms = matchers(&q.selector.matchers)?;
        let pipeline = Pipeline::compile(&q.pipeline).map_err(LogqlError::Invalid)?;
        self.select(&ms, &pipeline, span, direction, limit, stats, |_| true)
            .await
    }

    /// The log lines of one trace (of one span of it, when `span_id` is given), oldest
    /// first, from every stream. Storage filters on the trace id before reading lines.
    pub(crate) async fn trace_logs(
        &self,
        trace_id: [u8; 16],
        span_id: Option<[u8; 8]>,
        span: Span,
        limit: usize,
    ) -> Result<(Vec<StreamResult>, ScanStats), LogqlError> {
        let mut pipeline = Pipeline::compile(&[]).map_err(LogqlError::Invalid)?;
        pipeline.trace_id = Some(trace_id);
        let mut stats = ScanStats::default();
        let streams = self
            .select(
                &[],
                &pipeline,
                span,
                Direction::Forward,
                limit,
                &mut stats,
                // Storage already kept only the trace's records.
                |e| span_id.is_none_or(|s| e.record.span_id == s),
            )
            .await?;
        Ok((streams, stats))
    }

    /// Lines through `pipeline` of records that pass `keep`, grouped into streams by
    /// their labels after the pipeline.
    #[allow(clippy::too_many_arguments)]
    async fn select(
        &self,
        ms: &[Matcher],
        pipeline: &Pipeline,
        span: Span,
        direction: Direction,
        limit: usize,
        stats: &mut ScanStats,
        mut keep: impl FnMut(&LogEntry) -> bool,
    ) -> Result<Vec<StreamResult>, LogqlError> {
        let mut streams: BTreeMap<Vec<(String, String)>, Lines> = BTreeMap::new();
        let mut taken = 0usize;
        if limit > 0 {
            self.scan(ms, pipeline, span, direction, stats, |e| {
                if !keep(e) {
                    return Ok(true);
                }
                let (en, _) = entry(e);
                if let Some(out) = pipeline.run(en) {
                    let key: Vec<(String, String)> = out
                        .labels
                        .into_iter()
                        .filter(|(_, v)| !v.is_empty())
                        .collect();
                    streams.entry(key).or_default().push((out.t_ns, out.line));
                    taken += 1;
                }
                Ok(taken < limit)
            })
            .await?;
        }
        Ok(streams
            .into_iter()
            .map(|(k, entries)| StreamResult {
                labels: signalbox_storage::Labels::from_pairs(k),
                entries,
            })
            .collect())
    }

    /// Runs a query over `[start, end]` with results every `step_ns` (metric queries),
    /// or returns the lines in `[start, end)` (log queries).
    pub async fn query_range(
        &self,
        query: &str,
        start_ns: i64,
        end_ns: i64,
        step_ns: i64,
        direction: Direction,
        limit: usize,
    ) -> Result<(LogqlResult, ScanStats), LogqlError> {
        let mut stats = ScanStats::default();
        let value = match parse(query)? {
            Expr::Log(q) => LogqlResult::Streams(
                self.select_logs(&q, Span { start_ns, end_ns }, direction, limit, &mut stats)
                    .await?,
            ),
            Expr::Metric(m) => {
                if step_ns <= 0 {
                    return Err(LogqlError::Invalid(
                        "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
                    ));
                }
                let steps: Vec<i64> = (0..)
                    .map(|i: i64| start_ns.saturating_add(i.saturating_mul(step_ns)))
                    .take_while(|t| *t <= end_ns)
                    .collect();
                let out = super::metric::eval(self, &m, &steps, &mut stats).await?;
                super::metric::into_matrix(out, &steps)
            }
            other => return Err(LogqlError::Invalid(format!("unsupported query {other:?}"))),
        };
        Ok((value, stats))
    }

    /// Evaluates a metric query at one instant. Log queries need a range.
    pub async fn query_instant(
        &self,
        query: &str,
        t_ns: i64,
    ) -> Result<(LogqlResult, ScanStats), LogqlError> {
        let mut stats = ScanStats::default();
        match parse(query)? {
            Expr::Log(_) => Err(LogqlError::Invalid(
                "log queries are not supported as an instant query type, please change your query to a range query type"
                    .into(),
            )),
            Expr::Metric(m) => {
                let out = super::metric::eval(self, &m, &[t_ns], &mut stats).await?;
                Ok((super::metric::into_vector(out, t_ns), stats))
            }
            other => Err(LogqlError::Invalid(format!("unsupported query {other:?}"))),
        }
    }

    /// Label sets of streams matching a selector (for `/series`, `/labels`).
    /// Compiles a log query for a live tail.
    pub(crate) fn tail(&self, query: &str) -> Result<Tail, LogqlError> {
        match parse(query)? {
            Expr::Log(q) => Ok(Tail {
                ms: matchers(&q.selector.matchers)?,
                pipeline: Pipeline::compile(&q.pipeline).map_err(LogqlError::Invalid)?,
                seen: std::collections::BTreeSet::new(),
            }),
            _ => Err(LogqlError::Invalid(
                "tail is only supported for log queries".into(),
            )),
        }
    }

    /// The lines of `span` this tail has not returned yet, at most `max` (the newest when
    /// `direction` is backward), each stream's oldest first. Lines older than the span
    /// are forgotten, so a later poll may return them again only if its span reaches back.
    pub(crate) async fn tail_poll(
        &self,
        tail: &mut Tail,
        span: Span,
        direction: Direction,
        max: usize,
    ) -> Result<Vec<StreamResult>, LogqlError> {
        use std::hash::{Hash, Hasher};
        tail.seen = tail.seen.split_off(&(span.start_ns, 0));
        let Tail { ms, pipeline, seen } = tail;
        let mut stats = ScanStats::default();
        let mut out = self
            .select(ms, pipeline, span, direction, max, &mut stats, |e| {
                let mut h = std::hash::DefaultHasher::new();
                e.labels.hash(&mut h);
                e.record.line().hash(&mut h);
                e.record.span_id.hash(&mut h);
                e.record.trace_id.hash(&mut h);
                seen.insert((e.record.time_ns, h.finish()))
            })
            .await?;
        for s in &mut out {
            s.entries.sort_by_key(|(t, _)| *t);
        }
        Ok(out)
    }

    /// Loki's `index/stats` for the stream selector of a log query (its pipeline is
    /// ignored, as Loki answers from its index): streams, entries and line bytes with
    /// records in `[start, end)`. Every stream counts as one chunk.
    pub(crate) async fn index_stats(
        &self,
        query: &str,
        span: Span,
    ) -> Result<(IndexStats, ScanStats), LogqlError> {
        let q = match parse(query)? {
            Expr::Log(q) => q,
            _ => {
                return Err(LogqlError::Invalid(
                    "index stats take a stream selector, not a metric query".into(),
                ));
            }
        };
        let max = self.max_lines;
        let tq = TimesQuery {
            matchers: matchers(&q.selector.matchers)?,
            start_ns: span.start_ns,
            end_ns: span.end_ns,
            bytes: true,
            max,
            ..TimesQuery::default()
        };
        let Some(found) = self
            .reader
            .log_times(&tq)
            .await
            .map_err(|e| LogqlError::Storage(e.to_string()))?
        else {
            return Err(LogqlError::Limit(format!(
                "the selector matches more than {max} log lines; narrow it or the time range"
            )));
        };
        // One entry per stream and severity, sorted by stream labels.
        let mut streams = found.streams.iter().map(|s| &s.labels).collect::<Vec<_>>();
        streams.dedup();
        let out = IndexStats {
            streams: streams.len() as u64,
            chunks: streams.len() as u64,
            entries: found.lines,
            bytes: found.bytes,
        };
        let stats = ScanStats {
            lines: found.lines,
            bytes: found.bytes,
        };
        Ok((out, stats))
    }

    pub async fn streams(
        &self,
        selector: Option<&str>,
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<signalbox_storage::Labels>, LogqlError> {
        let ms = match selector {
            Some(s) => {
                let sel = logql::parse_selector(s).map_err(|e| LogqlError::Parse(e.to_string()))?;
                matchers(&sel.matchers)?
            }
            None => Vec::new(),
        };
        self.reader
            .log_streams(&ms, start_ns, end_ns)
            .await
            .map_err(|e| LogqlError::Storage(e.to_string()))
    }
}
