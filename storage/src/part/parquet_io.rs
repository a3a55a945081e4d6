//! Parquet encoding of part files and their reading through the object store,
//! with the file footer and page index cached per open file.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, DictionaryArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int32Type, Schema};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStream};
use parquet::arrow::{ArrowWriter, ParquetRecordBatchStreamBuilder, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::file::statistics::Statistics;

use super::PartMeta;
use super::store::PartStore;
use crate::error::{Result, StorageError};
use crate::telemetry::Signal;

/// Writer settings shared by every part file: zstd, page statistics (for the page
/// index), and the column-specific choices made by `configure`.
pub(crate) fn writer_props(
    configure: impl FnOnce(WriterPropertiesBuilder) -> WriterPropertiesBuilder,
) -> WriterProperties {
    let b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_data_page_row_count_limit(8192)
        .set_max_row_group_row_count(Some(1 << 20));
    configure(b).build()
}

pub(crate) fn encode(part: &str, batch: &RecordBatch, props: WriterProperties) -> Result<Bytes> {
    let mut w = Writer::new(part, batch.schema(), props)?;
    w.write(batch)?;
    w.finish()
}

/// A Parquet file built in memory from several batches.
pub(crate) struct Writer {
    part: String,
    w: ArrowWriter<Vec<u8>>,
}

impl Writer {
    pub(crate) fn new(
        part: &str,
        schema: arrow::datatypes::SchemaRef,
        props: WriterProperties,
    ) -> Result<Writer> {
        let w = ArrowWriter::try_new(Vec::with_capacity(1 << 16), schema, Some(props))
            .map_err(|e| StorageError::part(part, "encode parquet", e))?;
        Ok(Writer {
            part: part.to_string(),
            w,
        })
    }

    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.w
            .write(batch)
            .map_err(|e| StorageError::part(&self.part, "encode parquet", e))
    }

    pub(crate) fn finish(self) -> Result<Bytes> {
        let buf = self
            .w
            .into_inner()
            .map_err(|e| StorageError::part(&self.part, "encode parquet", e))?;
        Ok(Bytes::from(buf))
    }
}

/// Decodes a whole file held in memory (compaction reads parts this way).
pub(crate) fn decode_all(part: &str, bytes: Bytes) -> Result<Vec<RecordBatch>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.with_batch_size(65536).build())
        .map_err(|e| StorageError::part(part, "decode parquet", e))?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| StorageError::part(part, "decode parquet", e))
}

/// One Parquet file of a part, read by ranges through the object store.
pub(crate) struct ParquetFile {
    part: String,
    store: Arc<dyn ObjectStore>,
    path: ObjPath,
    /// The file's path when parts are on the local filesystem: small reads go to it
    /// directly (see `ObjectReader`).
    local: Option<Arc<Path>>,
    size: u64,
    meta: tokio::sync::OnceCell<ArrowReaderMetadata>,
}

impl ParquetFile {
    /// File `name` of the part `meta` describes.
    pub(crate) fn open(
        store: &PartStore,
        signal: Signal,
        meta: &PartMeta,
        name: &str,
    ) -> Result<Self> {
        let size = meta.file(name)?.size;
        Ok(ParquetFile {
            part: meta.id.clone(),
            store: store.object_store(),
            path: PartStore::path(signal, &meta.id, name),
            local: store.local_path(signal, &meta.id, name).map(Arc::from),
            size,
            meta: tokio::sync::OnceCell::new(),
        })
    }

    fn reader(&self) -> ObjectReader {
        ObjectReader {
            store: self.store.clone(),
            path: self.path.clone(),
            local: self.local.clone(),
            size: self.size,
        }
    }

    pub(crate) async fn metadata(&self) -> Result<ArrowReaderMetadata> {
        self.meta
            .get_or_try_init(|| async {
                let mut r = self.reader();
                ArrowReaderMetadata::load_async(
                    &mut r,
                    ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional),
                )
                .await
                .map_err(|e| StorageError::part(&self.part, "read parquet footer", e))
            })
            .await
            .cloned()
    }

    /// Reads `columns` of the selected row groups and rows.
    pub(crate) async fn read(
        &self,
        columns: &[&str],
        row_groups: Option<Vec<usize>>,
        selection: Option<RowSelection>,
    ) -> Result<Vec<RecordBatch>> {
        self.stream(columns, row_groups, selection)
            .await?
            .try_collect()
            .await
            .map_err(|e| StorageError::part(&self.part, "read parquet", e))
    }

    /// `read` as a stream of batches of up to 65,536 rows, for a caller that needs one
    /// batch at a time.
    pub(crate) async fn stream(
        &self,
        columns: &[&str],
        row_groups: Option<Vec<usize>>,
        selection: Option<RowSelection>,
    ) -> Result<ParquetRecordBatchStream<ObjectReader>> {
        let meta = self.metadata().await?;
        let mask = ProjectionMask::columns(meta.parquet_schema(), columns.iter().copied());
        let mut b = ParquetRecordBatchStreamBuilder::new_with_metadata(self.reader(), meta)
            .with_projection(mask)
            .with_batch_size(65536);
        if let Some(rg) = row_groups {
            b = b.with_row_groups(rg);
        }
        if let Some(sel) = selection {
            b = b.with_row_selection(sel);
        }
        b.build()
            .map_err(|e| StorageError::part(&self.part, "read parquet", e))
    }

    /// File-wide rows, as sorted and merged ranges, of the pages whose page statistics for
    /// the int64 `column` overlap `[lo, hi)`, or `None` when the file has no page index
    /// for that column (then any row may hold such a value).
    pub(crate) async fn pages_overlapping(
        &self,
        column: &str,
        lo: i64,
        hi: i64,
    ) -> Result<Option<Vec<Range<usize>>>> {
        let meta = self.metadata().await?;
        // Values without statistics (all null, or none written) may overlap.
        let overlaps = |min: Option<&i64>, max: Option<&i64>| match (min, max) {
            (Some(&min), Some(&max)) => min < hi && max >= lo,
            _ => true,
        };
        let group = |stats: &Statistics| match stats {
            Statistics::Int64(s) => overlaps(s.min_opt(), s.max_opt()),
            _ => true,
        };
        Ok(pages_where(
            meta.metadata(),
            column,
            group,
            |index, p, _| {
                let ColumnIndexMetaData::INT64(stats) = index else {
                    return None;
                };
                Some(overlaps(stats.min_value(p), stats.max_value(p)))
            },
        ))
    }

    /// File-wide rows, as sorted and merged ranges, of the pages whose page statistics for
    /// the fixed-length byte array `column` may hold `value`, or `None` when the file has
    /// no page index for that column.
    pub(crate) async fn pages_holding(
        &self,
        column: &str,
        value: &[u8],
    ) -> Result<Option<Vec<Range<usize>>>> {
        let meta = self.metadata().await?;
        let group = |stats: &Statistics| may_hold(stats, value);
        Ok(pages_where(
            meta.metadata(),
            column,
            group,
            |index, p, _| {
                let ColumnIndexMetaData::FIXED_LEN_BYTE_ARRAY(stats) = index else {
                    return None;
                };
                Some(in_range(stats.min_value(p), stats.max_value(p), value))
            },
        ))
    }

    /// File-wide rows, as sorted and merged ranges, of the pages of `column` that hold
    /// at least one value (fewer nulls than rows), none if the file lacks the column, or
    /// `None` when the file has no page index with null counts for that column or the
    /// column repeats (a list's nulls are not rows).
    pub(crate) async fn pages_with_values(
        &self,
        column: &str,
    ) -> Result<Option<Vec<Range<usize>>>> {
        let meta = self.metadata().await?;
        let columns = meta.metadata().file_metadata().schema_descr().columns();
        match columns.iter().find(|c| c.name() == column) {
            None => return Ok(Some(Vec::new())),
            // Null counts count rows only in a column that does not repeat.
            Some(c) if c.max_rep_level() > 0 => return Ok(None),
            Some(_) => {}
        }
        Ok(pages_where(
            meta.metadata(),
            column,
            |_| true,
            |index, p, rows| {
                let nulls = *index.null_counts()?.get(p)?;
                Some(usize::try_from(nulls).map_or(true, |n| n < rows))
            },
        ))
    }

    /// File rows, as sorted and merged ranges, where the string column `column` equals
    /// `value`. The column is decoded as dictionary keys, so each batch compares only
    /// its distinct values as text; a file without that string column holds no such row.
    pub(crate) async fn rows_equal(&self, column: &str, value: &str) -> Result<Vec<Range<usize>>> {
        let meta = self.metadata().await?;
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let schema = meta.schema();
        let Some(pos) = schema
            .fields()
            .iter()
            .position(|f| f.name() == column && f.data_type() == &DataType::Utf8)
        else {
            return Ok(Vec::new());
        };
        let fields: Vec<Arc<Field>> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| match i == pos {
                true => Arc::new(f.as_ref().clone().with_data_type(dict.clone())),
                false => f.clone(),
            })
            .collect();
        let err = |e: ParquetError| StorageError::part(&self.part, "read parquet", e);
        let keyed = ArrowReaderMetadata::try_new(
            meta.metadata().clone(),
            ArrowReaderOptions::new().with_schema(Arc::new(Schema::new(fields))),
        )
        .map_err(err)?;
        let mask = ProjectionMask::columns(meta.parquet_schema(), [column]);
        let mut stream = ParquetRecordBatchStreamBuilder::new_with_metadata(self.reader(), keyed)
            .with_projection(mask)
            .with_batch_size(65536)
            .build()
            .map_err(err)?;
        let mut out: Vec<Range<usize>> = Vec::new();
        let mut base = 0usize;
        while let Some(batch) = stream.try_next().await.map_err(err)? {
            let keys = batch
                .column(0)
                .as_any()
                .downcast_ref::<DictionaryArray<Int32Type>>()
                .ok_or_else(|| {
                    StorageError::part(&self.part, "read parquet", "not dictionary keys")
                })?;
            let values = keys
                .values()
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| StorageError::part(&self.part, "read parquet", "not text"))?;
            let hit: Vec<bool> = (0..values.len())
                .map(|i| values.is_valid(i) && values.value(i) == value)
                .collect();
            for (r, k) in keys.keys().iter().enumerate() {
                let yes =
                    k.is_some_and(|k| usize::try_from(k).is_ok_and(|k| hit.get(k) == Some(&true)));
                if yes {
                    push_range(&mut out, base + r..base + r + 1);
                }
            }
            base += batch.num_rows();
        }
        Ok(out)
    }

    /// Each column's name, codec and encodings in the first row group.
    #[cfg(test)]
    pub(crate) async fn codecs(
        &self,
    ) -> Result<Vec<(String, Compression, Vec<parquet::basic::Encoding>)>> {
        let meta = self.metadata().await?;
        let Some(rg) = meta.metadata().row_groups().first() else {
            return Ok(Vec::new());
        };
        Ok(rg
            .columns()
            .iter()
            .map(|c| {
                let encodings = c.encodings().collect();
                (c.column_path().string(), c.compression(), encodings)
            })
            .collect())
    }

    /// A builder positioned on this file, for callers that need bloom filters or statistics.
    pub(crate) async fn builder(&self) -> Result<ParquetRecordBatchStreamBuilder<ObjectReader>> {
        let meta = self.metadata().await?;
        Ok(ParquetRecordBatchStreamBuilder::new_with_metadata(
            self.reader(),
            meta,
        ))
    }
}

/// Whether byte-array min/max statistics leave room for `value` (no statistics: yes).
fn in_range(min: Option<&[u8]>, max: Option<&[u8]>, value: &[u8]) -> bool {
    match (min, max) {
        (Some(min), Some(max)) => min <= value && value <= max,
        _ => true,
    }
}

/// Whether a column chunk's statistics may hold the byte-array `value`.
pub(crate) fn may_hold(stats: &Statistics, value: &[u8]) -> bool {
    in_range(stats.min_bytes_opt(), stats.max_bytes_opt(), value)
}

/// Appends `r` to sorted ranges `out`, joined to the last one when they touch.
pub(crate) fn push_range(out: &mut Vec<Range<usize>>, r: Range<usize>) {
    match out.last_mut() {
        Some(last) if last.end == r.start => last.end = r.end,
        _ => out.push(r),
    }
}

/// Whether any row of `rows` is in one of the sorted, disjoint ranges `pages`.
pub(crate) fn any_row_in(pages: &[Range<usize>], rows: &[Range<usize>]) -> bool {
    rows.iter().filter(|r| r.start < r.end).any(|r| {
        let i = pages.partition_point(|p| p.end <= r.start);
        pages.get(i).is_some_and(|p| p.start < r.end)
    })
}

/// File-wide rows, as sorted and merged ranges, of the pages of `column` that `keep`
/// (given the column's index in a row group, a page number and the page's row count)
/// keeps, in the row groups whose column statistics `group` keeps (a row group without
/// statistics is looked into); `None` when the file has no page index for the column or `keep` cannot read it.
fn pages_where(
    meta: &ParquetMetaData,
    column: &str,
    group: impl Fn(&Statistics) -> bool,
    keep: impl Fn(&ColumnIndexMetaData, usize, usize) -> Option<bool>,
) -> Option<Vec<Range<usize>>> {
    let col = meta
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.name() == column)?;
    let index = meta.page_index()?;
    let mut out: Vec<Range<usize>> = Vec::new();
    let mut base = 0usize;
    for (rg, row_group) in meta.row_groups().iter().enumerate() {
        let rows = usize::try_from(row_group.num_rows()).ok()?;
        if row_group
            .column(col)
            .statistics()
            .is_some_and(|s| !group(s))
        {
            base += rows;
            continue;
        }
        let stats = index.column_index(rg, col)?;
        let pages = index.offset_index(rg, col)?.page_locations();
        for (p, page) in pages.iter().enumerate() {
            let first = usize::try_from(page.first_row_index).ok()?;
            let end = match pages.get(p + 1) {
                Some(next) => usize::try_from(next.first_row_index).ok()?,
                None => rows,
            };
            if first < end && keep(stats, p, end - first)? {
                push_range(&mut out, base + first..base + end);
            }
        }
        base += rows;
    }
    Some(out)
}

/// A column that a file may lack (written before the column existed, or left out as
/// all nulls); one of another type is an error.
pub(crate) fn optional_column<'a, T: 'static>(
    part: &str,
    batch: &'a RecordBatch,
    name: &str,
) -> Result<Option<&'a T>> {
    match batch.column_by_name(name) {
        None => Ok(None),
        Some(_) => column::<T>(part, batch, name).map(Some),
    }
}

/// Typed access to the columns of a decoded batch, with errors that name the column.
pub(crate) fn column<'a, T: 'static>(
    part: &str,
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| {
            StorageError::part(
                part,
                "decode parquet",
                format!("column {name} missing or of the wrong type"),
            )
        })
}

/// Reads byte ranges of one object for the Parquet reader.
///
/// On the local filesystem, a request of at most `DIRECT_READ_BYTES` is read in place
/// with positioned reads: the object store hands every request to a blocking thread
/// and opens the file there, and that round trip was a large part of a small query's
/// time. Larger requests still go through the object store, so that a read from a cold
/// disk holds up no worker thread for long.
pub(crate) struct ObjectReader {
    store: Arc<dyn ObjectStore>,
    path: ObjPath,
    local: Option<Arc<Path>>,
    size: u64,
}

/// The largest request `ObjectReader` reads in place, in bytes and in ranges (each
/// range one read that a cold disk may make wait).
const DIRECT_READ_BYTES: u64 = 1 << 20;
const DIRECT_READ_RANGES: usize = 64;

fn pq_err(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl ObjectReader {
    /// The local file to read `ranges` from in place: if they are few, small enough
    /// and inside the file (anything else goes to the object store, which reports it).
    fn direct(&self, ranges: &[Range<u64>]) -> Option<&Path> {
        let valid = ranges
            .iter()
            .all(|r| r.start <= r.end && r.end <= self.size);
        let bytes = ranges
            .iter()
            .fold(0u64, |n, r| n.saturating_add(r.end.saturating_sub(r.start)));
        self.local
            .as_deref()
            .filter(|_| valid && ranges.len() <= DIRECT_READ_RANGES && bytes <= DIRECT_READ_BYTES)
    }
}

/// `ranges` of the file at `path`, by positioned reads.
fn read_ranges(path: &Path, ranges: &[Range<u64>]) -> parquet::errors::Result<Vec<Bytes>> {
    use std::os::unix::fs::FileExt;
    let io_err =
        |e: std::io::Error| ParquetError::External(format!("read {}: {e}", path.display()).into());
    let file = std::fs::File::open(path).map_err(io_err)?;
    ranges
        .iter()
        .map(|r| {
            let len = usize::try_from(r.end.saturating_sub(r.start))
                .map_err(|_| ParquetError::General("range too large".into()))?;
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, r.start).map_err(io_err)?;
            Ok(Bytes::from(buf))
        })
        .collect()
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            if let Some(path) = self.direct(std::slice::from_ref(&range)) {
                return read_ranges(path, std::slice::from_ref(&range))
                    .map(|mut v| v.pop().unwrap_or_default());
            }
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(pq_err)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            if let Some(path) = self.direct(&ranges) {
                return read_ranges(path, &ranges);
            }
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(pq_err)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let m = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(m))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small requests are read in place and large ones through the object store; both
    /// give the file's bytes, and a missing file is an error.
    #[tokio::test]
    async fn ranges_read_in_place_or_through_the_store_give_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3 * DIRECT_READ_BYTES)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let rel = "parts/metrics/p1/samples.parquet";
        std::fs::create_dir_all(dir.path().join("parts/metrics/p1")).unwrap();
        std::fs::write(dir.path().join(rel), &data).unwrap();
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let mut r = ObjectReader {
            store: Arc::new(store),
            path: ObjPath::from(rel),
            local: Some(Arc::from(dir.path().join(rel))),
            size: data.len() as u64,
        };
        let small = vec![
            5..105,
            4096..4200,
            3 * DIRECT_READ_BYTES - 10..3 * DIRECT_READ_BYTES,
        ];
        assert!(r.direct(&small).is_some());
        let large = vec![
            0..2 * DIRECT_READ_BYTES,
            2 * DIRECT_READ_BYTES + 1..3 * DIRECT_READ_BYTES,
        ];
        assert!(r.direct(&large).is_none());
        let many: Vec<Range<u64>> = (0..=DIRECT_READ_RANGES as u64).map(|i| i..i + 1).collect();
        assert!(r.direct(&many).is_none());
        let (hi, lo) = (10, 5);
        assert!(r.direct(&[0..1, hi..lo]).is_none());
        assert!(r.direct(&[0..u64::MAX, 1..u64::MAX]).is_none());
        for ranges in [small, large, many] {
            let got = r.get_byte_ranges(ranges.clone()).await.unwrap();
            for (range, bytes) in ranges.iter().zip(got) {
                assert_eq!(&bytes[..], &data[range.start as usize..range.end as usize]);
            }
        }
        let one = r.get_bytes(10..20).await.unwrap();
        assert_eq!(&one[..], &data[10..20]);
        // Past the end (left to the store), and a file that is gone: errors.
        assert!(
            r.get_byte_ranges(vec![0..10, data.len() as u64 - 5..data.len() as u64 + 5])
                .await
                .is_err()
        );
        std::fs::remove_file(dir.path().join(rel)).unwrap();
        assert!(r.get_bytes(10..20).await.is_err());
        assert!(r.get_bytes(0..2 * DIRECT_READ_BYTES).await.is_err());
    }
}
