//! The most recent exemplars of all series, in memory (made durable by the metrics WAL,
//! replayed at start-up; see ARCHITECTURE.md "Exemplars").

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::model::{Exemplar, Labels, Matcher, MetricsBatch};

/// The exemplars of one series, as the read API returns them (oldest first).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SeriesExemplars {
    pub labels: Labels,
    pub exemplars: Vec<Exemplar>,
}

/// A ring buffer of the newest exemplars over all series, with an index by series: its
/// shared label set, how many of its exemplars are kept, and its newest one.
#[derive(Debug)]
pub(crate) struct ExemplarBuffer {
    cap: usize,
    items: VecDeque<(Arc<Labels>, Exemplar)>,
    series: HashMap<Arc<Labels>, (usize, Exemplar)>,
}

impl Default for ExemplarBuffer {
    fn default() -> Self {
        ExemplarBuffer::new(crate::config::Limits::default().max_exemplars)
    }
}

impl ExemplarBuffer {
    pub(crate) fn new(cap: usize) -> ExemplarBuffer {
        ExemplarBuffer {
            cap,
            items: VecDeque::new(),
            series: HashMap::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Every exemplar kept, oldest first, with its series.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Labels, &Exemplar)> {
        self.items.iter().map(|(l, e)| (l.as_ref(), e))
    }

    /// Adds an exemplar of `series`, dropping the oldest when full. As in Prometheus, one
    /// older than the newest kept for the series, or equal to it, is not added.
    pub(crate) fn push(&mut self, series: &Labels, e: Exemplar) {
        if self.cap == 0 {
            return;
        }
        let key = match self.series.get_key_value(series) {
            Some((key, (_, newest))) => {
                if e.t < newest.t || (e.t == newest.t && e == *newest) {
                    return;
                }
                key.clone()
            }
            None => Arc::new(series.clone()),
        };
        if self.items.len() == self.cap
            && let Some((old, _)) = self.items.pop_front()
            && let Some(entry) = self.series.get_mut(&old)
        {
            entry.0 -= 1;
            if entry.0 == 0 {
                self.series.remove(&old);
            }
        }
        let entry = self.series.entry(key.clone()).or_insert((0, e.clone()));
        entry.0 += 1;
        entry.1 = e.clone();
        self.items.push_back((key, e));
    }

    /// Keeps the exemplars of a written batch.
    pub(crate) fn keep(&mut self, batch: &MetricsBatch) {
        for s in &batch.series {
            for e in &s.exemplars {
                self.push(&s.labels, e.clone());
            }
        }
    }

    /// The exemplars in `[start, end]` of the series matching every matcher of one of
    /// the sets, by series (sorted by labels), each series' oldest first.
    pub(crate) fn select(
        &self,
        sets: &[Vec<Matcher>],
        start: i64,
        end: i64,
    ) -> Vec<SeriesExemplars> {
        // Each series is matched once.
        let matched: HashSet<*const Labels> = self
            .series
            .keys()
            .filter(|l| sets.iter().any(|m| l.matches(m)))
            .map(Arc::as_ptr)
            .collect();
        let mut out: std::collections::BTreeMap<&Labels, Vec<Exemplar>> = Default::default();
        for (series, e) in &self.items {
            if e.t >= start && e.t <= end && matched.contains(&Arc::as_ptr(series)) {
                out.entry(series).or_default().push(e.clone());
            }
        }
        out.into_iter()
            .map(|(labels, exemplars)| SeriesExemplars {
                labels: labels.clone(),
                exemplars,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(t: i64, trace: &str) -> Exemplar {
        Exemplar {
            t,
            value: t as f64,
            labels: Labels::from_pairs([("trace_id", trace)]),
        }
    }

    #[test]
    fn the_oldest_go_first_and_selection_follows_matchers_and_time() {
        let mut b = ExemplarBuffer::new(3);
        let a = Labels::from_pairs([("__name__", "x"), ("job", "a")]);
        let c = Labels::from_pairs([("__name__", "x"), ("job", "c")]);
        b.push(&a, ex(1, "t1"));
        b.push(&c, ex(2, "t2"));
        b.push(&a, ex(3, "t3"));
        // A repeat and an older one (a retried request) are not kept again.
        b.push(&a, ex(3, "t3"));
        b.push(&a, ex(1, "t1"));
        b.push(&c, ex(4, "t4"));
        let all = b.select(&[vec![Matcher::eq("__name__", "x")]], 0, 10);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].exemplars, vec![ex(3, "t3")]);
        assert_eq!(all[1].exemplars, vec![ex(2, "t2"), ex(4, "t4")]);
        let some = b.select(&[vec![Matcher::eq("job", "c")]], 3, 10);
        assert_eq!(some.len(), 1);
        assert_eq!(some[0].exemplars, vec![ex(4, "t4")]);
        // Either of two matcher sets.
        let both = b.select(
            &[vec![Matcher::eq("job", "a")], vec![Matcher::eq("job", "c")]],
            0,
            10,
        );
        assert_eq!(both.len(), 2);
        // A series whose exemplars all left the buffer is forgotten.
        b.push(&c, ex(5, "t5"));
        b.push(&c, ex(6, "t6"));
        assert_eq!(b.series.len(), 1);
        assert_eq!(b.len(), 3);
    }
}
