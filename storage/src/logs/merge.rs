//! Merging logs parts as sorted files: every `records.parquet` is sorted by stream (in
//! label order) then time, so a k-way merge writes the output a batch at a time instead
//! of decoding every record of the inputs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::Schema;
use bytes::Bytes;

use super::fts::FtsBuilder;
use super::part::{
    RECORDS_FILE, STREAMS_FILE, StreamCols, build_stream_index, ns_to_ms_floor, part_data,
    records_props, records_schema,
};
use crate::error::{Result, StorageError};
use crate::model::{Attributes, Labels};
use crate::part::{KWay, MergeOutput, MergeSource, PartData, Writer, decode_all, window_start};

/// Rows taken from the inputs between two writes.
const MERGE_BATCH_ROWS: usize = 8192;

/// One input part: its streams file and where to read its records.
pub(crate) struct LogsSource {
    pub(crate) part: String,
    pub(crate) streams: Bytes,
    pub(crate) records: MergeSource,
}

/// A stream of an output: its rank, first row, rows and time range.
struct OutStream {
    rank: u32,
    first: u64,
    rows: u32,
    min_ns: i64,
    max_ns: i64,
}

/// One output part: the records of one time window.
struct Output {
    schema: Arc<Schema>,
    writer: Writer,
    fts: FtsBuilder,
    streams: Vec<OutStream>,
    /// `(pool slot, row)` of the rows not written yet, and their output stream.
    picks: Vec<(usize, usize)>,
    pick_streams: Vec<u32>,
    /// Rows taken (written or picked).
    rows: u64,
    min_ns: i64,
    max_ns: i64,
}

impl MergeOutput<(u32, i64)> for Output {
    fn take(&mut self, &(rank, t): &(u32, i64), at: (usize, usize)) {
        if self.streams.last().is_none_or(|s| s.rank != rank) {
            self.streams.push(OutStream {
                rank,
                first: self.rows,
                rows: 0,
                min_ns: t,
                max_ns: t,
            });
        }
        if let Some(s) = self.streams.last_mut() {
            s.rows += 1;
            s.min_ns = s.min_ns.min(t);
            s.max_ns = s.max_ns.max(t);
        }
        self.picks.push(at);
        self.pick_streams.push(self.streams.len() as u32 - 1);
        self.rows += 1;
        self.min_ns = self.min_ns.min(t);
        self.max_ns = self.max_ns.max(t);
    }

    /// Writes the picked rows with their output stream numbers, and indexes their lines.
    fn write(&mut self, merge: &KWay<'_, (u32, i64)>) -> Result<()> {
        if self.picks.is_empty() {
            return Ok(());
        }
        let err = |e| StorageError::part("logs merge", "merge", e);
        let mut columns = merge.take(&self.picks)?;
        let stream = self.schema.index_of("stream").map_err(err)?;
        columns[stream] =
            Arc::new(UInt32Array::from(std::mem::take(&mut self.pick_streams))) as ArrayRef;
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(err)?;
        let lines = batch
            .column(self.schema.index_of("line").map_err(err)?)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| StorageError::part("logs merge", "merge", "line is not text"))?;
        // The picked rows are the last ones taken.
        let first = self.rows - lines.len() as u64;
        for r in 0..lines.len() {
            self.fts.add(first + r as u64, lines.value(r))?;
        }
        self.writer.write(&batch)?;
        self.picks.clear();
        Ok(())
    }
}

impl Output {
    fn finish(self, order: &[(&Labels, &Arc<Attributes>)]) -> Result<PartData> {
        let mut cols = StreamCols::default();
        for s in &self.streams {
            let (labels, resource) = order[s.rank as usize];
            cols.push(labels, resource, s.first, s.rows, s.min_ns, s.max_ns);
        }
        let files = vec![
            (STREAMS_FILE.to_string(), cols.finish("logs merge")?),
            (RECORDS_FILE.to_string(), self.writer.finish()?),
        ];
        part_data(
            files,
            self.fts,
            self.rows,
            (self.min_ns, self.max_ns),
            self.streams.len(),
        )
    }
}

/// Merges logs parts into one part per time window of `window_ms`, reading a batch of
/// each input at a time. Streams are matched by label set (the first input's resource
/// is kept) and a stream's records come in time order, those with equal times in the
/// order of the inputs: the parts `merge_streams` and `split_by_window` would give.
/// `None` when a records file's columns are not this version's or a file is not sorted,
/// to be merged record by record.
pub(crate) fn merge_sorted(
    sources: Vec<LogsSource>,
    window_ms: i64,
    staging: &Path,
) -> Result<Option<Vec<PartData>>> {
    let mut indexes = Vec::with_capacity(sources.len());
    let mut files = Vec::with_capacity(sources.len());
    for s in sources {
        indexes.push(build_stream_index(
            &s.part,
            &decode_all(&s.part, s.streams)?,
        )?);
        files.push((s.part, s.records));
    }
    // Every label set in label order; an input's stream numbers map to ranks in it.
    let mut all: BTreeMap<&Labels, &Arc<Attributes>> = BTreeMap::new();
    for idx in &indexes {
        for (l, r) in idx.labels.iter().zip(&idx.resource) {
            all.entry(l.as_ref()).or_insert(r);
        }
    }
    let order: Vec<(&Labels, &Arc<Attributes>)> = all.into_iter().collect();
    let ranks: Vec<Vec<u32>> = indexes
        .iter()
        .map(|idx| {
            idx.labels
                .iter()
                .map(|l| order.partition_point(|(o, _)| *o < l.as_ref()) as u32)
                .collect()
        })
        .collect();
    let schema = records_schema();
    let err = |e| StorageError::part("logs merge", "merge", e);
    let (stream, time) = (
        schema.index_of("stream").map_err(err)?,
        schema.index_of("time_ns").map_err(err)?,
    );
    let ranks = &ranks;
    let key = move |b: &RecordBatch, row: usize, input: usize| {
        let s = b.column(stream).as_any().downcast_ref::<UInt32Array>()?;
        let t = b.column(time).as_any().downcast_ref::<Int64Array>()?;
        let rank = *ranks.get(input)?.get(s.value(row) as usize)?;
        Some((rank, t.value(row)))
    };
    let Some(merge) = KWay::open(files, &schema, MERGE_BATCH_ROWS, Box::new(key))? else {
        return Ok(None);
    };
    let outputs = merge.run(
        MERGE_BATCH_ROWS,
        |(_, t)| window_start(ns_to_ms_floor(*t), window_ms),
        || {
            Ok(Output {
                schema: schema.clone(),
                writer: Writer::new("logs merge", schema.clone(), records_props())?,
                fts: FtsBuilder::new("logs merge", staging)?,
                streams: Vec::new(),
                picks: Vec::new(),
                pick_streams: Vec::new(),
                rows: 0,
                min_ns: i64::MAX,
                max_ns: i64::MIN,
            })
        },
    )?;
    let Some(outputs) = outputs else {
        return Ok(None);
    };
    outputs
        .into_values()
        .map(|o| o.finish(&order))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Direction, LogFields, LogQuery};
    use crate::logs::part::{LogsPart, StreamRef, encode_part, merge_streams, split_by_window};
    use crate::model::{AnyValue, LogRecord, LogStream};
    use crate::part::{PartStore, Publish};
    use crate::telemetry::Signal;

    fn stream(svc: &str, host: &str, times: impl Iterator<Item = i64>, tag: &str) -> LogStream {
        LogStream {
            labels: Labels::from_pairs([("service_name", svc)]),
            resource: Arc::new(Attributes(vec![(
                "host.name".into(),
                AnyValue::String(host.into()),
            )])),
            records: times
                .map(|t| LogRecord {
                    time_ns: t,
                    body: AnyValue::String(format!("{tag} line at {t}")),
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn encode(streams: &[LogStream], staging: &Path) -> PartData {
        let refs: Vec<StreamRef<'_>> = streams.iter().map(StreamRef::of).collect();
        encode_part(&refs, staging).unwrap()
    }

    async fn read(store: &PartStore, data: PartData) -> (LogsPart, Vec<LogStream>) {
        let meta = store
            .publish(Signal::Logs, data, Publish::default())
            .await
            .unwrap();
        let part = LogsPart::open(meta, store).unwrap();
        let streams = part.read_all(store).await.unwrap();
        (part, streams)
    }

    #[tokio::test]
    async fn sorted_parts_merge_as_their_records_would() {
        let ms = 1_000_000;
        // Streams in both inputs (one with another resource in the second), one in
        // each only; more rows than a merge batch; equal times across the inputs; times
        // over four windows of 3 ms.
        let a = vec![
            stream("api", "a", (0..9000).map(|i| i * 700), "a"),
            stream("web", "a", (0..50).map(|i| i * ms / 10), "a"),
        ];
        let b = vec![
            stream("api", "b", (0..3000).map(|i| i * 1400), "b"),
            stream("db", "b", (0..10).map(|i| i * ms), "b"),
        ];
        let dir = tempfile::tempdir().unwrap();
        let store = PartStore::in_memory(dir.path().to_path_buf());
        let (pa, pb) = (encode(&a, dir.path()), encode(&b, dir.path()));
        let on_disk = dir.path().join("b.parquet");
        std::fs::write(&on_disk, &pb.files[1].1).unwrap();
        assert_eq!(pb.files[1].0, RECORDS_FILE);
        for window_ms in [3, 3_600_000] {
            let sources = vec![
                LogsSource {
                    part: "a".into(),
                    streams: pa.files[0].1.clone(),
                    records: MergeSource::Bytes(pa.files[1].1.clone()),
                },
                LogsSource {
                    part: "b".into(),
                    streams: pb.files[0].1.clone(),
                    records: MergeSource::Path(on_disk.clone()),
                },
            ];
            let merged = merge_sorted(sources, window_ms, dir.path())
                .unwrap()
                .unwrap();
            let expected: Vec<PartData> =
                split_by_window(merge_streams(vec![a.clone(), b.clone()]), window_ms)
                    .into_values()
                    .map(|mut streams| {
                        streams.sort_by(|x, y| x.labels.cmp(&y.labels));
                        encode(&streams, dir.path())
                    })
                    .collect();
            assert_eq!(merged.len(), expected.len());
            assert_eq!(merged.len(), if window_ms == 3 { 4 } else { 1 });
            for (got, want) in merged.into_iter().zip(expected) {
                assert_eq!(
                    (got.rows, got.min_time_ms, got.max_time_ms, &got.extra),
                    (want.rows, want.min_time_ms, want.max_time_ms, &want.extra)
                );
                // The streams file (labels, resource, rows and time range per stream).
                assert_eq!(got.files[0], want.files[0]);
                let (part, got) = read(&store, got).await;
                let (_, want) = read(&store, want).await;
                assert_eq!(got, want);
                // The merged part's full-text index finds lines of both inputs.
                let q = LogQuery {
                    matchers: Vec::new(),
                    start_ns: 0,
                    end_ns: i64::MAX,
                    contains: vec!["b line".into()],
                    trace_id: None,
                    fields: LogFields::Lines,
                    direction: Direction::Forward,
                    limit: 0,
                };
                let found = part.query(&q).await.unwrap().len();
                let lines = |s: &[LogStream]| {
                    s.iter()
                        .flat_map(|s| &s.records)
                        .filter(|r| r.line().contains("b line"))
                        .count()
                };
                assert_eq!(found, lines(&got));
                assert!(found > 0);
            }
        }
    }
}
