//! A k-way merge of Parquet files that are each sorted by a key, batch by batch: merges
//! hold one batch of each input (and the batches rows were taken from since the last
//! write) instead of every input decoded into records.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::compute::interleave;
use arrow::datatypes::Schema;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::reader::ChunkReader;

use crate::error::{Result, StorageError};

/// Where a merge reads an input file from.
pub(crate) enum MergeSource {
    /// The file on the local disk, read a batch at a time.
    Path(PathBuf),
    /// The whole file, from another object store.
    Bytes(Bytes),
}

/// One output of a merge: the rows of one time window.
pub(crate) trait MergeOutput<K: Ord> {
    /// Takes row `at` (`(pool slot, row)`), whose key is `key`.
    fn take(&mut self, key: &K, at: (usize, usize));
    /// Writes (or copies out of `merge`'s pool) every row taken since the last write:
    /// after it, `run` forgets the pool's batches those rows were taken from.
    fn write(&mut self, merge: &KWay<'_, K>) -> Result<()>;
}

/// The sort key of row `row` of `batch` from input `input`.
pub(crate) type KeyFn<'a, K> = dyn Fn(&RecordBatch, usize, usize) -> Option<K> + 'a;

/// What `KWay::next_row` found.
enum Next<K> {
    Row(K, usize, usize),
    End,
    Unsorted,
}

struct Input {
    part: String,
    reader: ParquetRecordBatchReader,
    batch: Option<RecordBatch>,
    /// Where `batch` is in the pool.
    slot: usize,
    row: usize,
}

/// The merge: yields `(key, pool slot, row)` in key order; rows with equal keys come in
/// the order of the inputs, then of their rows (as a stable sort of the inputs'
/// concatenation would give them).
pub(crate) struct KWay<'a, K: Ord> {
    inputs: Vec<Input>,
    pool: Vec<RecordBatch>,
    heap: BinaryHeap<Reverse<(K, usize)>>,
    key: Box<KeyFn<'a, K>>,
}

fn open<T: ChunkReader + 'static>(
    part: &str,
    file: T,
    schema: &Schema,
    batch_rows: usize,
) -> Result<Option<ParquetRecordBatchReader>> {
    let b = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| StorageError::part(part, "merge", e))?;
    let same = b.schema().fields().len() == schema.fields().len()
        && b.schema()
            .fields()
            .iter()
            .zip(schema.fields())
            .all(|(a, w)| {
                a.name() == w.name()
                    && a.data_type() == w.data_type()
                    && a.is_nullable() == w.is_nullable()
            });
    if !same {
        return Ok(None);
    }
    b.with_batch_size(batch_rows)
        .build()
        .map(Some)
        .map_err(|e| StorageError::part(part, "merge", e))
}

impl<'a, K: Ord> KWay<'a, K> {
    /// Opens the inputs; `None` when a file's columns are not `schema`'s (a part of an
    /// older layout, to be merged another way).
    pub(crate) fn open(
        files: Vec<(String, MergeSource)>,
        schema: &Arc<Schema>,
        batch_rows: usize,
        key: Box<KeyFn<'a, K>>,
    ) -> Result<Option<KWay<'a, K>>> {
        let mut k = KWay {
            inputs: Vec::with_capacity(files.len()),
            pool: Vec::new(),
            heap: BinaryHeap::new(),
            key,
        };
        for (part, source) in files {
            let reader = match source {
                MergeSource::Path(path) => {
                    let f = std::fs::File::open(&path)
                        .map_err(|e| StorageError::part(&part, "merge", e))?;
                    open(&part, f, schema, batch_rows)?
                }
                MergeSource::Bytes(bytes) => open(&part, bytes, schema, batch_rows)?,
            };
            let Some(reader) = reader else {
                return Ok(None);
            };
            k.inputs.push(Input {
                part,
                reader,
                // Empty, so that the first advance reads the first batch.
                batch: Some(RecordBatch::new_empty(schema.clone())),
                slot: 0,
                row: 0,
            });
        }
        for i in 0..k.inputs.len() {
            k.advance(i, None)?;
        }
        Ok(Some(k))
    }

    /// Moves input `i` to its next row, reading its next batch at the end of one, and
    /// queues the row's key. Returns `false` when that key is below `after` (the key of
    /// the input's previous row): the input is not sorted.
    fn advance(&mut self, i: usize, after: Option<&K>) -> Result<bool> {
        let input = &mut self.inputs[i];
        input.row += 1;
        while input
            .batch
            .as_ref()
            .is_some_and(|b| input.row >= b.num_rows())
        {
            input.row = 0;
            input.batch = input
                .reader
                .next()
                .transpose()
                .map_err(|e| StorageError::part(&input.part, "merge", e))?;
            if let Some(b) = &input.batch {
                input.slot = self.pool.len();
                self.pool.push(b.clone());
            }
        }
        if let Some(b) = &input.batch {
            let key = (self.key)(b, input.row, i).ok_or_else(|| {
                StorageError::part(&input.part, "merge", "a row without its sort key")
            })?;
            if after.is_some_and(|a| key < *a) {
                return Ok(false);
            }
            self.heap.push(Reverse((key, i)));
        }
        Ok(true)
    }

    /// The next row in key order: its key, pool slot and row.
    fn next_row(&mut self) -> Result<Next<K>> {
        let Some(Reverse((key, i))) = self.heap.pop() else {
            return Ok(Next::End);
        };
        let at = (self.inputs[i].slot, self.inputs[i].row);
        if !self.advance(i, Some(&key))? {
            return Ok(Next::Unsorted);
        }
        Ok(Next::Row(key, at.0, at.1))
    }

    /// The columns of the rows `picks` (`(pool slot, row)`), in that order.
    pub(crate) fn take(&self, picks: &[(usize, usize)]) -> Result<Vec<ArrayRef>> {
        let Some(first) = self.pool.first() else {
            return Ok(Vec::new());
        };
        (0..first.num_columns())
            .map(|c| {
                let arrays: Vec<&dyn Array> =
                    self.pool.iter().map(|b| b.column(c).as_ref()).collect();
                interleave(&arrays, picks).map_err(|e| StorageError::part("merge", "take rows", e))
            })
            .collect()
    }

    /// Runs the merge to its end: every row goes to the output of the window `window`
    /// gives its key, made by `new` for the window's first row; every `batch_rows` rows
    /// and at the end, every output writes the rows it took. `None` when an input turns
    /// out not to be sorted (a damaged part), to be merged another way.
    pub(crate) fn run<O: MergeOutput<K>>(
        mut self,
        batch_rows: usize,
        window: impl Fn(&K) -> i64,
        mut new: impl FnMut() -> Result<O>,
    ) -> Result<Option<BTreeMap<i64, O>>> {
        let mut outputs: BTreeMap<i64, O> = BTreeMap::new();
        let mut pending = 0;
        loop {
            let (key, slot, row) = match self.next_row()? {
                Next::Row(key, slot, row) => (key, slot, row),
                Next::End => break,
                Next::Unsorted => return Ok(None),
            };
            let out = match outputs.entry(window(&key)) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => v.insert(new()?),
            };
            out.take(&key, (slot, row));
            pending += 1;
            if pending == batch_rows || self.heap.is_empty() {
                for out in outputs.values_mut() {
                    out.write(&self)?;
                }
                pending = 0;
                self.release();
            }
        }
        Ok(Some(outputs))
    }

    /// Forgets the batches no input is on any more; call when no taken row is pending
    /// (the slots of earlier rows are no longer valid).
    fn release(&mut self) {
        self.pool.clear();
        for input in self.inputs.iter_mut() {
            if let Some(b) = &input.batch {
                input.slot = self.pool.len();
                self.pool.push(b.clone());
            }
        }
    }
}
