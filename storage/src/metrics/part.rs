//! The metrics part format.
//!
//! * `series.parquet`: one row per series, sorted by labels: `labels` (encoded label set),
//!   `first_row`, `rows` (its row range in the samples file), `min_t`, `max_t`.
//! * `samples.parquet`: `series` (row of the series table), `t` (ms), `v` (float, null for
//!   histogram rows), `h` (encoded native histogram, null for float rows), `st` (start
//!   time in ms, null if unknown; parts written before start times existed lack the
//!   column), sorted by series then time. `series`, `t` and `st` are delta-encoded, `v`
//!   byte-stream-split, all zstd.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, Float64Array, Float64Builder, Int64Array,
    Int64Builder, RecordBatch, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use parquet::arrow::arrow_reader::RowSelection;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::schema::types::ColumnPath;

use crate::codec::Dec;
use crate::error::{Result, StorageError};
use crate::index::Postings;
use crate::model::{
    Histogram, HistogramSample, Labels, Matcher, MetricKind, MetricMetadata, Sample, StartTime,
};
use crate::part::{
    ParquetFile, PartData, PartMeta, PartStore, Writer, any_row_in, column, decode_all,
    encode_parquet, optional_column, window_start, writer_props,
};
use crate::telemetry::Signal;

use super::Series;

pub(crate) const SERIES_FILE: &str = "series.parquet";
pub(crate) const SAMPLES_FILE: &str = "samples.parquet";

fn series_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("labels", DataType::Binary, false),
        Field::new("first_row", DataType::UInt64, false),
        Field::new("rows", DataType::UInt32, false),
        Field::new("min_t", DataType::Int64, false),
        Field::new("max_t", DataType::Int64, false),
    ]))
}

/// The samples file's columns; `h` only in a part with histograms and `st` only in one
/// with start times: every column chunk a query opens costs a reader and a codec
/// (most of a small query's time), so columns that would hold only nulls are left out.
fn samples_schema(cols: Optional) -> Arc<Schema> {
    let mut fields = vec![
        Field::new("series", DataType::UInt32, false),
        Field::new("t", DataType::Int64, false),
        Field::new("v", DataType::Float64, true),
        Field::new("vi", DataType::Int64, true),
    ];
    if cols.histograms {
        fields.push(Field::new("h", DataType::Binary, true));
    }
    if cols.starts {
        fields.push(Field::new("st", DataType::Int64, true));
    }
    Arc::new(Schema::new(fields))
}

/// Which optional columns a samples file has.
#[derive(Clone, Copy)]
struct Optional {
    histograms: bool,
    starts: bool,
}

/// One series to write: its encoded label set and its points (sorted by time).
pub(crate) struct SeriesSlice<'a> {
    pub(crate) labels: std::borrow::Cow<'a, [u8]>,
    pub(crate) samples: &'a [Sample],
    pub(crate) histograms: &'a [HistogramSample],
    pub(crate) starts: &'a [StartTime],
}

impl<'a> SeriesSlice<'a> {
    pub(crate) fn of(s: &'a Series) -> SeriesSlice<'a> {
        let mut e = crate::codec::Enc::default();
        s.labels.encode(&mut e);
        SeriesSlice {
            labels: std::borrow::Cow::Owned(e.buf),
            samples: &s.samples,
            histograms: &s.histograms,
            starts: &s.starts,
        }
    }
}

/// The samples columns being filled. Floats that are whole numbers (counters, mostly)
/// go to `vi`, where delta encoding packs them into a few bits; others to `v`.
struct SampleCols {
    cols: Optional,
    series: Vec<u32>,
    t: Vec<i64>,
    v: Float64Builder,
    vi: Int64Builder,
    h: BinaryBuilder,
    st: Int64Builder,
}

/// Whole floats that survive a round trip through i64 (not -0.0, not beyond 2^53).
fn as_whole(v: f64) -> Option<i64> {
    let ok = v.fract() == 0.0
        && v.abs() < 9_007_199_254_740_992.0
        && !(v == 0.0 && v.is_sign_negative());
    ok.then_some(v as i64)
}

impl SampleCols {
    fn with_capacity(n: usize, cols: Optional) -> SampleCols {
        SampleCols {
            cols,
            series: Vec::with_capacity(n),
            t: Vec::with_capacity(n),
            v: Float64Builder::with_capacity(n),
            vi: Int64Builder::with_capacity(n),
            h: BinaryBuilder::new(),
            st: Int64Builder::with_capacity(n),
        }
    }

    fn push_float(&mut self, series: u32, s: Sample, st: Option<i64>) {
        self.series.push(series);
        self.t.push(s.t);
        self.st.append_option(st);
        match as_whole(s.v) {
            Some(i) => {
                self.v.append_null();
                self.vi.append_value(i);
            }
            None => {
                self.v.append_value(s.v);
                self.vi.append_null();
            }
        }
        self.h.append_null();
    }

    fn push_histogram(&mut self, series: u32, h: &HistogramSample, st: Option<i64>) {
        self.series.push(series);
        self.t.push(h.t);
        self.st.append_option(st);
        self.v.append_null();
        self.vi.append_null();
        self.h.append_value(h.h.to_bytes());
    }

    fn take_batch(&mut self) -> Result<RecordBatch> {
        let mut arrays = vec![
            Arc::new(UInt32Array::from(std::mem::take(&mut self.series))) as ArrayRef,
            Arc::new(Int64Array::from(std::mem::take(&mut self.t))),
            Arc::new(self.v.finish()),
            Arc::new(self.vi.finish()),
        ];
        let (h, st) = (self.h.finish(), self.st.finish());
        if self.cols.histograms {
            arrays.push(Arc::new(h));
        }
        if self.cols.starts {
            arrays.push(Arc::new(st));
        }
        RecordBatch::try_new(samples_schema(self.cols), arrays)
            .map_err(|e| StorageError::part("metrics part", "build samples batch", e))
    }
}

/// Rows of the samples file are written in batches of this many, so that a flush
/// holds one batch of Arrow arrays at a time rather than the whole part.
const SAMPLE_BATCH_ROWS: usize = 1 << 20;

/// Encodes series as one part covering their time range. Empty series are skipped.
pub(crate) fn encode_part(
    series: &[SeriesSlice<'_>],
    metadata: &[MetricMetadata],
) -> Result<PartData> {
    let part = "metrics part";
    let series: Vec<&SeriesSlice<'_>> = series
        .iter()
        .filter(|s| !s.samples.is_empty() || !s.histograms.is_empty())
        .collect();
    let n_rows: usize = series
        .iter()
        .map(|s| s.samples.len() + s.histograms.len())
        .sum();
    let mut s_labels = BinaryBuilder::new();
    let mut s_first = Vec::with_capacity(series.len());
    let mut s_rows = Vec::with_capacity(series.len());
    let mut s_min = Vec::with_capacity(series.len());
    let mut s_max = Vec::with_capacity(series.len());
    let optional = Optional {
        histograms: series.iter().any(|s| !s.histograms.is_empty()),
        starts: series.iter().any(|s| !s.starts.is_empty()),
    };
    let mut samples_out = Writer::new(
        part,
        samples_schema(optional),
        writer_props(|b| {
            // LZ4 for all but the float column: parquet builds a zstd compressor and
            // decompressor for every column chunk a query opens (each probes the CPU
            // with `cpuid`, which traps under virtualisation), a large part of a small
            // query's time. Floats keep zstd, whose entropy coding saves a fifth of
            // their bytes; LZ4 costs the other columns about 5% of the part.
            b.set_compression(Compression::LZ4_RAW)
                .set_column_compression(
                    ColumnPath::from("v"),
                    Compression::ZSTD(ZstdLevel::default()),
                )
                .set_dictionary_enabled(false)
                .set_column_encoding(ColumnPath::from("series"), Encoding::DELTA_BINARY_PACKED)
                .set_column_encoding(ColumnPath::from("t"), Encoding::DELTA_BINARY_PACKED)
                .set_column_encoding(ColumnPath::from("v"), Encoding::BYTE_STREAM_SPLIT)
                .set_column_encoding(ColumnPath::from("vi"), Encoding::DELTA_BINARY_PACKED)
                .set_column_encoding(ColumnPath::from("st"), Encoding::DELTA_BINARY_PACKED)
        }),
    )?;
    let mut cols = SampleCols::with_capacity(n_rows.min(SAMPLE_BATCH_ROWS), optional);
    let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
    let mut row = 0u64;
    for (row_idx, s) in series.iter().enumerate() {
        let (samples, hists) = (s.samples, s.histograms);
        let first = row;
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        // Merge floats and histograms of this series by time, each with its start time.
        let (mut a, mut b, mut c) = (0, 0, 0);
        let mut start_of = |t: i64| {
            while c < s.starts.len() && s.starts[c].t < t {
                c += 1;
            }
            s.starts.get(c).filter(|x| x.t == t).map(|x| x.st)
        };
        while a < samples.len() || b < hists.len() {
            let take_float = b >= hists.len() || (a < samples.len() && samples[a].t <= hists[b].t);
            let t = if take_float {
                let t = samples[a].t;
                cols.push_float(row_idx as u32, samples[a], start_of(t));
                a += 1;
                t
            } else {
                let t = hists[b].t;
                cols.push_histogram(row_idx as u32, &hists[b], start_of(t));
                b += 1;
                t
            };
            lo = lo.min(t);
            hi = hi.max(t);
            row += 1;
            if cols.t.len() >= SAMPLE_BATCH_ROWS {
                samples_out.write(&cols.take_batch()?)?;
            }
        }
        min_t = min_t.min(lo);
        max_t = max_t.max(hi);
        s_labels.append_value(&s.labels);
        s_first.push(first);
        s_rows.push((row - first) as u32);
        s_min.push(lo);
        s_max.push(hi);
    }
    if !cols.t.is_empty() || row == 0 {
        samples_out.write(&cols.take_batch()?)?;
    }
    let samples_bytes = samples_out.finish()?;
    let series_batch = RecordBatch::try_new(
        series_schema(),
        vec![
            Arc::new(s_labels.finish()) as ArrayRef,
            Arc::new(UInt64Array::from(s_first)),
            Arc::new(UInt32Array::from(s_rows)),
            Arc::new(Int64Array::from(s_min)),
            Arc::new(Int64Array::from(s_max)),
        ],
    )
    .map_err(|e| StorageError::part(part, "build series batch", e))?;
    let series_bytes = encode_parquet(part, &series_batch, writer_props(|b| b))?;
    if series.is_empty() {
        // Metadata alone still has to outlive the WAL segments it came from.
        let now = crate::part::now_ms();
        min_t = now;
        max_t = now;
    }
    Ok(PartData {
        window_start_ms: min_t,
        window_end_ms: max_t + 1,
        min_time_ms: min_t,
        max_time_ms: max_t,
        rows: row,
        files: vec![
            (SERIES_FILE.to_string(), series_bytes),
            (SAMPLES_FILE.to_string(), samples_bytes),
        ],
        extra: serde_json::json!({
            "series": series.len(),
            "metadata": metadata.iter().map(|m| serde_json::json!({
                "metric": m.metric, "type": m.kind.as_str(), "unit": m.unit, "help": m.help,
            })).collect::<Vec<_>>(),
        }),
    })
}

/// Splits series by the time window of their samples.
pub(crate) fn split_by_window(series: Vec<Series>, window_ms: i64) -> BTreeMap<i64, Vec<Series>> {
    let mut out: BTreeMap<i64, Vec<Series>> = BTreeMap::new();
    for s in series {
        let mut per: BTreeMap<i64, Series> = BTreeMap::new();
        for x in s.samples {
            per.entry(window_start(x.t, window_ms))
                .or_insert_with(|| Series {
                    labels: s.labels.clone(),
                    ..Default::default()
                })
                .samples
                .push(x);
        }
        for h in s.histograms {
            per.entry(window_start(h.t, window_ms))
                .or_insert_with(|| Series {
                    labels: s.labels.clone(),
                    ..Default::default()
                })
                .histograms
                .push(h);
        }
        // A start time goes with its sample.
        for x in s.starts {
            if let Some(w) = per.get_mut(&window_start(x.t, window_ms)) {
                w.starts.push(x);
            }
        }
        for (w, ws) in per {
            out.entry(w).or_default().push(ws);
        }
    }
    out
}

/// The rows `from..to` of one series (counted from its first row) to read.
struct Span {
    series: usize,
    from: usize,
    to: usize,
}

impl Span {
    fn whole(idx: &PartIndex, series: usize) -> Span {
        Span {
            series,
            from: 0,
            to: idx.rows[series] as usize,
        }
    }

    /// Where the rows in `[start, end]` are if the series' samples are evenly spaced in
    /// time, widened by a margin.
    fn guess(idx: &PartIndex, series: usize, start: i64, end: i64) -> Span {
        let n = idx.rows[series] as usize;
        let (lo, hi) = (idx.min_t[series], idx.max_t[series]);
        if n < 64 || hi <= lo || (start <= lo && end >= hi) {
            return Span::whole(idx, series);
        }
        let margin = 8 + n / 32;
        // In floats: a series may span more than an i64 of milliseconds.
        let row_at = |t: i64| {
            let f = (t as f64 - lo as f64) / (hi as f64 - lo as f64);
            ((f * (n - 1) as f64) as usize).min(n - 1)
        };
        let from = if start <= lo {
            0
        } else {
            row_at(start).saturating_sub(margin)
        };
        let to = if end >= hi {
            n
        } else {
            (row_at(end) + 1 + margin).min(n)
        };
        Span {
            series,
            from: from.min(to),
            to,
        }
    }
}

/// The series table of a part, loaded on first use.
struct PartIndex {
    labels: Vec<Labels>,
    first_row: Vec<u64>,
    rows: Vec<u32>,
    min_t: Vec<i64>,
    max_t: Vec<i64>,
    postings: Postings,
}

pub(crate) struct MetricsPart {
    pub(crate) meta: PartMeta,
    series_file: ParquetFile,
    samples_file: ParquetFile,
    index: tokio::sync::OnceCell<Arc<PartIndex>>,
}

impl MetricsPart {
    pub(crate) fn open(meta: PartMeta, store: &PartStore) -> Result<MetricsPart> {
        let series_file = ParquetFile::open(store, Signal::Metrics, &meta, SERIES_FILE)?;
        let samples_file = ParquetFile::open(store, Signal::Metrics, &meta, SAMPLES_FILE)?;
        Ok(MetricsPart {
            meta,
            series_file,
            samples_file,
            index: tokio::sync::OnceCell::new(),
        })
    }

    pub(crate) fn metadata(&self) -> Vec<MetricMetadata> {
        parse_metadata(&self.meta.extra)
    }

    #[cfg(test)]
    pub(crate) async fn samples_codecs(&self) -> Result<Vec<(String, Compression, Vec<Encoding>)>> {
        self.samples_file.codecs().await
    }

    async fn index(&self) -> Result<Arc<PartIndex>> {
        self.index
            .get_or_try_init(|| async {
                let batches = self
                    .series_file
                    .read(
                        &["labels", "first_row", "rows", "min_t", "max_t"],
                        None,
                        None,
                    )
                    .await?;
                let idx = build_index(&self.meta.id, &batches)?;
                Ok::<_, StorageError>(Arc::new(idx))
            })
            .await
            .cloned()
    }

    /// Series matching `matchers` with samples in `[start, end]` (ms).
    pub(crate) async fn select(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>> {
        if !self.meta.overlaps(start, end) || self.meta.rows == 0 {
            return Ok(Vec::new());
        }
        let idx = self.index().await?;
        let chosen: Vec<u32> = idx
            .postings
            .candidates(matchers)
            .into_iter()
            .filter(|&i| {
                let i = i as usize;
                idx.min_t[i] <= end && idx.max_t[i] >= start && idx.labels[i].matches(matchers)
            })
            .collect();
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        // A series' rows are in time order. Its rows in `[start, end]` are looked for
        // where its first and last time put them if its samples were evenly spaced, with
        // a margin; a guess that proves too narrow (its first row read is not before
        // `start`, or its last not after `end`) is read again whole.
        let guesses: Vec<Span> = chosen
            .iter()
            .map(|&i| Span::guess(&idx, i as usize, start, end))
            .collect();
        let mut out = Vec::with_capacity(chosen.len());
        let missed = self
            .read_spans(&idx, &guesses, start, end, &mut out)
            .await?;
        if !missed.is_empty() {
            let whole: Vec<Span> = missed.iter().map(|&i| Span::whole(&idx, i)).collect();
            self.read_spans(&idx, &whole, start, end, &mut out).await?;
        }
        Ok(out)
    }

    /// Reads the rows of `spans` and adds each series' samples in `[start, end]` to
    /// `out`; gives back the series whose span may have left out some of them.
    async fn read_spans(
        &self,
        idx: &PartIndex,
        spans: &[Span],
        start: i64,
        end: i64,
        out: &mut Vec<Series>,
    ) -> Result<Vec<usize>> {
        let ranges: Vec<Range<usize>> = spans
            .iter()
            .map(|sp| {
                let first = idx.first_row[sp.series] as usize;
                first + sp.from..first + sp.to
            })
            .collect();
        let columns = self.columns_for(&ranges).await?;
        let selection =
            RowSelection::from_consecutive_ranges(ranges.into_iter(), self.meta.rows as usize);
        let batches = self
            .samples_file
            .read(&columns, None, Some(selection))
            .await?;
        let mut missed = Vec::new();
        let mut rows = RowCursor::new(&self.meta.id, &batches)?;
        for sp in spans {
            let mut s = Series {
                labels: idx.labels[sp.series].clone(),
                ..Default::default()
            };
            let all = idx.rows[sp.series] as usize;
            let Some((first_t, last_t)) = rows.take(sp.to - sp.from, &mut s, start, end)? else {
                if sp.from > 0 || sp.to < all {
                    missed.push(sp.series);
                }
                continue;
            };
            if (sp.from > 0 && first_t >= start) || (sp.to < all && last_t <= end) {
                missed.push(sp.series);
            } else if !s.is_empty() {
                out.push(s);
            }
        }
        Ok(missed)
    }
    /// The sample columns to read for the rows `ranges`: the times, and each value
    /// column unless the page index shows it null on all of those rows. Besides its
    /// bytes, leaving out the float column saves the zstd set-up parquet does for every
    /// column chunk it opens: series of whole numbers (most counters and gauges) keep
    /// their values in `vi` and have no floats.
    pub(super) async fn columns_for(&self, ranges: &[Range<usize>]) -> Result<Vec<&'static str>> {
        let mut columns = vec!["t"];
        for c in ["v", "vi", "h", "st"] {
            match self.samples_file.pages_with_values(c).await? {
                Some(pages) if !any_row_in(&pages, ranges) => {}
                _ => columns.push(c),
            }
        }
        Ok(columns)
    }

    /// Label sets of matching series with data in `[start, end]`.
    pub(crate) async fn series_labels(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Labels>> {
        if !self.meta.overlaps(start, end) || self.meta.rows == 0 {
            return Ok(Vec::new());
        }
        let idx = self.index().await?;
        Ok(idx
            .postings
            .candidates(matchers)
            .into_iter()
            .map(|i| i as usize)
            .filter(|&i| {
                idx.min_t[i] <= end && idx.max_t[i] >= start && idx.labels[i].matches(matchers)
            })
            .map(|i| idx.labels[i].clone())
            .collect())
    }

    /// Every series of the part (for compaction), reading whole files.
    pub(crate) async fn read_all(&self, store: &PartStore) -> Result<Vec<Series>> {
        if self.meta.rows == 0 {
            return Ok(Vec::new());
        }
        let series_bytes: Bytes = store.get(Signal::Metrics, &self.meta, SERIES_FILE).await?;
        let samples_bytes: Bytes = store.get(Signal::Metrics, &self.meta, SAMPLES_FILE).await?;
        let id = self.meta.id.clone();
        tokio::task::spawn_blocking(move || {
            let idx = build_index(&id, &decode_all(&id, series_bytes)?)?;
            let batches = decode_all(&id, samples_bytes)?;
            let mut rows = RowCursor::new(&id, &batches)?;
            let mut out = Vec::with_capacity(idx.labels.len());
            for (i, labels) in idx.labels.iter().enumerate() {
                let mut s = Series {
                    labels: labels.clone(),
                    ..Default::default()
                };
                rows.take(idx.rows[i] as usize, &mut s, i64::MIN, i64::MAX)?;
                out.push(s);
            }
            Ok(out)
        })
        .await
        .map_err(|e| StorageError::part(&self.meta.id, "read part", e))?
    }
}

fn build_index(part: &str, batches: &[RecordBatch]) -> Result<PartIndex> {
    let mut idx = PartIndex {
        labels: Vec::new(),
        first_row: Vec::new(),
        rows: Vec::new(),
        min_t: Vec::new(),
        max_t: Vec::new(),
        postings: Postings::default(),
    };
    for b in batches {
        let labels = column::<BinaryArray>(part, b, "labels")?;
        let first = column::<UInt64Array>(part, b, "first_row")?;
        let rows = column::<UInt32Array>(part, b, "rows")?;
        let min_t = column::<Int64Array>(part, b, "min_t")?;
        let max_t = column::<Int64Array>(part, b, "max_t")?;
        for r in 0..b.num_rows() {
            let l = Labels::decode(&mut Dec::new(labels.value(r), "series labels"))?;
            idx.postings.add(idx.labels.len() as u32, &l);
            idx.labels.push(l);
            idx.first_row.push(first.value(r));
            idx.rows.push(rows.value(r));
            idx.min_t.push(min_t.value(r));
            idx.max_t.push(max_t.value(r));
        }
    }
    Ok(idx)
}

/// The columns of one decoded batch: `t`, and `v`, `vi`, `h` and `st` if present.
type SampleColumns<'a> = (
    &'a Int64Array,
    Option<&'a Float64Array>,
    Option<&'a Int64Array>,
    Option<&'a BinaryArray>,
    Option<&'a Int64Array>,
);

/// Walks the rows of decoded sample batches in order.
struct RowCursor<'a> {
    part: &'a str,
    cols: Vec<SampleColumns<'a>>,
    batch: usize,
    row: usize,
}

impl<'a> RowCursor<'a> {
    fn new(part: &'a str, batches: &'a [RecordBatch]) -> Result<Self> {
        let cols = batches
            .iter()
            .map(|b| {
                Ok((
                    column::<Int64Array>(part, b, "t")?,
                    // A value column is left out of a read where it only holds nulls;
                    // parts without histograms or start times have no such columns.
                    optional_column::<Float64Array>(part, b, "v")?,
                    optional_column::<Int64Array>(part, b, "vi")?,
                    optional_column::<BinaryArray>(part, b, "h")?,
                    optional_column::<Int64Array>(part, b, "st")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RowCursor {
            part,
            cols,
            batch: 0,
            row: 0,
        })
    }

    /// Adds the samples in `[start, end]` of the next `n` rows to `s`; gives the times
    /// of the first and the last of those rows.
    fn take(
        &mut self,
        mut n: usize,
        s: &mut Series,
        start: i64,
        end: i64,
    ) -> Result<Option<(i64, i64)>> {
        let mut seen: Option<(i64, i64)> = None;
        s.samples.reserve(n);
        while n > 0 {
            let Some((t, v, vi, h, st)) = self.cols.get(self.batch) else {
                return Err(StorageError::part(
                    self.part,
                    "read samples",
                    "fewer rows than the series table says",
                ));
            };
            if self.row >= t.len() {
                self.batch += 1;
                self.row = 0;
                continue;
            }
            let r = self.row;
            let ts = t.value(r);
            seen = Some((seen.map_or(ts, |x| x.0), ts));
            if ts >= start && ts <= end {
                // One start time per time, should a float and a histogram share it.
                if let Some(st) = st.filter(|st| st.is_valid(r))
                    && s.starts.last().is_none_or(|x| x.t != ts)
                {
                    s.starts.push(StartTime {
                        t: ts,
                        st: st.value(r),
                    });
                }
                if let Some(v) = v.filter(|v| v.is_valid(r)) {
                    s.samples.push(Sample {
                        t: ts,
                        v: v.value(r),
                    });
                } else if let Some(vi) = vi.filter(|vi| vi.is_valid(r)) {
                    s.samples.push(Sample {
                        t: ts,
                        v: vi.value(r) as f64,
                    });
                } else if let Some(h) = h.filter(|h| h.is_valid(r)) {
                    s.histograms.push(HistogramSample {
                        t: ts,
                        h: Histogram::from_bytes(h.value(r))?,
                    });
                }
            }
            self.row += 1;
            n -= 1;
        }
        Ok(seen)
    }
}

pub(crate) fn parse_metadata(extra: &serde_json::Value) -> Vec<MetricMetadata> {
    extra
        .get("metadata")
        .and_then(|m| m.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|m| {
                    Some(MetricMetadata {
                        metric: m.get("metric")?.as_str()?.to_string(),
                        kind: MetricKind::parse(m.get("type")?.as_str()?),
                        unit: m.get("unit")?.as_str()?.to_string(),
                        help: m.get("help")?.as_str()?.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}
