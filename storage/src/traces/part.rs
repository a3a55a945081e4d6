//! The traces part format: `spans.parquet`, one row per span sorted by trace id then
//! start time, in row groups of 8192 spans and pages of 1024, with page statistics and a
//! bloom filter per row group on `trace_id`, so that a lookup by id reads only the pages
//! that hold it.
//! `meta.json` lists the services and operations of the part.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, FixedSizeBinaryArray, FixedSizeBinaryBuilder,
    Int32Array, Int64Array, RecordBatch, StringArray, StringBuilder, UInt32Array,
};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use futures::TryStreamExt;
use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::wal::{decode_events, decode_links, encode_events, encode_links};
use crate::api::{SpanQuery, SpanRecord, span_matches};
use crate::codec::{Dec, Enc};
use crate::error::{Result, StorageError};
use crate::model::{Attributes, Scope, Span};
use crate::part::{
    KWay, MergeOutput, MergeSource, ParquetFile, PartData, PartMeta, PartStore, Writer, column,
    decode_all, may_hold, optional_column, push_range, window_start, writer_props,
};
use crate::telemetry::Signal;

pub(crate) const SPANS_FILE: &str = "spans.parquet";
const ROW_GROUP: usize = 8192;
/// Rows per data page: a lookup by id decodes a page of each column, not a row group.
const PAGE_ROWS: usize = 1024;

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("trace_id", DataType::FixedSizeBinary(16), false),
        Field::new("span_id", DataType::FixedSizeBinary(8), false),
        Field::new("parent_span_id", DataType::FixedSizeBinary(8), false),
        Field::new("trace_state", DataType::Utf8, false),
        Field::new("flags", DataType::UInt32, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("kind", DataType::Int32, false),
        Field::new("start_ns", DataType::Int64, false),
        Field::new("end_ns", DataType::Int64, false),
        Field::new("attributes", DataType::Binary, false),
        Field::new("events", DataType::Binary, false),
        Field::new("links", DataType::Binary, false),
        Field::new("dropped", DataType::Binary, false),
        Field::new("status_code", DataType::Int32, false),
        Field::new("status_message", DataType::Utf8, false),
        Field::new("service", DataType::Utf8, false),
        Field::new("resource", DataType::Binary, false),
        Field::new("scope", DataType::Binary, false),
    ]))
}

const COLUMNS: [&str; 18] = [
    "trace_id",
    "span_id",
    "parent_span_id",
    "trace_state",
    "flags",
    "name",
    "kind",
    "start_ns",
    "end_ns",
    "attributes",
    "events",
    "links",
    "dropped",
    "status_code",
    "status_message",
    "service",
    "resource",
    "scope",
];

/// Keeps, of `(start, trace id, row)` candidates, the newest ones: every row of the
/// `max_traces` traces whose newest row is newest (0: any number of traces), and then at
/// most `limit` rows (0: any number). Leaves them newest first.
pub(crate) fn newest(rows: &mut Vec<(i64, [u8; 16], usize)>, max_traces: usize, limit: usize) {
    rows.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.2.cmp(&b.2)));
    if max_traces > 0 {
        // A set: the Jaeger limit can be large, and candidates number millions.
        let mut seen: std::collections::HashSet<[u8; 16]> = std::collections::HashSet::new();
        rows.retain(|r| seen.contains(&r.1) || (seen.len() < max_traces && seen.insert(r.1)));
    }
    if limit > 0 {
        rows.truncate(limit);
    }
}

/// A selection of the (sorted, distinct) file rows `rows`.
fn row_selection(rows: &[usize]) -> RowSelection {
    let mut selectors = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while i < rows.len() {
        let first = rows[i];
        let mut last = first;
        while i + 1 < rows.len() && rows[i + 1] == last + 1 {
            i += 1;
            last = rows[i];
        }
        if first > at {
            selectors.push(RowSelector::skip(first - at));
        }
        selectors.push(RowSelector::select(last + 1 - first));
        at = last + 1;
        i += 1;
    }
    RowSelection::from(selectors)
}

fn ms(ns: i64) -> i64 {
    ns.div_euclid(1_000_000)
}

/// One span to write, with the service and resource that sent it.
pub(crate) struct SpanRef<'a> {
    pub(crate) service: &'a str,
    pub(crate) resource: &'a Arc<Attributes>,
    pub(crate) span: &'a Span,
}

impl<'a> SpanRef<'a> {
    pub(crate) fn of(r: &'a SpanRecord) -> SpanRef<'a> {
        SpanRef {
            service: &r.service_name,
            resource: &r.resource,
            span: &r.span,
        }
    }
}

struct SpanCols {
    tid: FixedSizeBinaryBuilder,
    sid: FixedSizeBinaryBuilder,
    pid: FixedSizeBinaryBuilder,
    tstate: StringBuilder,
    flags: Vec<u32>,
    name: StringBuilder,
    kind: Vec<i32>,
    start: Vec<i64>,
    end: Vec<i64>,
    attrs: BinaryBuilder,
    events: BinaryBuilder,
    links: BinaryBuilder,
    dropped: BinaryBuilder,
    status: Vec<i32>,
    smsg: StringBuilder,
    service: StringBuilder,
    resource: BinaryBuilder,
    scope: BinaryBuilder,
}

impl SpanCols {
    fn new() -> SpanCols {
        SpanCols {
            tid: FixedSizeBinaryBuilder::with_capacity(ROW_GROUP, 16),
            sid: FixedSizeBinaryBuilder::with_capacity(ROW_GROUP, 8),
            pid: FixedSizeBinaryBuilder::with_capacity(ROW_GROUP, 8),
            tstate: StringBuilder::new(),
            flags: Vec::new(),
            name: StringBuilder::new(),
            kind: Vec::new(),
            start: Vec::new(),
            end: Vec::new(),
            attrs: BinaryBuilder::new(),
            events: BinaryBuilder::new(),
            links: BinaryBuilder::new(),
            dropped: BinaryBuilder::new(),
            status: Vec::new(),
            smsg: StringBuilder::new(),
            service: StringBuilder::new(),
            resource: BinaryBuilder::new(),
            scope: BinaryBuilder::new(),
        }
    }

    fn push(&mut self, r: &SpanRef<'_>, resource: &[u8], scope: &[u8]) -> Result<()> {
        let s = r.span;
        let err =
            |e: arrow::error::ArrowError| StorageError::part("traces part", "build spans batch", e);
        self.tid.append_value(s.trace_id).map_err(err)?;
        self.sid.append_value(s.span_id).map_err(err)?;
        self.pid.append_value(s.parent_span_id).map_err(err)?;
        self.tstate.append_value(&s.trace_state);
        self.flags.push(s.flags);
        self.name.append_value(&s.name);
        self.kind.push(s.kind);
        self.start.push(s.start_ns);
        self.end.push(s.end_ns);
        self.attrs.append_value(s.attributes.to_bytes());
        let mut e = Enc::default();
        encode_events(&s.events, &mut e);
        self.events.append_value(&e.buf);
        let mut e = Enc::default();
        encode_links(&s.links, &mut e);
        self.links.append_value(&e.buf);
        let mut e = Enc::default();
        e.uvarint(u64::from(s.dropped_attributes_count));
        e.uvarint(u64::from(s.dropped_events_count));
        e.uvarint(u64::from(s.dropped_links_count));
        self.dropped.append_value(&e.buf);
        self.status.push(s.status_code);
        self.smsg.append_value(&s.status_message);
        self.service.append_value(r.service);
        self.resource.append_value(resource);
        self.scope.append_value(scope);
        Ok(())
    }

    fn take_batch(&mut self) -> Result<RecordBatch> {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(self.tid.finish()) as ArrayRef,
                Arc::new(self.sid.finish()),
                Arc::new(self.pid.finish()),
                Arc::new(self.tstate.finish()),
                Arc::new(UInt32Array::from(std::mem::take(&mut self.flags))),
                Arc::new(self.name.finish()),
                Arc::new(Int32Array::from(std::mem::take(&mut self.kind))),
                Arc::new(Int64Array::from(std::mem::take(&mut self.start))),
                Arc::new(Int64Array::from(std::mem::take(&mut self.end))),
                Arc::new(self.attrs.finish()),
                Arc::new(self.events.finish()),
                Arc::new(self.links.finish()),
                Arc::new(self.dropped.finish()),
                Arc::new(Int32Array::from(std::mem::take(&mut self.status))),
                Arc::new(self.smsg.finish()),
                Arc::new(self.service.finish()),
                Arc::new(self.resource.finish()),
                Arc::new(self.scope.finish()),
            ],
        )
        .map_err(|e| StorageError::part("traces part", "build spans batch", e))
    }
}

/// Encodes spans sorted by (trace id, start) as one part.
pub(crate) fn encode_part(spans: &[SpanRef<'_>]) -> Result<PartData> {
    encode(spans, EnabledStatistics::Page)
}

/// Writer settings of `spans.parquet` with the given statistics level (`Chunk` writes no
/// page index).
fn props(statistics: EnabledStatistics) -> WriterProperties {
    writer_props(|b| {
        // LZ4 rather than zstd: a lookup by id opens every column, and parquet
        // builds a zstd compressor and decompressor for each column chunk it opens
        // (each probes the CPU with `cpuid`, which traps under virtualisation):
        // a third of a lookup's CPU. LZ4 costs about 4% more bytes on spans.
        b.set_compression(Compression::LZ4_RAW)
            .set_statistics_enabled(statistics)
            .set_max_row_group_row_count(Some(ROW_GROUP))
            .set_data_page_row_count_limit(PAGE_ROWS)
            .set_write_batch_size(PAGE_ROWS)
            .set_column_dictionary_enabled(ColumnPath::from("trace_id"), false)
            .set_column_bloom_filter_enabled(ColumnPath::from("trace_id"), true)
            .set_column_bloom_filter_fpp(ColumnPath::from("trace_id"), 0.01)
            .set_column_dictionary_enabled(ColumnPath::from("span_id"), false)
            .set_column_dictionary_enabled(ColumnPath::from("parent_span_id"), false)
            .set_column_dictionary_enabled(ColumnPath::from("start_ns"), false)
            .set_column_encoding(ColumnPath::from("start_ns"), Encoding::DELTA_BINARY_PACKED)
            .set_column_dictionary_enabled(ColumnPath::from("end_ns"), false)
            .set_column_encoding(ColumnPath::from("end_ns"), Encoding::DELTA_BINARY_PACKED)
    })
}

/// `encode_part` with the given statistics level.
fn encode(spans: &[SpanRef<'_>], statistics: EnabledStatistics) -> Result<PartData> {
    let part = "traces part";
    let n = spans.len();
    let mut out = Writer::new(part, schema(), props(statistics))?;
    let mut cols = SpanCols::new();
    let mut ops: BTreeMap<&str, BTreeSet<(&str, i32)>> = BTreeMap::new();
    let (mut min_ns, mut max_ns) = (i64::MAX, i64::MIN);
    // Spans of one resource and scope share `Arc`s: encode each once per run.
    let mut res_cache: Option<(*const Attributes, Vec<u8>)> = None;
    let mut scope_cache: Option<(*const Scope, Vec<u8>)> = None;
    for r in spans {
        let s = r.span;
        min_ns = min_ns.min(s.start_ns);
        max_ns = max_ns.max(s.start_ns);
        let rp = Arc::as_ptr(r.resource);
        if res_cache.as_ref().is_none_or(|(p, _)| *p != rp) {
            res_cache = Some((rp, r.resource.to_bytes()));
        }
        let sp = Arc::as_ptr(&s.scope);
        if scope_cache.as_ref().is_none_or(|(p, _)| *p != sp) {
            let mut e = Enc::default();
            s.scope.encode(&mut e);
            scope_cache = Some((sp, e.buf));
        }
        let (Some((_, rb)), Some((_, sb))) = (&res_cache, &scope_cache) else {
            continue;
        };
        cols.push(r, rb, sb)?;
        ops.entry(r.service).or_default().insert((&s.name, s.kind));
        if cols.start.len() >= ROW_GROUP {
            out.write(&cols.take_batch()?)?;
        }
    }
    if !cols.start.is_empty() || n == 0 {
        out.write(&cols.take_batch()?)?;
    }
    Ok(part_data(out.finish()?, n, min_ns, max_ns, ops))
}

/// A written `spans.parquet` as a part: its time range and, in the meta, its services
/// with their operations and span kinds.
fn part_data(
    bytes: Bytes,
    n: usize,
    min_ns: i64,
    max_ns: i64,
    ops: BTreeMap<&str, BTreeSet<(&str, i32)>>,
) -> PartData {
    let (min_ns, max_ns) = if n == 0 { (0, 0) } else { (min_ns, max_ns) };
    let services: serde_json::Map<String, serde_json::Value> = ops
        .into_iter()
        .map(|(svc, set)| {
            (
                svc.to_string(),
                serde_json::Value::Array(
                    set.into_iter()
                        .map(|(op, k)| serde_json::json!([op, k]))
                        .collect(),
                ),
            )
        })
        .collect();
    PartData {
        window_start_ms: ms(min_ns),
        window_end_ms: ms(max_ns) + 1,
        min_time_ms: ms(min_ns),
        max_time_ms: ms(max_ns),
        rows: n as u64,
        files: vec![(SPANS_FILE.to_string(), bytes)],
        extra: serde_json::json!({ "services": services }),
    }
}

/// One output part of `merge_sorted`: the spans of one time window.
struct SpansOutput {
    schema: Arc<Schema>,
    writer: Writer,
    /// `(pool slot, row)` of the rows not taken out of the pool yet.
    picks: Vec<(usize, usize)>,
    /// Rows taken out but not written: writes are whole pages of `PAGE_ROWS`, since the
    /// writer ends a page only after a write of up to `PAGE_ROWS` rows, so a short write
    /// would leave a page of up to twice that.
    carry: Option<RecordBatch>,
    n: usize,
    min_ns: i64,
    max_ns: i64,
    ops: BTreeMap<String, BTreeSet<(String, i32)>>,
}

impl MergeOutput<([u8; 16], i64)> for SpansOutput {
    fn take(&mut self, &(_, t): &([u8; 16], i64), at: (usize, usize)) {
        self.picks.push(at);
        (self.min_ns, self.max_ns) = (self.min_ns.min(t), self.max_ns.max(t));
        self.n += 1;
    }

    /// Writes the picked rows and notes their services and operations.
    fn write(&mut self, merge: &KWay<'_, ([u8; 16], i64)>) -> Result<()> {
        if self.picks.is_empty() {
            return Ok(());
        }
        let batch = RecordBatch::try_new(self.schema.clone(), merge.take(&self.picks)?)
            .map_err(|e| StorageError::part("traces merge", "merge", e))?;
        let cols = SpanColumns::new("traces merge", &batch)?;
        for r in 0..batch.num_rows() {
            let (svc, op) = (cols.service.value(r), cols.name.value(r));
            let op = (op.to_string(), cols.kind.value(r));
            match self.ops.get_mut(svc) {
                Some(set) => {
                    set.insert(op);
                }
                None => {
                    self.ops.insert(svc.to_string(), BTreeSet::from([op]));
                }
            }
        }
        let batch = match self.carry.take() {
            Some(carry) => concat_batches(&self.schema, [&carry, &batch])
                .map_err(|e| StorageError::part("traces merge", "merge", e))?,
            None => batch,
        };
        let whole = batch.num_rows() / PAGE_ROWS * PAGE_ROWS;
        if whole > 0 {
            self.writer.write(&batch.slice(0, whole))?;
        }
        if whole < batch.num_rows() {
            self.carry = Some(batch.slice(whole, batch.num_rows() - whole));
        }
        self.picks.clear();
        Ok(())
    }
}

impl SpansOutput {
    fn finish(mut self) -> Result<PartData> {
        if let Some(carry) = self.carry.take() {
            self.writer.write(&carry)?;
        }
        let ops = self
            .ops
            .iter()
            .map(|(svc, set)| {
                let set = set.iter().map(|(op, k)| (op.as_str(), *k)).collect();
                (svc.as_str(), set)
            })
            .collect();
        Ok(part_data(
            self.writer.finish()?,
            self.n,
            self.min_ns,
            self.max_ns,
            ops,
        ))
    }
}

/// Merges `spans.parquet` files without decoding their spans into records, into one part
/// per time window of `window_ms`: every file is sorted by trace id then start, so a
/// k-way merge of their batches writes the outputs a row group at a time, holding a
/// batch of each input instead of every span decoded (about a kilobyte each: merges of
/// about 15 million spans held 16 GB). Spans with the same trace id and start keep the
/// order of `files`, as a stable sort of their concatenation would. `None` when a
/// file's columns are not this version's or a file is not sorted, to be merged record
/// by record.
pub(crate) fn merge_sorted(
    files: Vec<(String, MergeSource)>,
    window_ms: i64,
) -> Result<Option<Vec<PartData>>> {
    let want = schema();
    let index = |name: &str| {
        want.index_of(name)
            .map_err(|e| StorageError::part("traces merge", "merge", e))
    };
    let (tid, start) = (index("trace_id")?, index("start_ns")?);
    let key = move |b: &RecordBatch, row: usize, _input: usize| {
        let ids = b
            .column(tid)
            .as_any()
            .downcast_ref::<FixedSizeBinaryArray>()?;
        let starts = b.column(start).as_any().downcast_ref::<Int64Array>()?;
        let id: [u8; 16] = ids.value(row).try_into().ok()?;
        Some((id, starts.value(row)))
    };
    let Some(merge) = KWay::open(files, &want, ROW_GROUP, Box::new(key))? else {
        return Ok(None);
    };
    // The writers gather row groups of `ROW_GROUP` rows from the merge's writes.
    let outputs = merge.run(
        ROW_GROUP,
        |(_, t)| window_start(ms(*t), window_ms),
        || {
            Ok(SpansOutput {
                schema: want.clone(),
                writer: Writer::new("traces merge", want.clone(), props(EnabledStatistics::Page))?,
                picks: Vec::new(),
                carry: None,
                n: 0,
                min_ns: i64::MAX,
                max_ns: i64::MIN,
                ops: BTreeMap::new(),
            })
        },
    )?;
    let Some(outputs) = outputs else {
        return Ok(None);
    };
    outputs
        .into_values()
        .map(SpansOutput::finish)
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Splits spans by the time window of their start, keeping order.
pub(crate) fn split_by_window(
    spans: Vec<SpanRecord>,
    window_ms: i64,
) -> BTreeMap<i64, Vec<SpanRecord>> {
    let mut out: BTreeMap<i64, Vec<SpanRecord>> = BTreeMap::new();
    for s in spans {
        out.entry(window_start(ms(s.span.start_ns), window_ms))
            .or_default()
            .push(s);
    }
    out
}

pub(crate) struct TracesPart {
    pub(crate) meta: PartMeta,
    file: ParquetFile,
}

impl TracesPart {
    pub(crate) fn open(meta: PartMeta, store: &PartStore) -> Result<TracesPart> {
        let file = ParquetFile::open(store, Signal::Traces, &meta, SPANS_FILE)?;
        Ok(TracesPart { meta, file })
    }

    /// Services with their operations and span kinds, from the meta.
    pub(crate) fn operations(&self) -> BTreeMap<String, BTreeSet<(String, i32)>> {
        let mut out: BTreeMap<String, BTreeSet<(String, i32)>> = BTreeMap::new();
        if let Some(m) = self.meta.extra.get("services").and_then(|s| s.as_object()) {
            for (svc, ops) in m {
                let set = out.entry(svc.clone()).or_default();
                for op in ops.as_array().into_iter().flatten() {
                    if let (Some(name), Some(kind)) = (
                        op.get(0).and_then(|v| v.as_str()),
                        op.get(1).and_then(|v| v.as_i64()),
                    ) {
                        set.insert((name.to_string(), kind as i32));
                    }
                }
            }
        }
        out
    }

    /// Spans of one trace. Rows are sorted by trace id, so the row-group statistics and
    /// the page index of `trace_id` name the few pages that may hold it; the bloom filter
    /// of each of their row groups then rules out parts and groups that do not, and only
    /// the remaining pages are decoded. Without a page index, whole row groups are read.
    pub(crate) async fn trace(&self, id: &[u8; 16]) -> Result<Vec<SpanRecord>> {
        if self.meta.rows == 0 {
            return Ok(Vec::new());
        }
        let meta = self.file.metadata().await?;
        let pq = meta.metadata();
        let col = pq
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .position(|c| c.name() == "trace_id")
            .ok_or_else(|| {
                StorageError::part(&self.meta.id, "trace lookup", "no trace_id column")
            })?;
        // The file rows of each row group, and whether its statistics may hold the id.
        let mut groups: Vec<(Range<usize>, bool)> = Vec::with_capacity(pq.num_row_groups());
        let mut rows = 0usize;
        for rg in pq.row_groups() {
            let n = usize::try_from(rg.num_rows()).unwrap_or(0);
            let holds = rg
                .column(col)
                .statistics()
                .is_none_or(|s| may_hold(s, &id[..]));
            groups.push((rows..rows + n, holds));
            rows += n;
        }
        let ranges = match self.file.pages_holding("trace_id", &id[..]).await? {
            Some(pages) => pages,
            None => groups.iter().filter(|g| g.1).map(|g| g.0.clone()).collect(),
        };
        // Each range is cut at row-group ends (merged pages may run across one) and each
        // piece kept when its group's bloom filter may hold the id.
        let mut builder = self.file.builder().await?;
        let mut kept: Vec<Range<usize>> = Vec::new();
        let mut checked: Option<(usize, bool)> = None;
        for range in ranges {
            let mut g = groups.partition_point(|(r, _)| r.end <= range.start);
            while let Some((group, _)) = groups.get(g).filter(|(r, _)| r.start < range.end) {
                let piece = range.start.max(group.start)..range.end.min(group.end);
                let holds = match checked {
                    Some((cg, holds)) if cg == g => holds,
                    _ => {
                        let bloom = builder
                            .get_row_group_column_bloom_filter(g, col)
                            .await
                            .map_err(|e| {
                                StorageError::part(&self.meta.id, "read bloom filter", e)
                            })?;
                        let holds = bloom.is_none_or(|b| b.check(&id[..]));
                        checked = Some((g, holds));
                        holds
                    }
                };
                if holds && !piece.is_empty() {
                    push_range(&mut kept, piece);
                }
                g += 1;
            }
        }
        if kept.is_empty() {
            return Ok(Vec::new());
        }
        let selection = RowSelection::from_consecutive_ranges(kept.into_iter(), rows);
        let batches = self.file.read(&COLUMNS, None, Some(selection)).await?;
        let mut out = Vec::new();
        for b in &batches {
            let cols = SpanColumns::new(&self.meta.id, b)?;
            for r in 0..b.num_rows() {
                if cols.tid.value(r) == id {
                    out.push(cols.record(r)?);
                }
            }
        }
        Ok(out)
    }

    /// Spans that match `q`. A search by service first takes the service's rows from
    /// the dictionary keys of the `service` column; the narrow columns the search
    /// filters on (trace id and start, and name or end where it filters on them) then
    /// choose the rows, and only those rows are read whole. Without attribute filters,
    /// `q.max_traces` and `q.limit` are applied before that last read, so a search for
    /// the newest traces of a busy service decodes a few rows instead of all of the
    /// service's spans.
    pub(crate) async fn search(&self, q: &SpanQuery) -> Result<Vec<SpanRecord>> {
        if self.meta.rows == 0 || !self.meta.overlaps(ms(q.start_ns), ms(q.end_ns)) {
            return Ok(Vec::new());
        }
        if let Some(svc) = &q.service
            && !self.operations().contains_key(svc)
        {
            return Ok(Vec::new());
        }
        let part = self.meta.id.as_str();
        // A search by service finds the service's rows from the dictionary keys of its
        // column first, and then does not decode that column as text.
        let chosen = match &q.service {
            Some(svc) => {
                let chosen = self.file.rows_equal("service", svc).await?;
                if chosen.is_empty() {
                    return Ok(Vec::new());
                }
                Some(chosen)
            }
            None => None,
        };
        // Only the columns this search filters on are decoded.
        let mut columns = vec!["trace_id", "start_ns"];
        if q.operation.is_some() {
            columns.push("name");
        }
        if q.min_duration_ns.is_some() || q.max_duration_ns.is_some() {
            columns.push("end_ns");
        }
        // (start, trace id, row in the file) of every row the narrow columns allow. The
        // columns are read one batch at a time: a part holds millions of spans. All rows
        // are decoded, not a selection of the service's rows: a service's spans are
        // spread over the file (sorted by trace id), and a selection of millions of
        // short ranges costs more than it saves.
        let mut rows: Vec<(i64, [u8; 16], usize)> = Vec::new();
        let mut stream = self.file.stream(&columns, None, None).await?;
        let (mut base, mut next) = (0usize, 0usize);
        while let Some(b) = stream
            .try_next()
            .await
            .map_err(|e| StorageError::part(part, "search", e))?
        {
            let tid: &FixedSizeBinaryArray = column(part, &b, "trace_id")?;
            let start: &Int64Array = column(part, &b, "start_ns")?;
            let name: Option<&StringArray> = optional_column(part, &b, "name")?;
            let end: Option<&Int64Array> = optional_column(part, &b, "end_ns")?;
            for r in 0..b.num_rows() {
                let row = base + r;
                if let Some(chosen) = &chosen {
                    while chosen.get(next).is_some_and(|c| c.end <= row) {
                        next += 1;
                    }
                    if chosen.get(next).is_none_or(|c| c.start > row) {
                        continue;
                    }
                }
                let t = start.value(r);
                let d = end.map_or(0, |e| e.value(r).saturating_sub(t));
                if t < q.start_ns
                    || t >= q.end_ns
                    || (q.operation.as_deref())
                        .is_some_and(|o| name.is_some_and(|c| o != c.value(r)))
                    || q.min_duration_ns.is_some_and(|m| d < m)
                    || q.max_duration_ns.is_some_and(|m| d > m)
                {
                    continue;
                }
                let mut id = [0u8; 16];
                id.copy_from_slice(&tid.value(r)[..16]);
                rows.push((t, id, row));
            }
            base += b.num_rows();
        }
        if q.attributes.is_empty() {
            newest(&mut rows, q.max_traces, q.limit);
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut wanted: Vec<usize> = rows.iter().map(|r| r.2).collect();
        wanted.sort_unstable();
        let batches = self
            .file
            .read(&COLUMNS, None, Some(row_selection(&wanted)))
            .await?;
        let mut out = Vec::with_capacity(wanted.len());
        for b in &batches {
            let cols = SpanColumns::new(part, b)?;
            for r in 0..b.num_rows() {
                let rec = cols.record(r)?;
                if span_matches(q, &rec.service_name, &rec.resource, &rec.span) {
                    out.push(rec);
                }
            }
        }
        Ok(out)
    }

    pub(crate) async fn read_all(&self, store: &PartStore) -> Result<Vec<SpanRecord>> {
        if self.meta.rows == 0 {
            return Ok(Vec::new());
        }
        let bytes: Bytes = store.get(Signal::Traces, &self.meta, SPANS_FILE).await?;
        let id = self.meta.id.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for b in decode_all(&id, bytes)? {
                let cols = SpanColumns::new(&id, &b)?;
                for r in 0..b.num_rows() {
                    out.push(cols.record(r)?);
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| StorageError::part(&self.meta.id, "read part", e))?
    }
}

struct SpanColumns<'a> {
    tid: &'a FixedSizeBinaryArray,
    sid: &'a FixedSizeBinaryArray,
    pid: &'a FixedSizeBinaryArray,
    tstate: &'a StringArray,
    flags: &'a UInt32Array,
    name: &'a StringArray,
    kind: &'a Int32Array,
    start: &'a Int64Array,
    end: &'a Int64Array,
    attrs: &'a BinaryArray,
    events: &'a BinaryArray,
    links: &'a BinaryArray,
    dropped: &'a BinaryArray,
    status: &'a Int32Array,
    smsg: &'a StringArray,
    service: &'a StringArray,
    resource: &'a BinaryArray,
    scope: &'a BinaryArray,
    cache: std::cell::RefCell<Caches>,
}

#[derive(Default)]
struct Caches {
    resource: Option<(Vec<u8>, Arc<Attributes>)>,
    scope: Option<(Vec<u8>, Arc<Scope>)>,
}

impl<'a> SpanColumns<'a> {
    fn new(part: &'a str, b: &'a RecordBatch) -> Result<Self> {
        Ok(SpanColumns {
            tid: column(part, b, "trace_id")?,
            sid: column(part, b, "span_id")?,
            pid: column(part, b, "parent_span_id")?,
            tstate: column(part, b, "trace_state")?,
            flags: column(part, b, "flags")?,
            name: column(part, b, "name")?,
            kind: column(part, b, "kind")?,
            start: column(part, b, "start_ns")?,
            end: column(part, b, "end_ns")?,
            attrs: column(part, b, "attributes")?,
            events: column(part, b, "events")?,
            links: column(part, b, "links")?,
            dropped: column(part, b, "dropped")?,
            status: column(part, b, "status_code")?,
            smsg: column(part, b, "status_message")?,
            service: column(part, b, "service")?,
            resource: column(part, b, "resource")?,
            scope: column(part, b, "scope")?,
            cache: Default::default(),
        })
    }

    fn record(&self, r: usize) -> Result<SpanRecord> {
        let fixed = |a: &FixedSizeBinaryArray| a.value(r).to_vec();
        let mut trace_id = [0u8; 16];
        trace_id.copy_from_slice(&fixed(self.tid)[..16]);
        let mut span_id = [0u8; 8];
        span_id.copy_from_slice(&fixed(self.sid)[..8]);
        let mut parent_span_id = [0u8; 8];
        parent_span_id.copy_from_slice(&fixed(self.pid)[..8]);
        let mut d = Dec::new(self.dropped.value(r), "dropped counts");
        let small = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let dropped_attributes_count = small(d.uvarint()?);
        let dropped_events_count = small(d.uvarint()?);
        let dropped_links_count = small(d.uvarint()?);
        let mut cache = self.cache.borrow_mut();
        let rb = self.resource.value(r);
        let resource = match &cache.resource {
            Some((b, a)) if b.as_slice() == rb => a.clone(),
            _ => {
                let a = Arc::new(Attributes::from_bytes(rb)?);
                cache.resource = Some((rb.to_vec(), a.clone()));
                a
            }
        };
        let sb = self.scope.value(r);
        let scope = match &cache.scope {
            Some((b, s)) if b.as_slice() == sb => s.clone(),
            _ => {
                let s = Arc::new(Scope::decode(&mut Dec::new(sb, "scope"))?);
                cache.scope = Some((sb.to_vec(), s.clone()));
                s
            }
        };
        Ok(SpanRecord {
            service_name: self.service.value(r).to_string(),
            resource,
            span: Span {
                trace_id,
                span_id,
                parent_span_id,
                trace_state: self.tstate.value(r).to_string(),
                flags: self.flags.value(r),
                name: self.name.value(r).to_string(),
                kind: self.kind.value(r),
                start_ns: self.start.value(r),
                end_ns: self.end.value(r),
                attributes: Attributes::from_bytes(self.attrs.value(r))?,
                dropped_attributes_count,
                events: decode_events(&mut Dec::new(self.events.value(r), "span events"))?,
                dropped_events_count,
                links: decode_links(&mut Dec::new(self.links.value(r), "span links"))?,
                dropped_links_count,
                status_code: self.status.value(r),
                status_message: self.smsg.value(r).to_string(),
                scope,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::part::Publish;

    #[tokio::test]
    async fn a_trace_is_found_with_and_without_a_page_index() {
        // 1,000 traces of 20 spans: three row groups, ids sorted as written.
        let resource = Arc::new(Attributes::default());
        let id = |k: u32| {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&k.to_be_bytes());
            id
        };
        let records: Vec<SpanRecord> = (0..20_000u32)
            .map(|i| SpanRecord {
                service_name: "svc".into(),
                resource: resource.clone(),
                span: Span {
                    trace_id: id(i / 20),
                    span_id: u64::from(i + 1).to_be_bytes(),
                    name: "op".into(),
                    start_ns: i64::from(i % 20),
                    end_ns: i64::from(i % 20) + 1,
                    ..Default::default()
                },
            })
            .collect();
        let refs: Vec<SpanRef<'_>> = records.iter().map(SpanRef::of).collect();
        let dir = tempfile::tempdir().unwrap();
        let store = PartStore::in_memory(dir.path().to_path_buf());
        for stats in [EnabledStatistics::Page, EnabledStatistics::Chunk] {
            let data = encode(&refs, stats).unwrap();
            let meta = store
                .publish(Signal::Traces, data, Publish::default())
                .await
                .unwrap();
            let part = TracesPart::open(meta, &store).unwrap();
            // Every column LZ4: a lookup opens them all, and a zstd chunk costs a codec
            // set-up each time.
            let codecs = part.file.codecs().await.unwrap();
            assert_eq!(codecs.len(), 18);
            assert!(
                codecs.iter().all(|c| c.1 == Compression::LZ4_RAW),
                "{codecs:?}"
            );
            let indexed = part.file.pages_holding("trace_id", &id(0)).await.unwrap();
            assert_eq!(indexed.is_some(), stats == EnabledStatistics::Page);
            // The first and last trace, and traces in the second and third row groups.
            for k in [0, 409, 410, 500, 819, 820, 999] {
                let spans = part.trace(&id(k)).await.unwrap();
                assert_eq!(spans.len(), 20, "trace {k} with {stats:?} statistics");
                assert!(spans.iter().all(|r| r.span.trace_id == id(k)));
            }
            assert!(part.trace(&id(1000)).await.unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn a_search_by_service_finds_the_rows_of_its_dictionary_keys() {
        let resource = Arc::new(Attributes::default());
        let services = ["api", "db", "web"];
        // Services change every 7 spans, across pages (1,024 rows) and row groups.
        let records: Vec<SpanRecord> = (0..30_000u32)
            .map(|i| SpanRecord {
                service_name: services[(i as usize / 7) % 3].into(),
                resource: resource.clone(),
                span: Span {
                    trace_id: {
                        let mut id = [0u8; 16];
                        id[..4].copy_from_slice(&(i / 20).to_be_bytes());
                        id
                    },
                    span_id: u64::from(i + 1).to_be_bytes(),
                    name: ["get", "put"][i as usize % 2].into(),
                    start_ns: i64::from(i),
                    end_ns: i64::from(i) + i64::from(i % 10),
                    ..Default::default()
                },
            })
            .collect();
        let refs: Vec<SpanRef<'_>> = records.iter().map(SpanRef::of).collect();
        let dir = tempfile::tempdir().unwrap();
        let store = PartStore::in_memory(dir.path().to_path_buf());
        let meta = store
            .publish(
                Signal::Traces,
                encode_part(&refs).unwrap(),
                Publish::default(),
            )
            .await
            .unwrap();
        let part = TracesPart::open(meta, &store).unwrap();

        let rows: Vec<usize> = part
            .file
            .rows_equal("service", "db")
            .await
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        let want: Vec<usize> = (0..records.len())
            .filter(|&i| records[i].service_name == "db")
            .collect();
        assert_eq!(rows, want);
        assert!(
            part.file
                .rows_equal("service", "nope")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            part.file
                .rows_equal("start_ns", "1")
                .await
                .unwrap()
                .is_empty()
        );

        let ids = |found: Vec<SpanRecord>| {
            let mut ids: Vec<[u8; 8]> = found.iter().map(|r| r.span.span_id).collect();
            ids.sort_unstable();
            ids
        };
        let searches = [
            SpanQuery {
                service: Some("db".into()),
                ..Default::default()
            },
            SpanQuery {
                service: Some("web".into()),
                operation: Some("put".into()),
                min_duration_ns: Some(5),
                start_ns: 1_000,
                end_ns: 25_000,
                ..Default::default()
            },
            SpanQuery {
                operation: Some("get".into()),
                max_duration_ns: Some(2),
                ..Default::default()
            },
        ];
        // Each search also with a span limit and a trace limit: rows let through by
        // mistake would push matching ones out of the newest.
        let limited = searches.iter().flat_map(|q| {
            [(0, 0), (7, 0), (0, 3)].map(|(limit, max_traces)| SpanQuery {
                limit,
                max_traces,
                ..q.clone()
            })
        });
        for mut q in limited {
            if q.end_ns == 0 {
                q.end_ns = i64::MAX;
            }
            // The file holds the spans in the order of `records` (by trace id, then start).
            let mut matching: Vec<(i64, [u8; 16], usize)> = records
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    span_matches(&q, &r.service_name, &r.resource, &r.span)
                        && (q.start_ns..q.end_ns).contains(&r.span.start_ns)
                })
                .map(|(i, r)| (r.span.start_ns, r.span.trace_id, i))
                .collect();
            newest(&mut matching, q.max_traces, q.limit);
            let want = ids(matching.iter().map(|m| records[m.2].clone()).collect());
            assert!(!want.is_empty());
            assert_eq!(ids(part.search(&q).await.unwrap()), want, "{q:?}");
        }
    }

    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    use parquet::file::metadata::PageIndexPolicy;

    /// Every span of a `spans.parquet`, in file order.
    fn spans_of(data: &PartData) -> Vec<SpanRecord> {
        let mut out = Vec::new();
        for b in decode_all("test", data.files[0].1.clone()).unwrap() {
            let cols = SpanColumns::new("test", &b).unwrap();
            out.extend((0..b.num_rows()).map(|r| cols.record(r).unwrap()));
        }
        out
    }

    #[test]
    fn sorted_files_merge_as_their_records_would() {
        let resource = Arc::new(Attributes::default());
        let span = |k: u32, start_ms: i64, svc: &str, name: &str| SpanRecord {
            service_name: svc.into(),
            resource: resource.clone(),
            span: Span {
                trace_id: {
                    let mut id = [0u8; 16];
                    id[..4].copy_from_slice(&k.to_be_bytes());
                    id
                },
                span_id: (u64::from(k) << 20 | start_ms as u64).to_be_bytes(),
                name: name.into(),
                start_ns: start_ms * 1_000_000,
                end_ns: start_ms * 1_000_000 + 1,
                ..Default::default()
            },
        };
        // Interleaved trace ids, more spans than a row group, starts over three windows
        // of 3 ms, and one trace id and start in both inputs (their order must follow
        // the inputs').
        let a: Vec<SpanRecord> = (0..10_000u32)
            .map(|i| span(i * 2, i64::from(i % 7), "api", "get"))
            .chain([span(5, 3, "api", "from a")])
            .collect();
        let b: Vec<SpanRecord> = (0..7_000u32)
            .map(|i| span(i * 3, i64::from(i % 5), "db", "query"))
            .chain([span(5, 3, "db", "from b")])
            .collect();
        let encode_sorted = |spans: &[SpanRecord]| {
            let mut refs: Vec<SpanRef<'_>> = spans.iter().map(SpanRef::of).collect();
            refs.sort_by_key(|r| (r.span.trace_id, r.span.start_ns));
            encode_part(&refs).unwrap()
        };
        let (pa, pb) = (encode_sorted(&a), encode_sorted(&b));
        let dir = tempfile::tempdir().unwrap();
        let on_disk = dir.path().join("b.parquet");
        std::fs::write(&on_disk, &pb.files[0].1).unwrap();
        let files = || {
            vec![
                ("a".to_string(), MergeSource::Bytes(pa.files[0].1.clone())),
                ("b".to_string(), MergeSource::Path(on_disk.clone())),
            ]
        };
        let all: Vec<SpanRecord> = a.iter().chain(&b).cloned().collect();
        for window_ms in [3, 3_600_000] {
            let merged = merge_sorted(files(), window_ms).unwrap().unwrap();
            let expected: Vec<PartData> = split_by_window(all.clone(), window_ms)
                .values()
                .map(|spans| encode_sorted(spans))
                .collect();
            assert_eq!(merged.len(), if window_ms == 3 { 3 } else { 1 });
            assert_eq!(merged.iter().map(|p| p.rows).sum::<u64>(), 17_002);
            for (got, want) in merged.iter().zip(&expected) {
                assert_eq!(
                    (got.rows, got.min_time_ms, got.max_time_ms, &got.extra),
                    (want.rows, want.min_time_ms, want.max_time_ms, &want.extra)
                );
                assert_eq!(spans_of(got), spans_of(want));
                // Pages of at most `PAGE_ROWS` spans, however the rows came to the window.
                let b = ParquetRecordBatchReaderBuilder::try_new_with_options(
                    got.files[0].1.clone(),
                    ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required),
                )
                .unwrap();
                let md = b.metadata();
                let index = md.page_index().unwrap();
                for rg in 0..md.num_row_groups() {
                    let rows = md.row_group(rg).num_rows();
                    let pages = index.offset_index(rg, 0).unwrap().page_locations();
                    for (k, p) in pages.iter().enumerate() {
                        let end = pages.get(k + 1).map_or(rows, |n| n.first_row_index);
                        assert!(end - p.first_row_index <= PAGE_ROWS as i64, "{window_ms}");
                    }
                }
            }
            let fives: Vec<String> = merged
                .iter()
                .flat_map(spans_of)
                .filter(|r| {
                    r.span.trace_id[..4] == 5u32.to_be_bytes() && r.span.start_ns == 3_000_000
                })
                .map(|r| r.span.name)
                .collect();
            assert_eq!(fives, ["from a", "from b"]);
        }

        // A file of other columns is left to the record-by-record merge.
        let other = crate::part::encode_parquet(
            "test",
            &RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)])),
                vec![Arc::new(Int64Array::from(vec![1i64])) as ArrayRef],
            )
            .unwrap(),
            writer_props(|b| b),
        )
        .unwrap();
        let files = vec![
            ("a".to_string(), MergeSource::Bytes(pa.files[0].1.clone())),
            ("x".to_string(), MergeSource::Bytes(other)),
        ];
        assert!(merge_sorted(files, 3).unwrap().is_none());
        // A file that is not sorted (a damaged part) too.
        let unsorted = [span(9, 0, "api", "get"), span(1, 0, "api", "get")];
        let refs: Vec<SpanRef<'_>> = unsorted.iter().map(SpanRef::of).collect();
        let files = vec![
            ("a".to_string(), MergeSource::Bytes(pa.files[0].1.clone())),
            (
                "u".to_string(),
                MergeSource::Bytes(encode_part(&refs).unwrap().files[0].1.clone()),
            ),
        ];
        assert!(merge_sorted(files, 3).unwrap().is_none());
        // Nothing to merge gives no part.
        assert!(merge_sorted(Vec::new(), 3).unwrap().unwrap().is_empty());
    }

    #[test]
    fn the_newest_rows_of_the_newest_traces_are_kept() {
        let row = |start: i64, trace: u8, r: usize| (start, [trace; 16], r);
        let rows = vec![
            row(10, 1, 0),
            row(50, 2, 1),
            row(30, 1, 2),
            row(40, 3, 3),
            row(20, 2, 4),
        ];
        let mut two = rows.clone();
        newest(&mut two, 2, 0);
        // Traces 2 and 3 have the newest rows; trace 1's rows are left out.
        assert_eq!(two, [row(50, 2, 1), row(40, 3, 3), row(20, 2, 4)]);
        let mut limited = rows.clone();
        newest(&mut limited, 0, 2);
        assert_eq!(limited, [row(50, 2, 1), row(40, 3, 3)]);
        let mut all = rows;
        newest(&mut all, 0, 0);
        assert_eq!(all.len(), 5);
        assert_eq!(all[4], row(10, 1, 0));
    }

    #[test]
    fn wanted_rows_become_skip_and_select_runs() {
        let runs = |rows: &[usize]| -> Vec<(bool, usize)> {
            Vec::<RowSelector>::from(row_selection(rows))
                .into_iter()
                .map(|s| (s.skip, s.row_count))
                .collect()
        };
        assert_eq!(
            runs(&[0, 1, 2, 7, 9, 10]),
            [(false, 3), (true, 4), (false, 1), (true, 1), (false, 2)]
        );
        assert_eq!(runs(&[5]), [(true, 5), (false, 1)]);
        assert_eq!(runs(&[]), Vec::<(bool, usize)>::new());
    }
}
