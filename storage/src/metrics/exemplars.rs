//! The most recent exemplars of all series, in memory (made durable by the metrics WAL,
//! replayed at start-up; see ARCHITECTURE.md "Exemplars").

use std::collections::VecDeque;
use std::sync::Arc;

use crate::model::{Exemplar, Labels, Matcher, MetricsBatch};

/// The exemplars of one series, as the read API returns them (oldest first).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SeriesExemplars {
    pub labels: Labels,
    pub exemplars: Vec<Exemplar>,
}

/// A ring buffer of the newest exemplars over all series.
#[derive(Debug)]
pub(crate) struct ExemplarBuffer {
    cap: usize,
    items: VecDeque<(Arc<Labels>, Exemplar)>,
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
        }
    }

    /// Adds an exemplar of `series`, dropping the oldest when full. One equal to the
    /// newest kept for the series is not added again.
    pub(crate) fn push(&mut self, series: &Arc<Labels>, e: Exemplar) {
        if self.cap == 0 {
            return;
        }
        let newest = self.items.iter().rev().find(|(l, _)| l == series);
        if newest.is_some_and(|(_, n)| *n == e) {
            return;
        }
        if self.items.len() == self.cap {
            self.items.pop_front();
        }
        self.items.push_back((series.clone(), e));
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

    /// Keeps the exemplars of a written batch.
    pub(crate) fn keep(&mut self, batch: &MetricsBatch) {
        for s in batch.series.iter().filter(|s| !s.exemplars.is_empty()) {
            let series = Arc::new(s.labels.clone());
            for e in &s.exemplars {
                self.push(&series, e.clone());
            }
        }
    }

    /// The exemplars in `[start, end]` of the series matching every matcher, by series
    /// (sorted by labels), each series' oldest first.
    pub(crate) fn select(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Vec<SeriesExemplars> {
        let mut out: std::collections::BTreeMap<&Labels, Vec<Exemplar>> = Default::default();
        for (series, e) in &self.items {
            if e.t >= start && e.t <= end && series.matches(matchers) {
                out.entry(series).or_default().push(e.clone());
            }
        }
        out.into_iter()
            .map(|(labels, mut exemplars)| {
                exemplars.sort_by_key(|e| e.t);
                SeriesExemplars {
                    labels: labels.clone(),
                    exemplars,
                }
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
        let a = Arc::new(Labels::from_pairs([("__name__", "x"), ("job", "a")]));
        let c = Arc::new(Labels::from_pairs([("__name__", "x"), ("job", "c")]));
        b.push(&a, ex(1, "t1"));
        b.push(&c, ex(2, "t2"));
        b.push(&a, ex(3, "t3"));
        b.push(&a, ex(3, "t3"));
        b.push(&c, ex(4, "t4"));
        let all = b.select(&[Matcher::eq("__name__", "x")], 0, 10);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].exemplars, vec![ex(3, "t3")]);
        assert_eq!(all[1].exemplars, vec![ex(2, "t2"), ex(4, "t4")]);
        let some = b.select(&[Matcher::eq("job", "c")], 3, 10);
        assert_eq!(some.len(), 1);
        assert_eq!(some[0].exemplars, vec![ex(4, "t4")]);
    }
}
