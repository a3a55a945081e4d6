//! The logs part format.
//!
//! * `streams.parquet`: one row per stream, sorted by labels: `labels`, `resource`
//!   (encoded), `first_row`, `rows`, `min_ns`, `max_ns`.
//! * `records.parquet`: one row per record, sorted by stream then time: `stream`, `time_ns`,
//!   `observed_ns`, `severity_number`, `severity_text`, `line` (the body as text), `body`
//!   (the encoded body when it is not a plain string), `attributes`, `trace_id`, `span_id`,
//!   `flags`, `event_name`, `scope`. Times delta-encoded; text columns dictionary or zstd.
//! * `fts/`: the tantivy index over `line` and attribute values (see `fts`).

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, Int32Array, Int64Array, RecordBatch, StringArray,
    StringBuilder, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use parquet::arrow::arrow_reader::RowSelection;
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use super::fts::{self, Fts, FtsBuilder};
use crate::api::{
    Direction, FoundTimes, LogEntry, LogFields, LogQuery, ReadBudget, SeverityTimes, TimesQuery,
};
use crate::codec::{Dec, Enc};
use crate::error::{Result, StorageError};
use crate::index::Postings;
use crate::model::{AnyValue, Attributes, Labels, LogRecord, LogStream, Matcher, Scope};
use crate::part::{
    ParquetFile, PartData, PartMeta, PartStore, Writer, column, decode_all, encode_parquet,
    optional_column, push_range, window_start, writer_props,
};
use crate::telemetry::Signal;
use futures::TryStreamExt;

pub(crate) const STREAMS_FILE: &str = "streams.parquet";
/// Target size of a data page of `records.parquet` before compression.
const LINE_PAGE_BYTES: usize = 64 << 10;
pub(crate) const RECORDS_FILE: &str = "records.parquet";

fn streams_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("labels", DataType::Binary, false),
        Field::new("resource", DataType::Binary, false),
        Field::new("first_row", DataType::UInt64, false),
        Field::new("rows", DataType::UInt32, false),
        Field::new("min_ns", DataType::Int64, false),
        Field::new("max_ns", DataType::Int64, false),
    ]))
}

pub(super) fn records_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("stream", DataType::UInt32, false),
        Field::new("time_ns", DataType::Int64, false),
        Field::new("observed_ns", DataType::Int64, false),
        Field::new("severity_number", DataType::Int32, false),
        Field::new("severity_text", DataType::Utf8, false),
        Field::new("line", DataType::Utf8, false),
        Field::new("body", DataType::Binary, true),
        Field::new("attributes", DataType::Binary, false),
        Field::new("trace_id", DataType::Binary, false),
        Field::new("span_id", DataType::Binary, false),
        Field::new("flags", DataType::UInt32, false),
        Field::new("event_name", DataType::Utf8, false),
        Field::new("scope", DataType::Binary, false),
    ]))
}

const RECORD_COLUMNS: [&str; 13] = [
    "stream",
    "time_ns",
    "observed_ns",
    "severity_number",
    "severity_text",
    "line",
    "body",
    "attributes",
    "trace_id",
    "span_id",
    "flags",
    "event_name",
    "scope",
];

/// The columns a `LogFields::Lines` query reads.
const QUERY_COLUMNS: [&str; 8] = [
    "stream",
    "time_ns",
    "severity_number",
    "severity_text",
    "line",
    "attributes",
    "trace_id",
    "span_id",
];

/// The columns a `LogFields::NoLines` query reads.
const NO_LINE_COLUMNS: [&str; 7] = [
    "stream",
    "time_ns",
    "severity_number",
    "severity_text",
    "attributes",
    "trace_id",
    "span_id",
];

pub(super) fn ns_to_ms_floor(ns: i64) -> i64 {
    ns.div_euclid(1_000_000)
}

/// Attribute values as indexed text: `key value key value …`.
/// One stream to write: labels, resource, records sorted by time.
pub(crate) struct StreamRef<'a> {
    pub(crate) labels: &'a Labels,
    pub(crate) resource: &'a Arc<Attributes>,
    pub(crate) records: &'a [LogRecord],
}

impl<'a> StreamRef<'a> {
    pub(crate) fn of(s: &'a LogStream) -> StreamRef<'a> {
        StreamRef {
            labels: &s.labels,
            resource: &s.resource,
            records: &s.records,
        }
    }
}

/// Rows per Arrow batch of the records file.
const RECORD_BATCH_ROWS: usize = 65536;

/// Rows per Parquet row group of the records file. Pages are found through the page
/// index whatever the size; large groups keep the column chunks a search opens few
/// (each chunk costs a reader and a zstd context: with 65,536-row groups, creating
/// contexts took a fifth of a rare-term search).
const ROW_GROUP_ROWS: usize = 1 << 20;

/// Up to this many candidate rows (after the full-text index), a search reads them whole
/// at once instead of reading their times first.
const DIRECT_READ_ROWS: usize = 16_384;

/// A query with a limit reads first the rows of this share of its time range nearest
/// the direction's start (see `LogsPart::query`).
const WINDOW_SHARE: i64 = 64;

/// ... when its candidate rows are more than this many times its limit. A metric query
/// reads time slices sized to hold about its limit: windows would read the pages at
/// their edges again and gain nothing.
const WINDOW_ABOVE: usize = 16;

#[derive(Default)]
struct RecordCols {
    stream: Vec<u32>,
    time: Vec<i64>,
    obs: Vec<i64>,
    sevn: Vec<i32>,
    sevt: StringBuilder,
    line: StringBuilder,
    body: BinaryBuilder,
    attrs: BinaryBuilder,
    tid: BinaryBuilder,
    sid: BinaryBuilder,
    flags: Vec<u32>,
    event: StringBuilder,
    scope: BinaryBuilder,
}

impl RecordCols {
    fn take_batch(&mut self) -> Result<RecordBatch> {
        RecordBatch::try_new(
            records_schema(),
            vec![
                Arc::new(UInt32Array::from(std::mem::take(&mut self.stream))) as ArrayRef,
                Arc::new(Int64Array::from(std::mem::take(&mut self.time))),
                Arc::new(Int64Array::from(std::mem::take(&mut self.obs))),
                Arc::new(Int32Array::from(std::mem::take(&mut self.sevn))),
                Arc::new(self.sevt.finish()),
                Arc::new(self.line.finish()),
                Arc::new(self.body.finish()),
                Arc::new(self.attrs.finish()),
                Arc::new(self.tid.finish()),
                Arc::new(self.sid.finish()),
                Arc::new(UInt32Array::from(std::mem::take(&mut self.flags))),
                Arc::new(self.event.finish()),
                Arc::new(self.scope.finish()),
            ],
        )
        .map_err(|e| StorageError::part("logs part", "build records batch", e))
    }
}

/// Writer settings of `records.parquet`.
pub(super) fn records_props() -> WriterProperties {
    writer_props(|b| {
        b.set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            // Small pages for the wide columns: a search that finds a few lines
            // decompresses only the pages holding them (~500 lines each instead of
            // 8,192), for a few percent more disk.
            .set_data_page_size_limit(LINE_PAGE_BYTES)
            .set_write_batch_size(512)
            .set_column_dictionary_enabled(ColumnPath::from("stream"), false)
            .set_column_encoding(ColumnPath::from("stream"), Encoding::DELTA_BINARY_PACKED)
            .set_column_dictionary_enabled(ColumnPath::from("time_ns"), false)
            .set_column_encoding(ColumnPath::from("time_ns"), Encoding::DELTA_BINARY_PACKED)
            // Read first by every query: delta packing alone keeps it small, and
            // skipping zstd makes it cheap to decode.
            .set_column_compression(ColumnPath::from("time_ns"), Compression::UNCOMPRESSED)
            .set_column_compression(ColumnPath::from("stream"), Compression::UNCOMPRESSED)
            .set_column_dictionary_enabled(ColumnPath::from("observed_ns"), false)
            .set_column_encoding(
                ColumnPath::from("observed_ns"),
                Encoding::DELTA_BINARY_PACKED,
            )
            .set_column_dictionary_enabled(ColumnPath::from("line"), false)
            .set_column_dictionary_enabled(ColumnPath::from("trace_id"), false)
            .set_column_dictionary_enabled(ColumnPath::from("span_id"), false)
            // Most records have no trace context (an empty value): lengths packed
            // apart from the bytes cost a fraction of PLAIN's 4-byte prefix per value
            // amid random id bytes.
            .set_column_encoding(
                ColumnPath::from("trace_id"),
                Encoding::DELTA_LENGTH_BYTE_ARRAY,
            )
            .set_column_encoding(
                ColumnPath::from("span_id"),
                Encoding::DELTA_LENGTH_BYTE_ARRAY,
            )
    })
}

/// Encodes streams (records sorted by time) as one part.
pub(crate) fn encode_part(
    streams: &[StreamRef<'_>],
    staging: &std::path::Path,
) -> Result<PartData> {
    let part = "logs part";
    let mut fts = FtsBuilder::new(part, staging)?;
    let mut st = StreamCols::default();
    let mut out = Writer::new(part, records_schema(), records_props())?;
    let mut c = RecordCols::default();
    let (mut min_ns, mut max_ns) = (i64::MAX, i64::MIN);
    let mut row = 0u64;
    let mut scope_cache: Option<(*const Scope, Vec<u8>)> = None;
    for s in streams.iter().filter(|s| !s.records.is_empty()) {
        let stream_no = st.first.len() as u32;
        st.push(
            s.labels,
            s.resource,
            row,
            s.records.len() as u32,
            s.records.first().map_or(0, |r| r.time_ns),
            s.records.last().map_or(0, |r| r.time_ns),
        );
        for r in s.records {
            min_ns = min_ns.min(r.time_ns);
            max_ns = max_ns.max(r.time_ns);
            c.stream.push(stream_no);
            c.time.push(r.time_ns);
            c.obs.push(r.observed_time_ns);
            c.sevn.push(r.severity_number);
            c.sevt.append_value(&r.severity_text);
            let line = r.line();
            c.line.append_value(&line);
            match &r.body {
                AnyValue::String(_) => c.body.append_null(),
                other => {
                    let mut e = Enc::default();
                    other.encode(&mut e);
                    c.body.append_value(&e.buf);
                }
            }
            c.attrs.append_value(r.attributes.to_bytes());
            if r.trace_id == [0; 16] {
                c.tid.append_value([]);
                c.sid.append_value([]);
            } else {
                c.tid.append_value(r.trace_id);
                c.sid.append_value(r.span_id);
            }
            c.flags.push(r.flags);
            c.event.append_value(&r.event_name);
            // Records of one scope share one `Arc`: encode it once per run.
            let ptr = Arc::as_ptr(&r.scope);
            if scope_cache.as_ref().is_none_or(|(p, _)| *p != ptr) {
                let mut e = Enc::default();
                r.scope.encode(&mut e);
                scope_cache = Some((ptr, e.buf));
            }
            if let Some((_, b)) = &scope_cache {
                c.scope.append_value(b);
            }
            fts.add(row, &line)?;
            row += 1;
            if c.time.len() >= RECORD_BATCH_ROWS {
                out.write(&c.take_batch()?)?;
            }
        }
    }
    if !c.time.is_empty() || row == 0 {
        out.write(&c.take_batch()?)?;
    }
    let files = vec![
        (STREAMS_FILE.to_string(), st.finish(part)?),
        (RECORDS_FILE.to_string(), out.finish()?),
    ];
    let streams = streams.iter().filter(|s| !s.records.is_empty()).count();
    part_data(files, fts, row, (min_ns, max_ns), streams)
}

/// A part's data from its streams and records files and its index: `rows` records
/// between `min_ns` and `max_ns` in `streams` streams.
pub(super) fn part_data(
    mut files: Vec<(String, Bytes)>,
    fts: FtsBuilder,
    rows: u64,
    (min_ns, max_ns): (i64, i64),
    streams: usize,
) -> Result<PartData> {
    files.extend(fts.finish()?);
    let (min_ns, max_ns) = if rows == 0 { (0, 0) } else { (min_ns, max_ns) };
    Ok(PartData {
        window_start_ms: ns_to_ms_floor(min_ns),
        window_end_ms: ns_to_ms_floor(max_ns) + 1,
        min_time_ms: ns_to_ms_floor(min_ns),
        max_time_ms: ns_to_ms_floor(max_ns),
        rows,
        files,
        extra: serde_json::json!({ "streams": streams }),
    })
}

/// The rows of `streams.parquet`, one per stream.
#[derive(Default)]
pub(super) struct StreamCols {
    labels: BinaryBuilder,
    resource: BinaryBuilder,
    first: Vec<u64>,
    rows: Vec<u32>,
    min: Vec<i64>,
    max: Vec<i64>,
}

impl StreamCols {
    pub(super) fn push(
        &mut self,
        labels: &Labels,
        resource: &Attributes,
        first: u64,
        rows: u32,
        min_ns: i64,
        max_ns: i64,
    ) {
        let mut e = Enc::default();
        labels.encode(&mut e);
        self.labels.append_value(&e.buf);
        self.resource.append_value(resource.to_bytes());
        self.first.push(first);
        self.rows.push(rows);
        self.min.push(min_ns);
        self.max.push(max_ns);
    }

    pub(super) fn finish(mut self, part: &str) -> Result<Bytes> {
        let sb = RecordBatch::try_new(
            streams_schema(),
            vec![
                Arc::new(self.labels.finish()) as ArrayRef,
                Arc::new(self.resource.finish()),
                Arc::new(UInt64Array::from(self.first)),
                Arc::new(UInt32Array::from(self.rows)),
                Arc::new(Int64Array::from(self.min)),
                Arc::new(Int64Array::from(self.max)),
            ],
        )
        .map_err(|e| StorageError::part(part, "build streams batch", e))?;
        encode_parquet(part, &sb, writer_props(|b| b))
    }
}

/// Merges streams from several sources by label set, records in time order (stable).
pub(crate) fn merge_streams(sources: Vec<Vec<LogStream>>) -> Vec<LogStream> {
    let mut by_labels: BTreeMap<Labels, LogStream> = BTreeMap::new();
    for src in sources {
        for s in src {
            match by_labels.get_mut(&s.labels) {
                Some(existing) => existing.records.extend(s.records),
                None => {
                    by_labels.insert(s.labels.clone(), s);
                }
            }
        }
    }
    by_labels
        .into_values()
        .map(|mut s| {
            s.records.sort_by_key(|r| r.time_ns);
            s
        })
        .collect()
}

/// Splits streams by time window (milliseconds) of their records.
pub(crate) fn split_by_window(
    streams: Vec<LogStream>,
    window_ms: i64,
) -> BTreeMap<i64, Vec<LogStream>> {
    let mut out: BTreeMap<i64, Vec<LogStream>> = BTreeMap::new();
    for s in streams {
        let mut per: BTreeMap<i64, Vec<LogRecord>> = BTreeMap::new();
        for r in s.records {
            per.entry(window_start(ns_to_ms_floor(r.time_ns), window_ms))
                .or_default()
                .push(r);
        }
        for (w, records) in per {
            out.entry(w).or_default().push(LogStream {
                labels: s.labels.clone(),
                resource: s.resource.clone(),
                records,
            });
        }
    }
    out
}

pub(super) struct StreamIndex {
    pub(super) labels: Vec<Arc<Labels>>,
    pub(super) resource: Vec<Arc<Attributes>>,
    first_row: Vec<u64>,
    rows: Vec<u32>,
    min_ns: Vec<i64>,
    max_ns: Vec<i64>,
    postings: Postings,
}

impl StreamIndex {
    /// The streams `matchers` select with records in `[start_ns, end_ns)`, in stored order.
    fn chosen(&self, matchers: &[Matcher], start_ns: i64, end_ns: i64) -> Vec<usize> {
        self.postings
            .candidates(matchers)
            .into_iter()
            .map(|i| i as usize)
            .filter(|&i| {
                self.min_ns[i] < end_ns
                    && self.max_ns[i] >= start_ns
                    && self.labels[i].matches(matchers)
            })
            .collect()
    }

    /// The row spans of streams, sorted as the streams are (streams are stored in order).
    fn row_spans(&self, streams: &[usize]) -> Vec<Range<usize>> {
        streams
            .iter()
            .map(|&i| {
                let s = self.first_row[i] as usize;
                s..s + self.rows[i] as usize
            })
            .collect()
    }
}

pub(crate) struct LogsPart {
    pub(crate) meta: PartMeta,
    streams_file: ParquetFile,
    records_file: ParquetFile,
    streams: tokio::sync::OnceCell<Arc<StreamIndex>>,
    fts: tokio::sync::OnceCell<Arc<Fts>>,
    local_fts_dir: Option<std::path::PathBuf>,
    store: Arc<dyn object_store::ObjectStore>,
}

impl LogsPart {
    pub(crate) fn open(meta: PartMeta, store: &PartStore) -> Result<LogsPart> {
        let os = store.object_store();
        let streams_file = ParquetFile::open(store, Signal::Logs, &meta, STREAMS_FILE)?;
        let records_file = ParquetFile::open(store, Signal::Logs, &meta, RECORDS_FILE)?;
        let local_fts_dir = store.local_path(Signal::Logs, &meta.id, fts::DIR);
        Ok(LogsPart {
            meta,
            streams_file,
            records_file,
            streams: tokio::sync::OnceCell::new(),
            fts: tokio::sync::OnceCell::new(),
            local_fts_dir,
            store: os,
        })
    }

    async fn stream_index(&self) -> Result<Arc<StreamIndex>> {
        self.streams
            .get_or_try_init(|| async {
                let batches = self
                    .streams_file
                    .read(
                        &[
                            "labels",
                            "resource",
                            "first_row",
                            "rows",
                            "min_ns",
                            "max_ns",
                        ],
                        None,
                        None,
                    )
                    .await?;
                Ok::<_, StorageError>(Arc::new(build_stream_index(&self.meta.id, &batches)?))
            })
            .await
            .cloned()
    }

    async fn fts(&self) -> Result<Arc<Fts>> {
        self.fts
            .get_or_try_init(|| async {
                let fts = match &self.local_fts_dir {
                    Some(dir) => Fts::open_dir(&self.meta.id, dir)?,
                    None => {
                        let mut files = Vec::new();
                        for f in self
                            .meta
                            .files
                            .iter()
                            .filter(|f| f.name.starts_with(&format!("{}/", fts::DIR)))
                        {
                            let path = PartStore::path(Signal::Logs, &self.meta.id, &f.name);
                            let data = object_store::ObjectStoreExt::get(&*self.store, &path)
                                .await
                                .map_err(|e| {
                                    StorageError::part(&self.meta.id, "read full-text index", e)
                                })?
                                .bytes()
                                .await
                                .map_err(|e| {
                                    StorageError::part(&self.meta.id, "read full-text index", e)
                                })?;
                            let name = f.name[fts::DIR.len() + 1..].to_string();
                            files.push((name, data));
                        }
                        Fts::open_files(&self.meta.id, files)?
                    }
                };
                Ok::<_, StorageError>(Arc::new(fts))
            })
            .await
            .cloned()
    }

    /// The full-text index's candidate blocks for `|=` substrings; `None` when there are
    /// none to look for (or the index cannot answer): every row is a candidate.
    async fn candidate_blocks(&self, contains: &[String]) -> Result<Option<Vec<u64>>> {
        if contains.is_empty() {
            return Ok(None);
        }
        self.fts().await?.candidate_blocks(contains)
    }

    fn overlaps_ns(&self, start_ns: i64, end_ns: i64) -> bool {
        self.meta.rows > 0
            && self
                .meta
                .overlaps(ns_to_ms_floor(start_ns), ns_to_ms_floor(end_ns))
    }

    pub(crate) async fn stream_labels(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<Labels>> {
        if !self.overlaps_ns(start_ns, end_ns) {
            return Ok(Vec::new());
        }
        let idx = self.stream_index().await?;
        Ok(idx
            .chosen(matchers, start_ns, end_ns)
            .into_iter()
            .map(|i| Labels::clone(&idx.labels[i]))
            .collect())
    }

    /// The times of the records `q` selects, by stream and severity: only the time and
    /// severity columns (and the line when `q` tests lines) of the streams' rows on pages
    /// overlapping the range (and in the full-text candidate blocks) are read. Stops
    /// (with what it has) once `budget` is spent.
    pub(crate) async fn times(&self, q: &TimesQuery, budget: &ReadBudget) -> Result<FoundTimes> {
        let (start_ns, end_ns) = (q.start_ns, q.end_ns);
        let mut acc = SeverityTimes::default();
        if !self.overlaps_ns(start_ns, end_ns) {
            return Ok(acc.found());
        }
        let idx = self.stream_index().await?;
        let chosen = idx.chosen(&q.matchers, start_ns, end_ns);
        let spans = idx.row_spans(&chosen);
        let blocks = self.candidate_blocks(&q.contains).await?;
        let ranges = self
            .rows_in_time(&spans, blocks.as_deref(), start_ns, end_ns)
            .await?;
        if ranges.is_empty() {
            return Ok(acc.found());
        }
        let rows = self.meta.rows as usize;
        let selection = RowSelection::from_consecutive_ranges(ranges.iter().cloned(), rows);
        let columns: &[&str] = if q.reads_lines() {
            &[
                "stream",
                "time_ns",
                "severity_number",
                "severity_text",
                "line",
            ]
        } else {
            &["stream", "time_ns", "severity_number", "severity_text"]
        };
        let mut batches = self
            .records_file
            .stream(columns, None, Some(selection))
            .await?;
        let part = self.meta.id.as_str();
        // Full-text blocks may reach over a stream's edge: each row says its stream.
        let mut wanted = vec![false; idx.labels.len()];
        for &i in &chosen {
            wanted[i] = true;
        }
        let mut current = u32::MAX;
        while let Some(b) = batches
            .try_next()
            .await
            .map_err(|e| StorageError::part(part, "read log times", e))?
        {
            let stream: &UInt32Array = column(part, &b, "stream")?;
            let time: &Int64Array = column(part, &b, "time_ns")?;
            let number: &Int32Array = column(part, &b, "severity_number")?;
            let text: &StringArray = column(part, &b, "severity_text")?;
            let line: Option<&StringArray> = match q.reads_lines() {
                true => Some(column(part, &b, "line")?),
                false => None,
            };
            let before = acc.lines;
            for r in 0..b.num_rows() {
                let s = stream.value(r);
                let t = time.value(r);
                if !wanted.get(s as usize).copied().unwrap_or(false)
                    || t < start_ns
                    || t >= end_ns
                    || !acc.test(q, line.map(|l| l.value(r)))
                {
                    continue;
                }
                if s != current {
                    // A stream's rows are stored together.
                    current = s;
                    acc.stream();
                }
                let size = line.filter(|_| q.sizes).map(|l| l.value(r).len());
                let severity = (number.value(r), text.value(r));
                acc.push(&idx.labels[s as usize], severity, t, size);
            }
            if !budget.take(acc.lines - before) {
                break;
            }
        }
        Ok(acc.found())
    }

    pub(crate) async fn query(&self, q: &LogQuery) -> Result<Vec<LogEntry>> {
        if !self.overlaps_ns(q.start_ns, q.end_ns) {
            return Ok(Vec::new());
        }
        let idx = self.stream_index().await?;
        let chosen = idx.chosen(&q.matchers, q.start_ns, q.end_ns);
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        let spans = idx.row_spans(&chosen);
        let blocks = self.candidate_blocks(&q.contains).await?;
        let ranges = self
            .rows_in_time(&spans, blocks.as_deref(), q.start_ns, q.end_ns)
            .await?;
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        // A rare term leaves few candidate rows: they are read whole in one pass.
        let candidate_rows: usize = ranges.iter().map(|r| r.len()).sum();
        if !q.contains.is_empty() && candidate_rows <= DIRECT_READ_ROWS {
            let rows = self.meta.rows as usize;
            let selection = RowSelection::from_consecutive_ranges(ranges.into_iter(), rows);
            self.read_records(&idx, selection, q, &mut out).await?;
            return Ok(out);
        }
        if q.limit == 0 || candidate_rows <= q.limit.saturating_mul(WINDOW_ABOVE) {
            self.read_in_rounds(&idx, &ranges, &spans, &chosen, q, &mut out)
                .await?;
            return Ok(out);
        }
        // With a limit far below the candidate rows, time windows growing from the
        // direction's start (1/64 of the
        // part's share of the range, then four times the one before) are read one after
        // the other until `limit` lines are found: every line of a window comes before
        // every line of the next, so those are the first `limit` of the whole range, and
        // a common term's newest lines no longer need the times of all its rows.
        let lo = q
            .start_ns
            .max(self.meta.min_time_ms.saturating_mul(1_000_000));
        let hi = q.end_ns.min(
            self.meta
                .max_time_ms
                .saturating_add(1)
                .saturating_mul(1_000_000),
        );
        let mut width = (hi.saturating_sub(lo) / WINDOW_SHARE).max(1);
        let mut done = match q.direction {
            Direction::Forward => lo,
            Direction::Backward => hi,
        };
        while lo < hi && out.len() < q.limit {
            let (ws, we) = match q.direction {
                Direction::Forward => (done, done.saturating_add(width).min(hi)),
                Direction::Backward => (done.saturating_sub(width).max(lo), done),
            };
            if ws >= we {
                break;
            }
            let window = LogQuery {
                start_ns: ws,
                end_ns: we,
                limit: q.limit - out.len(),
                ..q.clone()
            };
            let ranges = self.rows_in_time(&spans, blocks.as_deref(), ws, we).await?;
            if !ranges.is_empty() {
                self.read_in_rounds(&idx, &ranges, &spans, &chosen, &window, &mut out)
                    .await?;
            }
            done = match q.direction {
                Direction::Forward => we,
                Direction::Backward => ws,
            };
            width = width.saturating_mul(4);
        }
        Ok(out)
    }

    /// The rows of the stream row spans `spans` on pages whose times overlap
    /// `[start_ns, end_ns)` (a stream's rows in that range stay in one piece, since every
    /// page holding one of them overlaps), cut to the full-text candidate `blocks`.
    async fn rows_in_time(
        &self,
        spans: &[Range<usize>],
        blocks: Option<&[u64]>,
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<Range<usize>>> {
        let ranges = match self
            .records_file
            .pages_overlapping("time_ns", start_ns, end_ns)
            .await?
        {
            Some(pages) => intersect(spans, &pages),
            None => spans.to_vec(),
        };
        Ok(match blocks {
            Some(b) => restrict(&ranges, b, fts::BLOCK_ROWS as usize),
            None => ranges,
        })
    }

    /// Adds to `out` the lines of candidate `ranges` that `q` selects, nearest the
    /// direction's start first, until `q.limit` of them.
    async fn read_in_rounds(
        &self,
        idx: &StreamIndex,
        ranges: &[Range<usize>],
        spans: &[Range<usize>],
        chosen: &[usize],
        q: &LogQuery,
        out: &mut Vec<LogEntry>,
    ) -> Result<()> {
        let rows = self.meta.rows as usize;
        // Read the time column (and the trace id when one is asked for) of the candidate
        // rows first and keep those in the time range and trace; the wide columns are then
        // decoded only for the rows nearest the start of the direction.
        let narrow: &[&str] = if q.trace_id.is_some() {
            &["time_ns", "trace_id"]
        } else {
            &["time_ns"]
        };
        let times = self
            .records_file
            .read(
                narrow,
                None,
                Some(RowSelection::from_consecutive_ranges(
                    ranges.iter().cloned(),
                    rows,
                )),
            )
            .await?;
        let pieces = split_by_stream(ranges, spans, chosen);
        let cands = candidates(&pieces, &times, q)
            .map_err(|e| StorageError::part(&self.meta.id, "read times", e))?;
        // Rounds in time order across streams: each reads the next rows (at least
        // `target` of them, and every row of the time it stops at), until `limit` lines
        // matched. Every unread row is then further from the direction's start than every
        // line found, so none of them can be among the first `limit`.
        let total: usize = cands.iter().map(|c| c.times.len()).sum();
        let mut target = match (q.limit, q.contains.is_empty()) {
            (0, _) => total,
            (limit, true) => limit,
            (limit, false) => limit.saturating_mul(2).max(4096),
        };
        let mut bound: Option<i64> = None;
        let mut found = Vec::new();
        while let Some(thr) = threshold(&cands, bound, target, q.direction) {
            let mut selected = Vec::new();
            for c in &cands {
                let (lo, hi) = c.between(bound, thr, q.direction);
                c.rows_between(lo, hi, &mut selected);
            }
            selected.sort_by_key(|r| r.start);
            let selection = RowSelection::from_consecutive_ranges(selected.into_iter(), rows);
            self.read_records(idx, selection, q, &mut found).await?;
            bound = Some(thr);
            if q.limit > 0 && found.len() >= q.limit {
                break;
            }
            target = target.saturating_mul(4);
        }
        out.append(&mut found);
        Ok(())
    }

    /// Decodes the rows of `selection` and adds those in the query's time range that
    /// pass its record filters to `out`.
    async fn read_records(
        &self,
        idx: &StreamIndex,
        selection: RowSelection,
        q: &LogQuery,
        out: &mut Vec<LogEntry>,
    ) -> Result<()> {
        let batches = self
            .records_file
            .read(
                match q.fields {
                    LogFields::NoLines if q.contains.is_empty() => &NO_LINE_COLUMNS,
                    LogFields::NoLines | LogFields::Lines => &QUERY_COLUMNS,
                    LogFields::All => &RECORD_COLUMNS,
                },
                None,
                Some(selection),
            )
            .await?;
        for b in &batches {
            let cols = RecordColumns::new(&self.meta.id, b)?;
            for r in 0..b.num_rows() {
                let t = cols.time.value(r);
                if t < q.start_ns
                    || t >= q.end_ns
                    || !q.record_matches(cols.tid.value(r), cols.line.map_or("", |l| l.value(r)))
                {
                    continue;
                }
                let stream = cols.stream.value(r) as usize;
                let (Some(labels), Some(resource)) =
                    (idx.labels.get(stream), idx.resource.get(stream))
                else {
                    return Err(StorageError::part(
                        &self.meta.id,
                        "read records",
                        "record of an unknown stream",
                    ));
                };
                out.push(LogEntry {
                    labels: labels.clone(),
                    resource: resource.clone(),
                    record: cols.record(r)?,
                });
            }
        }
        Ok(())
    }

    /// Every stream of the part with all its records (for merges).
    pub(crate) async fn read_all(&self, store: &PartStore) -> Result<Vec<LogStream>> {
        if self.meta.rows == 0 {
            return Ok(Vec::new());
        }
        let sb: Bytes = store.get(Signal::Logs, &self.meta, STREAMS_FILE).await?;
        let rb: Bytes = store.get(Signal::Logs, &self.meta, RECORDS_FILE).await?;
        let id = self.meta.id.clone();
        tokio::task::spawn_blocking(move || {
            let idx = build_stream_index(&id, &decode_all(&id, sb)?)?;
            let mut streams: Vec<LogStream> = idx
                .labels
                .iter()
                .zip(&idx.resource)
                .map(|(l, r)| LogStream {
                    labels: Labels::clone(l),
                    resource: r.clone(),
                    records: Vec::new(),
                })
                .collect();
            for b in decode_all(&id, rb)? {
                let cols = RecordColumns::new(&id, &b)?;
                for r in 0..b.num_rows() {
                    let s = cols.stream.value(r) as usize;
                    let rec = cols.record(r)?;
                    streams
                        .get_mut(s)
                        .ok_or_else(|| {
                            StorageError::part(&id, "read records", "record of an unknown stream")
                        })?
                        .records
                        .push(rec);
                }
            }
            Ok(streams)
        })
        .await
        .map_err(|e| StorageError::part(&self.meta.id, "read part", e))?
    }
}

/// The candidate rows of one stream, in row (and so time) order.
#[derive(Default)]
struct StreamRows {
    ranges: Vec<Range<usize>>,
    /// Index into `times` of the first row of each range.
    starts: Vec<usize>,
    times: Vec<i64>,
}

impl StreamRows {
    fn push(&mut self, row: usize, t: i64) {
        match self.ranges.last_mut() {
            Some(last) if last.end == row => last.end = row + 1,
            _ => {
                self.ranges.push(row..row + 1);
                self.starts.push(self.times.len());
            }
        }
        self.times.push(t);
    }

    /// Indices into `times` of the rows past `bound` (exclusive) up to `thr`
    /// (inclusive), in the direction's order of time.
    fn between(&self, bound: Option<i64>, thr: i64, direction: Direction) -> (usize, usize) {
        let pp = |f: &dyn Fn(i64) -> bool| self.times.partition_point(|&t| f(t));
        match direction {
            Direction::Forward => {
                let lo = bound.map_or(0, |b| pp(&|t| t <= b));
                (lo, pp(&|t| t <= thr).max(lo))
            }
            Direction::Backward => {
                let hi = bound.map_or(self.times.len(), |b| pp(&|t| t < b));
                (pp(&|t| t < thr).min(hi), hi)
            }
        }
    }

    /// Rows of the time indices `[lo, hi)`.
    fn rows_between(&self, lo: usize, hi: usize, out: &mut Vec<Range<usize>>) {
        if lo >= hi {
            return;
        }
        let first = self.starts.partition_point(|&s| s <= lo) - 1;
        for (k, r) in self.ranges.iter().enumerate().skip(first) {
            let s = self.starts[k];
            if s >= hi {
                break;
            }
            let from = r.start + lo.saturating_sub(s);
            let to = (r.start + (hi - s)).min(r.end);
            if from < to {
                out.push(from..to);
            }
        }
    }
}

/// The rows of `pieces` (read in the same order into `times`, with the trace id as second
/// column when the query asks for one) in the query's time range and trace, per stream.
fn candidates(
    pieces: &[PendingRows],
    times: &[RecordBatch],
    q: &LogQuery,
) -> std::result::Result<Vec<StreamRows>, String> {
    let mut cols = Vec::with_capacity(times.len());
    for b in times {
        let c = b
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or("time column is not int64")?;
        let tid = match q.trace_id {
            Some(_) => Some(
                b.columns()
                    .get(1)
                    .and_then(|c| c.as_any().downcast_ref::<BinaryArray>())
                    .ok_or("trace id column missing or not binary")?,
            ),
            None => None,
        };
        cols.push((c.values().as_ref(), tid));
    }
    let mut it = cols.iter().flat_map(|(c, tid)| {
        c.iter()
            .enumerate()
            .map(move |(i, &t)| (t, tid.map(|a| a.value(i))))
    });
    let mut out = Vec::new();
    for p in pieces {
        let mut s = StreamRows::default();
        for r in &p.rows {
            for row in r.clone() {
                let (t, tid) = it.next().ok_or("fewer times than rows")?;
                if t < q.start_ns || t >= q.end_ns || tid.is_some_and(|have| !q.trace_matches(have))
                {
                    continue;
                }
                s.push(row, t);
            }
        }
        if !s.times.is_empty() {
            out.push(s);
        }
    }
    if it.next().is_some() {
        return Err("more times than rows".into());
    }
    Ok(out)
}

/// The time up to which (inclusive, in the direction's order) the next round reads: the
/// first time at which at least `target` rows past `bound` are covered, or the last time
/// of all when fewer remain; `None` when no row is left past `bound`.
fn threshold(
    cands: &[StreamRows],
    bound: Option<i64>,
    target: usize,
    direction: Direction,
) -> Option<i64> {
    let count = |thr: i64| -> usize {
        cands
            .iter()
            .map(|c| {
                let (lo, hi) = c.between(bound, thr, direction);
                hi - lo
            })
            .sum()
    };
    // Remaining rows and the range of their times.
    let (mut min, mut max) = (i64::MAX, i64::MIN);
    for c in cands {
        let (lo, hi) = match direction {
            Direction::Forward => c.between(bound, i64::MAX, direction),
            Direction::Backward => c.between(bound, i64::MIN, direction),
        };
        if lo < hi {
            min = min.min(c.times[lo]);
            max = max.max(c.times[hi - 1]);
        }
    }
    if min > max {
        return None;
    }
    match direction {
        Direction::Forward => {
            // Smallest time covering `target` rows.
            let (mut lo, mut hi) = (min, max);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if count(mid) >= target {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            Some(lo)
        }
        Direction::Backward => {
            // Largest time covering `target` rows.
            let (mut lo, mut hi) = (min, max);
            while lo < hi {
                let mid = hi - (hi - lo) / 2;
                if count(mid) >= target {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            Some(lo)
        }
    }
}

/// Keeps the rows of `ranges` that fall in the sorted blocks `[b, b + block)`.
fn restrict(
    ranges: &[std::ops::Range<usize>],
    blocks: &[u64],
    block: usize,
) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for r in ranges {
        let first = blocks.partition_point(|&b| b as usize + block <= r.start);
        for &b in blocks[first..]
            .iter()
            .take_while(|&&b| (b as usize) < r.end)
        {
            let lo = (b as usize).max(r.start);
            let hi = (b as usize + block).min(r.end);
            push_range(&mut out, lo..hi);
        }
    }
    out
}

/// The rows of sorted `ranges` that are also in sorted, disjoint `other`, keeping the
/// boundaries of both (a range of `ranges` is never merged with its neighbour).
fn intersect(ranges: &[Range<usize>], other: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut j = 0;
    for r in ranges {
        while j < other.len() && other[j].end <= r.start {
            j += 1;
        }
        let mut k = j;
        while k < other.len() && other[k].start < r.end {
            let lo = r.start.max(other[k].start);
            let hi = r.end.min(other[k].end);
            if lo < hi {
                out.push(lo..hi);
            }
            k += 1;
        }
    }
    out
}

/// The rows of one stream to read, in row order.
struct PendingRows {
    stream: usize,
    rows: Vec<Range<usize>>,
}

/// Splits sorted `ranges` by the sorted row spans of the streams `streams` (stream
/// numbers, in the same order as `spans`).
fn split_by_stream(
    ranges: &[Range<usize>],
    spans: &[Range<usize>],
    streams: &[usize],
) -> Vec<PendingRows> {
    let mut out: Vec<PendingRows> = Vec::new();
    let mut s = 0;
    for r in ranges {
        while s < spans.len() && spans[s].end <= r.start {
            s += 1;
        }
        let mut k = s;
        while k < spans.len() && spans[k].start < r.end {
            let piece = r.start.max(spans[k].start)..r.end.min(spans[k].end);
            if !piece.is_empty() {
                match out.last_mut() {
                    Some(p) if p.stream == streams[k] => p.rows.push(piece),
                    _ => out.push(PendingRows {
                        stream: streams[k],
                        rows: vec![piece],
                    }),
                }
            }
            k += 1;
        }
    }
    out
}

pub(super) fn build_stream_index(part: &str, batches: &[RecordBatch]) -> Result<StreamIndex> {
    let mut idx = StreamIndex {
        labels: Vec::new(),
        resource: Vec::new(),
        first_row: Vec::new(),
        rows: Vec::new(),
        min_ns: Vec::new(),
        max_ns: Vec::new(),
        postings: Postings::default(),
    };
    for b in batches {
        let labels = column::<BinaryArray>(part, b, "labels")?;
        let resource = column::<BinaryArray>(part, b, "resource")?;
        let first = column::<UInt64Array>(part, b, "first_row")?;
        let rows = column::<UInt32Array>(part, b, "rows")?;
        let min = column::<Int64Array>(part, b, "min_ns")?;
        let max = column::<Int64Array>(part, b, "max_ns")?;
        for r in 0..b.num_rows() {
            let l = Labels::decode(&mut Dec::new(labels.value(r), "stream labels"))?;
            idx.postings.add(idx.labels.len() as u32, &l);
            idx.labels.push(Arc::new(l));
            idx.resource
                .push(Arc::new(Attributes::from_bytes(resource.value(r))?));
            idx.first_row.push(first.value(r));
            idx.rows.push(rows.value(r));
            idx.min_ns.push(min.value(r));
            idx.max_ns.push(max.value(r));
        }
    }
    Ok(idx)
}

struct RecordColumns<'a> {
    part: &'a str,
    stream: &'a UInt32Array,
    time: &'a Int64Array,
    observed: Option<&'a Int64Array>,
    sevn: &'a Int32Array,
    sevt: &'a StringArray,
    line: Option<&'a StringArray>,
    body: Option<&'a BinaryArray>,
    attrs: &'a BinaryArray,
    tid: &'a BinaryArray,
    sid: &'a BinaryArray,
    flags: Option<&'a UInt32Array>,
    event: Option<&'a StringArray>,
    scope: Option<&'a BinaryArray>,
    last_scope: std::cell::RefCell<Option<(Vec<u8>, Arc<Scope>)>>,
}

impl<'a> RecordColumns<'a> {
    fn new(part: &'a str, b: &'a RecordBatch) -> Result<Self> {
        Ok(RecordColumns {
            part,
            stream: column(part, b, "stream")?,
            time: column(part, b, "time_ns")?,
            observed: optional_column(part, b, "observed_ns")?,
            sevn: column(part, b, "severity_number")?,
            sevt: column(part, b, "severity_text")?,
            line: optional_column(part, b, "line")?,
            body: optional_column(part, b, "body")?,
            attrs: column(part, b, "attributes")?,
            tid: column(part, b, "trace_id")?,
            sid: column(part, b, "span_id")?,
            flags: optional_column(part, b, "flags")?,
            event: optional_column(part, b, "event_name")?,
            scope: optional_column(part, b, "scope")?,
            last_scope: std::cell::RefCell::new(None),
        })
    }

    fn record(&self, r: usize) -> Result<LogRecord> {
        let body = match self.body {
            Some(b) if b.is_valid(r) => AnyValue::decode(&mut Dec::new(b.value(r), "log body"))?,
            _ => AnyValue::String(self.line.map_or(String::new(), |l| l.value(r).to_string())),
        };
        let fixed = |b: &[u8], what: &'static str| -> Result<Vec<u8>> {
            if b.is_empty() || b.len() == 16 || b.len() == 8 {
                Ok(b.to_vec())
            } else {
                Err(StorageError::part(
                    self.part,
                    "read records",
                    format!("{what} of {} bytes", b.len()),
                ))
            }
        };
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        let t = fixed(self.tid.value(r), "trace id")?;
        if t.len() == 16 {
            trace_id.copy_from_slice(&t);
        }
        let s = fixed(self.sid.value(r), "span id")?;
        if s.len() == 8 {
            span_id.copy_from_slice(&s);
        }
        let scope = {
            let mut cache = self.last_scope.borrow_mut();
            let scope_bytes = self.scope.map(|c| c.value(r));
            match (&*cache, scope_bytes) {
                (Some((b, s)), Some(sb)) if b.as_slice() == sb => s.clone(),
                (Some((b, s)), None) if b.is_empty() => s.clone(),
                (_, sb) => {
                    let s = Arc::new(match sb {
                        Some(sb) => Scope::decode(&mut Dec::new(sb, "scope"))?,
                        None => Scope::default(),
                    });
                    *cache = Some((sb.unwrap_or_default().to_vec(), s.clone()));
                    s
                }
            }
        };
        Ok(LogRecord {
            time_ns: self.time.value(r),
            observed_time_ns: self.observed.map_or(self.time.value(r), |c| c.value(r)),
            severity_number: self.sevn.value(r),
            severity_text: self.sevt.value(r).to_string(),
            body,
            attributes: Attributes::from_bytes(self.attrs.value(r))?,
            trace_id,
            span_id,
            flags: self.flags.map_or(0, |c| c.value(r)),
            event_name: self.event.map_or(String::new(), |c| c.value(r).to_string()),
            scope,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::part::Publish;

    #[tokio::test]
    async fn trace_context_is_stored_apart_from_its_lengths_and_read_back() {
        let resource = Arc::new(Attributes::default());
        let labels = Labels::from_pairs([("service_name", "api")]);
        let records: Vec<LogRecord> = (0..3u8)
            .map(|i| LogRecord {
                time_ns: i64::from(i),
                body: AnyValue::String(format!("line {i}")),
                trace_id: if i == 1 { [0; 16] } else { [i + 1; 16] },
                span_id: if i == 1 { [0; 8] } else { [i + 7; 8] },
                ..Default::default()
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let store = PartStore::in_memory(dir.path().to_path_buf());
        let stream = StreamRef {
            labels: &labels,
            resource: &resource,
            records: &records,
        };
        let data = encode_part(&[stream], dir.path()).unwrap();
        let meta = store
            .publish(Signal::Logs, data, Publish::default())
            .await
            .unwrap();
        let part = LogsPart::open(meta, &store).unwrap();
        let codecs = part.records_file.codecs().await.unwrap();
        for id in ["trace_id", "span_id"] {
            let (_, _, encodings) = codecs.iter().find(|c| c.0 == id).unwrap();
            assert!(
                encodings.contains(&Encoding::DELTA_LENGTH_BYTE_ARRAY),
                "{id}: {encodings:?}"
            );
        }
        let back = part.read_all(&store).await.unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].records, records);
    }

    #[test]
    fn restrict_cuts_blocks_to_stream_ranges() {
        let got = restrict(&[0..10, 40..70, 90..100], &[0, 32, 64, 96], 32);
        assert_eq!(got, vec![0..10, 40..70, 90..100]);
        let got = restrict(&[std::ops::Range { start: 0, end: 200 }], &[32, 128], 32);
        assert_eq!(got, vec![32..64, 128..160]);
        assert!(restrict(&[std::ops::Range { start: 10, end: 20 }], &[32], 32).is_empty());
    }

    fn times(t: &[i64]) -> Vec<RecordBatch> {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "time_ns",
            DataType::Int64,
            false,
        )]));
        // Split across two batches, as the reader may return them.
        let (a, b) = t.split_at(t.len() / 2);
        [a, b]
            .iter()
            .map(|p| {
                RecordBatch::try_new(
                    schema.clone(),
                    vec![Arc::new(Int64Array::from(p.to_vec())) as ArrayRef],
                )
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn rounds_follow_time_across_streams() {
        let pieces = vec![
            PendingRows {
                stream: 0,
                rows: std::iter::once(0..5).collect(),
            },
            PendingRows {
                stream: 1,
                rows: std::iter::once(10..14).collect(),
            },
        ];
        let t = times(&[1, 2, 3, 4, 5, 2, 3, 4, 9]);
        let q = |start_ns, end_ns| LogQuery {
            start_ns,
            end_ns,
            ..Default::default()
        };
        let c = candidates(&pieces, &t, &q(0, 100)).unwrap();
        let rows = |bound, thr, dir| {
            let mut out = Vec::new();
            for s in &c {
                let (lo, hi) = s.between(bound, thr, dir);
                s.rows_between(lo, hi, &mut out);
            }
            out
        };
        // The newest three rows end at time 4, and every row at time 4 is taken.
        assert_eq!(threshold(&c, None, 3, Direction::Backward), Some(4));
        assert_eq!(rows(None, 4, Direction::Backward), vec![3..5, 12..14]);
        // What is left is older than 4; fewer than asked remain, so all of it.
        assert_eq!(threshold(&c, Some(4), 100, Direction::Backward), Some(1));
        assert_eq!(rows(Some(4), 1, Direction::Backward), vec![0..3, 10..12]);
        assert_eq!(threshold(&c, Some(1), 1, Direction::Backward), None);
        assert_eq!(threshold(&c, None, 3, Direction::Forward), Some(2));
        assert_eq!(rows(None, 2, Direction::Forward), vec![0..2, 10..11]);
        assert_eq!(threshold(&c, Some(9), 1, Direction::Forward), None);
        // The time range is [start, end).
        let c = candidates(&pieces, &t, &q(2, 5)).unwrap();
        let kept: Vec<_> = c.iter().map(|s| s.ranges.clone()).collect();
        assert_eq!(kept, vec![vec![1..4], vec![10..13]]);
        // Fewer or more times than rows is an error, not a panic.
        assert!(candidates(&pieces, &times(&[1, 2]), &q(0, 9)).is_err());
        let long = times(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert!(candidates(&pieces, &long, &q(0, 9)).is_err());
    }

    #[test]
    fn rows_between_maps_time_indices_back_to_rows() {
        let mut s = StreamRows::default();
        for (row, t) in [(0, 1), (1, 2), (5, 3), (6, 4), (7, 5)] {
            s.push(row, t);
        }
        assert_eq!(s.ranges, vec![0..2, 5..8]);
        let mut out = Vec::new();
        s.rows_between(1, 4, &mut out);
        assert_eq!(out, vec![1..2, 5..7]);
        out.clear();
        s.rows_between(2, 2, &mut out);
        assert!(out.is_empty());
    }
}
