//! Metrics: the in-memory head of series and samples, its WAL records, and the
//! Parquet part format (series table + samples sorted by series and time).

pub(crate) mod exemplars;
pub(crate) mod head;
pub(crate) mod part;
pub(crate) mod wal;

#[cfg(test)]
mod tests;

use crate::model::{HistogramSample, Labels, Sample, StartTime};

/// One series with its samples in a time range, as the read API returns it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Series {
    pub labels: Labels,
    /// Sorted by time, one sample per timestamp.
    pub samples: Vec<Sample>,
    /// Sorted by time, one histogram per timestamp.
    pub histograms: Vec<HistogramSample>,
    /// Sorted by time: the start times of the samples (of either kind) that have one.
    pub starts: Vec<StartTime>,
}

/// Merges series read from several sources; `sources` are ordered oldest first and a
/// later source wins on equal timestamps (a sample's start time comes with it).
pub(crate) fn merge_series(sources: Vec<Vec<Series>>) -> Vec<Series> {
    use std::collections::BTreeMap;
    type Points = (usize, Vec<Sample>, Vec<HistogramSample>, Vec<StartTime>);
    let mut by_labels: BTreeMap<Labels, Vec<Points>> = BTreeMap::new();
    for (rank, src) in sources.into_iter().enumerate() {
        for s in src {
            by_labels
                .entry(s.labels)
                .or_default()
                .push((rank, s.samples, s.histograms, s.starts));
        }
    }
    by_labels
        .into_iter()
        .map(|(labels, mut parts)| {
            if parts.len() == 1
                && let Some((_, samples, histograms, starts)) = parts.pop()
            {
                return Series {
                    labels,
                    samples,
                    histograms,
                    starts,
                };
            }
            // Sources that follow one another in time (parts of successive windows) are
            // put one after the other; only overlapping ones are merged sample by sample.
            // Each source's first and last time, floats and histograms together.
            let span = |ss: &[Sample], hs: &[HistogramSample]| {
                let first = ss
                    .first()
                    .map(|x| x.t)
                    .into_iter()
                    .chain(hs.first().map(|h| h.t));
                let last = ss
                    .last()
                    .map(|x| x.t)
                    .into_iter()
                    .chain(hs.last().map(|h| h.t));
                (first.min(), last.max())
            };
            parts.sort_by_key(|(rank, ss, hs, _)| (span(ss, hs).0, *rank));
            let disjoint = parts.windows(2).all(|w| {
                match (span(&w[0].1, &w[0].2).1, span(&w[1].1, &w[1].2).0) {
                    (Some(last), Some(next)) => last < next,
                    _ => false,
                }
            });
            if disjoint {
                let mut out = Series {
                    labels,
                    samples: Vec::with_capacity(parts.iter().map(|p| p.1.len()).sum()),
                    ..Default::default()
                };
                for (_, ss, hs, st) in parts {
                    out.samples.extend(ss);
                    out.histograms.extend(hs);
                    out.starts.extend(st);
                }
                return out;
            }
            let mut samples: Vec<(i64, usize, f64)> = Vec::new();
            let mut hists: Vec<(i64, usize, HistogramSample)> = Vec::new();
            // The source of the sample kept at each time decides its start time.
            let any_starts = parts.iter().any(|p| !p.3.is_empty());
            let mut starts: BTreeMap<i64, (usize, Option<i64>)> = BTreeMap::new();
            for (rank, ss, hs, st) in parts {
                let times = ss.iter().map(|x| x.t).chain(hs.iter().map(|h| h.t));
                for t in times.filter(|_| any_starts) {
                    let e = starts.entry(t).or_insert((rank, None));
                    if rank >= e.0 {
                        *e = (rank, None);
                    }
                }
                for x in st {
                    if let Some(e) = starts.get_mut(&x.t)
                        && e.0 == rank
                    {
                        e.1 = Some(x.st);
                    }
                }
                samples.extend(ss.into_iter().map(|x| (x.t, rank, x.v)));
                hists.extend(hs.into_iter().map(|h| (h.t, rank, h)));
            }
            samples.sort_by_key(|a| (a.0, a.1));
            hists.sort_by_key(|a| (a.0, a.1));
            let mut out = Series {
                labels,
                ..Default::default()
            };
            for (t, _, v) in samples {
                match out.samples.last_mut() {
                    Some(last) if last.t == t => last.v = v,
                    _ => out.samples.push(Sample { t, v }),
                }
            }
            // A histogram after one from another source does not continue it: its
            // counter-reset hint is unknown (as Prometheus' merging of series says).
            let mut ranks: Vec<usize> = Vec::with_capacity(hists.len());
            for (t, rank, h) in hists {
                match (out.histograms.last_mut(), ranks.last_mut()) {
                    (Some(last), Some(r)) if last.t == t => {
                        *last = h;
                        *r = rank;
                    }
                    _ => {
                        out.histograms.push(h);
                        ranks.push(rank);
                    }
                }
            }
            for (i, h) in out.histograms.iter_mut().enumerate().skip(1) {
                if ranks[i] != ranks[i - 1] && h.h.hint != crate::model::ResetHint::Gauge {
                    h.h.hint = crate::model::ResetHint::Unknown;
                }
            }
            out.starts = starts
                .into_iter()
                .filter_map(|(t, (_, st))| Some(StartTime { t, st: st? }))
                .collect();
            out
        })
        .collect()
}

/// Inserts into a time-sorted vector, replacing an element with the same time; gives
/// the element's index.
pub(crate) fn insert_sorted<T>(v: &mut Vec<T>, item: T, t: impl Fn(&T) -> i64) -> usize {
    let ti = t(&item);
    match v.last() {
        Some(last) if t(last) >= ti => match v.binary_search_by(|x| t(x).cmp(&ti)) {
            Ok(i) => {
                v[i] = item;
                i
            }
            Err(i) => {
                v.insert(i, item);
                i
            }
        },
        _ => {
            v.push(item);
            v.len() - 1
        }
    }
}

impl Series {
    /// The start time of the sample at `t`; 0 (unknown) if it has none.
    pub fn start_at(&self, t: i64) -> i64 {
        crate::model::start_at(&self.starts, t)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.samples.is_empty() && self.histograms.is_empty()
    }
}
