//! The metrics head: series created since the last cut, their samples, a postings
//! index over their labels, and the metadata seen for each metric.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::index::Postings;
use crate::model::{
    CompactLabels, HistogramSample, Labels, Matcher, MetricMetadata, ResetHint, Sample, StartTime,
};

use super::{Series, insert_sorted};

/// Series ids are unique for the life of the process (the WAL tracks them across heads).
static NEXT_SERIES_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct HeadSeries {
    pub(crate) id: u64,
    pub(crate) labels: CompactLabels,
    pub(crate) samples: Vec<Sample>,
    pub(crate) histograms: Vec<HistogramSample>,
    /// Start times of the samples that have one, sorted by time.
    pub(crate) starts: Vec<StartTime>,
    /// WAL segment in which this series' definition was last written.
    pub(crate) wal_seg: u64,
}

impl HeadSeries {
    /// Drops the start time at `t`; gives the bytes freed.
    fn forget_start(&mut self, t: i64) -> u64 {
        match self.starts.binary_search_by_key(&t, |x| x.t) {
            Ok(i) => {
                self.starts.remove(i);
                START_BYTES
            }
            Err(_) => 0,
        }
    }

    /// Replaces the ingested hint of histogram `i` with the one a reader sees, from the
    /// sample before it (a float sample in between ends a chunk too).
    fn derive_hint(&mut self, i: usize) {
        let t = self.histograms[i].t;
        let prev = i.checked_sub(1).map(|j| {
            let p = &self.histograms[j];
            let float_between = self.samples.partition_point(|s| s.t <= p.t)
                < self.samples.partition_point(|s| s.t < t);
            (p.t, (!float_between).then_some(&p.h))
        });
        let hint = self.histograms[i].h.read_hint(t, prev);
        self.histograms[i].h.hint = hint;
    }
}

const SERIES_OVERHEAD: u64 = 160;
const SAMPLE_BYTES: u64 = std::mem::size_of::<Sample>() as u64;
const START_BYTES: u64 = std::mem::size_of::<StartTime>() as u64;

#[derive(Default)]
pub(crate) struct MetricsHead {
    pub(crate) series: Vec<HeadSeries>,
    by_hash: rustc_hash::FxHashMap<u64, Vec<u32>>,
    postings: Postings,
    pub(crate) metadata: std::collections::HashMap<String, MetricMetadata>,
    bytes: u64,
    points: u64,
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
}

impl MetricsHead {
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn points(&self) -> u64 {
        self.points
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.points == 0 && self.metadata.is_empty()
    }

    pub(crate) fn series_count(&self) -> usize {
        self.series.len()
    }

    /// The head-local index of the series with these labels, if present.
    pub(crate) fn lookup(&self, labels: &Labels, hash: u64) -> Option<u32> {
        self.by_hash
            .get(&hash)?
            .iter()
            .copied()
            .find(|&i| self.series[i as usize].labels.is(labels))
    }

    /// Creates the series (the caller has checked limits) and returns its head-local index.
    pub(crate) fn create(&mut self, labels: &Labels, hash: u64) -> u32 {
        let idx = self.series.len() as u32;
        let compact = labels.compact();
        self.bytes += SERIES_OVERHEAD + compact.heap_bytes() as u64;
        self.series.push(HeadSeries {
            id: NEXT_SERIES_ID.fetch_add(1, Ordering::Relaxed),
            labels: compact,
            samples: Vec::new(),
            histograms: Vec::new(),
            starts: Vec::new(),
            wal_seg: 0,
        });
        self.by_hash.entry(hash).or_default().push(idx);
        self.postings.add(idx, labels);
        idx
    }

    pub(crate) fn get_or_create(&mut self, labels: &Labels) -> u32 {
        let hash = labels.hash64();
        match self.lookup(labels, hash) {
            Some(i) => i,
            None => self.create(labels, hash),
        }
    }

    pub(crate) fn insert_sample(&mut self, idx: u32, s: Sample) {
        let series = &mut self.series[idx as usize];
        let before = series.samples.len();
        insert_sorted(&mut series.samples, s, |x| x.t);
        if series.samples.len() == before {
            // A replaced sample takes its start time, if any, from the new write.
            self.bytes -= series.forget_start(s.t);
        }
        // A float between two histograms ends the first one's chunk.
        if !series.histograms.is_empty() {
            let next = series.histograms.partition_point(|x| x.t <= s.t);
            if next > 0
                && let Some(h) = series.histograms.get_mut(next)
                && h.h.hint == ResetHint::NotReset
            {
                h.h.hint = ResetHint::Unknown;
            }
        }
        if series.samples.len() > before {
            self.points += 1;
            self.bytes += SAMPLE_BYTES;
        }
        self.note_time(s.t);
    }

    pub(crate) fn insert_histogram(&mut self, idx: u32, h: HistogramSample) {
        let t = h.t;
        let size = 64 + h.h.heap_bytes() as u64;
        let series = &mut self.series[idx as usize];
        let before = series.histograms.len();
        let at = insert_sorted(&mut series.histograms, h, |x| x.t);
        if series.histograms.len() == before {
            self.bytes -= series.forget_start(t);
        }
        series.derive_hint(at);
        // A sample inserted out of order may end the chunk of the one after it.
        if series
            .histograms
            .get(at + 1)
            .is_some_and(|n| n.h.hint == ResetHint::NotReset)
        {
            series.derive_hint(at + 1);
        }
        if series.histograms.len() > before {
            self.points += 1;
            self.bytes += size;
        }
        self.note_time(t);
    }

    /// Records the start time of the sample at `st.t` (given with the sample).
    pub(crate) fn insert_start(&mut self, idx: u32, st: StartTime) {
        let series = &mut self.series[idx as usize];
        let before = series.starts.len();
        insert_sorted(&mut series.starts, st, |x| x.t);
        if series.starts.len() > before {
            self.bytes += START_BYTES;
        }
    }

    fn note_time(&mut self, t: i64) {
        if self.points <= 1 {
            self.min_t = t;
            self.max_t = t;
        } else {
            self.min_t = self.min_t.min(t);
            self.max_t = self.max_t.max(t);
        }
    }

    pub(crate) fn set_metadata(&mut self, m: &MetricMetadata) {
        if self.metadata.get(&m.metric) != Some(m) {
            self.bytes += (m.metric.len() + m.help.len() + m.unit.len() + 64) as u64;
            self.metadata.insert(m.metric.clone(), m.clone());
        }
    }

    /// Series matching `matchers` with their samples within `[start, end]` (milliseconds).
    pub(crate) fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<Series> {
        let mut out = Vec::new();
        if self.points > 0 && (end < self.min_t || start > self.max_t) {
            return out;
        }
        for idx in self.postings.candidates(matchers) {
            let hs = &self.series[idx as usize];
            let labels = hs.labels.labels();
            if !labels.matches(matchers) {
                continue;
            }
            let s = Series {
                labels,
                samples: window(&hs.samples, start, end, |x| x.t).to_vec(),
                histograms: window(&hs.histograms, start, end, |x| x.t).to_vec(),
                starts: window(&hs.starts, start, end, |x| x.t).to_vec(),
            };
            if !s.is_empty() {
                out.push(s);
            }
        }
        out
    }

    /// Label sets of series matching `matchers` that have data within `[start, end]`.
    pub(crate) fn series_labels(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<Labels> {
        self.postings
            .candidates(matchers)
            .into_iter()
            .filter_map(|idx| {
                let hs = &self.series[idx as usize];
                let has_data = !window(&hs.samples, start, end, |x| x.t).is_empty()
                    || !window(&hs.histograms, start, end, |x| x.t).is_empty();
                if !has_data {
                    return None;
                }
                let labels = hs.labels.labels();
                labels.matches(matchers).then_some(labels)
            })
            .collect()
    }

    /// Every series with points, by its encoded labels (what a part is written from).
    pub(crate) fn slices(&self) -> Vec<super::part::SeriesSlice<'_>> {
        let mut v: Vec<super::part::SeriesSlice<'_>> = self
            .series
            .iter()
            .filter(|s| !s.samples.is_empty() || !s.histograms.is_empty())
            .map(|s| super::part::SeriesSlice {
                labels: std::borrow::Cow::Borrowed(s.labels.bytes()),
                samples: &s.samples,
                histograms: &s.histograms,
                starts: &s.starts,
            })
            .collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }
}

/// The sub-slice of a time-sorted slice within `[start, end]`.
pub(crate) fn window<T>(v: &[T], start: i64, end: i64, t: impl Fn(&T) -> i64) -> &[T] {
    let lo = v.partition_point(|x| t(x) < start);
    let hi = v.partition_point(|x| t(x) <= end);
    if lo >= hi { &v[0..0] } else { &v[lo..hi] }
}
