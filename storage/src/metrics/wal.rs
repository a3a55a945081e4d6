//! Metrics WAL records. Each segment is self-contained: a series is defined (id → labels)
//! in a segment before the first samples that refer to it by id.

use std::collections::HashMap;

use crate::codec::{Dec, Enc};
use crate::error::{Result, StorageError};
use crate::model::{
    Exemplar, Histogram, HistogramSample, Labels, MetricKind, MetricMetadata, Sample, StartTime,
};
use crate::wal::FrameBuf;

use super::head::MetricsHead;

const SERIES: u8 = 1;
const SAMPLES: u8 = 2;
const HISTOGRAMS: u8 = 3;
const METADATA: u8 = 4;
const EXEMPLARS: u8 = 5;
/// All exemplars kept at a head cut, with their series' labels inline; replaces what
/// was replayed before it.
pub(crate) const EXEMPLAR_SNAPSHOT: u8 = 6;
/// Start times of samples written in the same write (series id, time, time − start).
const STARTS: u8 = 7;

/// The payload of an `EXEMPLAR_SNAPSHOT` record; `None` when there are no exemplars.
pub(crate) fn encode_exemplar_snapshot(buf: &super::exemplars::ExemplarBuffer) -> Option<Vec<u8>> {
    if buf.is_empty() {
        return None;
    }
    let mut e = Enc::default();
    e.uvarint(buf.len() as u64);
    for (series, x) in buf.iter() {
        series.encode(&mut e);
        e.ivarint(x.t);
        e.f64(x.value);
        x.labels.encode(&mut e);
    }
    Some(e.buf)
}

/// Points of one series resolved to its head index.
pub(crate) struct Resolved<'a> {
    pub(crate) idx: u32,
    pub(crate) labels: &'a Labels,
    pub(crate) samples: &'a [Sample],
    pub(crate) histograms: &'a [HistogramSample],
    pub(crate) exemplars: &'a [Exemplar],
    pub(crate) starts: &'a [StartTime],
}

/// Encodes the frames for one write into segment `seg`, defining series not yet defined there.
pub(crate) fn encode_write(
    head: &mut MetricsHead,
    seg: u64,
    items: &[Resolved<'_>],
    metadata: &[MetricMetadata],
    buf: &mut FrameBuf,
) {
    let mut defs = Enc::default();
    let mut n_defs = 0u64;
    for it in items {
        let hs = &mut head.series[it.idx as usize];
        if hs.wal_seg != seg {
            hs.wal_seg = seg;
            defs.uvarint(hs.id);
            it.labels.encode(&mut defs);
            n_defs += 1;
        }
    }
    if n_defs > 0 {
        let mut e = Enc::with_capacity(defs.buf.len() + 10);
        e.uvarint(n_defs);
        e.raw(&defs.buf);
        buf.push(SERIES, &e.buf);
    }
    let n_samples: usize = items.iter().map(|i| i.samples.len()).sum();
    if n_samples > 0 {
        let base = items
            .iter()
            .flat_map(|i| i.samples.first())
            .map(|s| s.t)
            .min()
            .unwrap_or(0);
        let mut e = Enc::with_capacity(n_samples * 14 + 16);
        e.ivarint(base);
        e.uvarint(n_samples as u64);
        for it in items {
            let id = head.series[it.idx as usize].id;
            for s in it.samples {
                e.uvarint(id);
                e.ivarint(s.t.wrapping_sub(base));
                e.f64(s.v);
            }
        }
        buf.push(SAMPLES, &e.buf);
    }
    push_per_series(
        head,
        items,
        HISTOGRAMS,
        |i| i.histograms,
        buf,
        |e, h| {
            e.ivarint(h.t);
            h.h.encode(e);
        },
    );
    push_per_series(
        head,
        items,
        STARTS,
        |i| i.starts,
        buf,
        |e, x| {
            e.ivarint(x.t);
            e.ivarint(x.t.wrapping_sub(x.st));
        },
    );
    push_per_series(
        head,
        items,
        EXEMPLARS,
        |i| i.exemplars,
        buf,
        |e, x| {
            e.ivarint(x.t);
            e.f64(x.value);
            x.labels.encode(e);
        },
    );
    if !metadata.is_empty() {
        let mut e = Enc::default();
        e.uvarint(metadata.len() as u64);
        for m in metadata {
            e.str(&m.metric);
            e.str(m.kind.as_str());
            e.str(&m.unit);
            e.str(&m.help);
        }
        buf.push(METADATA, &e.buf);
    }
}

/// Pushes a record of `kind` with every item's entries of `list`, each after its series
/// id; none when there are no entries.
fn push_per_series<'a, T: 'a>(
    head: &MetricsHead,
    items: &[Resolved<'a>],
    kind: u8,
    list: impl Fn(&Resolved<'a>) -> &'a [T],
    buf: &mut FrameBuf,
    write: impl Fn(&mut Enc, &T),
) {
    let n: usize = items.iter().map(|i| list(i).len()).sum();
    if n == 0 {
        return;
    }
    let mut e = Enc::default();
    e.uvarint(n as u64);
    for it in items {
        let id = head.series[it.idx as usize].id;
        for x in list(it) {
            e.uvarint(id);
            write(&mut e, x);
        }
    }
    buf.push(kind, &e.buf);
}

/// Replays metrics records into a head, tracking the series defined in each segment.
#[derive(Default)]
pub(crate) struct Replayer {
    seg: u64,
    refs: HashMap<u64, u32>,
    pub(crate) points: u64,
    /// Exemplars in log order, with the labels of their series; the newest
    /// `exemplar_cap` (the buffer's size) only.
    pub(crate) exemplars: std::collections::VecDeque<(Labels, Exemplar)>,
    exemplar_cap: usize,
}

impl Replayer {
    /// A replayer that keeps the newest `exemplar_cap` exemplars.
    pub(crate) fn new(exemplar_cap: usize) -> Replayer {
        Replayer {
            exemplar_cap,
            ..Default::default()
        }
    }

    fn keep_exemplar(&mut self, series: Labels, e: Exemplar) {
        if self.exemplars.len() >= self.exemplar_cap {
            self.exemplars.pop_front();
        }
        if self.exemplar_cap > 0 {
            self.exemplars.push_back((series, e));
        }
    }

    pub(crate) fn apply(
        &mut self,
        head: &mut MetricsHead,
        seg: u64,
        kind: u8,
        payload: &[u8],
    ) -> Result<()> {
        if seg != self.seg {
            self.seg = seg;
            self.refs.clear();
        }
        let mut d = Dec::new(payload, "metrics wal record");
        match kind {
            SERIES => {
                let n = d.count(2)?;
                for _ in 0..n {
                    let id = d.uvarint()?;
                    let labels = Labels::decode(&mut d)?;
                    let idx = head.get_or_create(&labels);
                    self.refs.insert(id, idx);
                }
            }
            SAMPLES => {
                let base = d.ivarint()?;
                let n = d.count(10)?;
                for _ in 0..n {
                    let id = d.uvarint()?;
                    let t = base.wrapping_add(d.ivarint()?);
                    let v = d.f64()?;
                    let idx = self.idx(id)?;
                    head.insert_sample(idx, Sample { t, v });
                    self.points += 1;
                }
            }
            HISTOGRAMS => {
                let n = d.count(3)?;
                for _ in 0..n {
                    let id = d.uvarint()?;
                    let t = d.ivarint()?;
                    let h = Histogram::decode(&mut d)?;
                    let idx = self.idx(id)?;
                    head.insert_histogram(idx, HistogramSample { t, h });
                    self.points += 1;
                }
            }
            STARTS => {
                let n = d.count(3)?;
                for _ in 0..n {
                    let id = d.uvarint()?;
                    let t = d.ivarint()?;
                    let st = t.wrapping_sub(d.ivarint()?);
                    let idx = self.idx(id)?;
                    head.insert_start(idx, StartTime { t, st });
                }
            }
            EXEMPLARS => {
                let n = d.count(11)?;
                for _ in 0..n {
                    let id = d.uvarint()?;
                    let t = d.ivarint()?;
                    let value = d.f64()?;
                    let labels = Labels::decode(&mut d)?;
                    let idx = self.idx(id)?;
                    let series = head.series[idx as usize].labels.labels();
                    self.keep_exemplar(series, Exemplar { t, value, labels });
                }
            }
            EXEMPLAR_SNAPSHOT => {
                let n = d.count(11)?;
                self.exemplars.clear();
                for _ in 0..n {
                    let series = Labels::decode(&mut d)?;
                    let t = d.ivarint()?;
                    let value = d.f64()?;
                    let labels = Labels::decode(&mut d)?;
                    self.keep_exemplar(series, Exemplar { t, value, labels });
                }
            }
            METADATA => {
                let n = d.count(4)?;
                for _ in 0..n {
                    let metric = d.string()?;
                    let kind = MetricKind::parse(d.str()?);
                    let unit = d.string()?;
                    let help = d.string()?;
                    head.set_metadata(&MetricMetadata {
                        metric,
                        kind,
                        unit,
                        help,
                    });
                }
            }
            other => {
                return Err(StorageError::decode(
                    "metrics wal record",
                    format!("unknown kind {other}"),
                ));
            }
        }
        Ok(())
    }

    fn idx(&self, id: u64) -> Result<u32> {
        self.refs.get(&id).copied().ok_or_else(|| {
            StorageError::decode(
                "metrics wal record",
                format!("sample for undefined series {id}"),
            )
        })
    }
}
