//! Checks every write goes through before it reaches a head: label limits and the
//! accepted time range. What fails is counted in the write's outcome, not stored.

use std::time::Duration;

use crate::api::WriteOutcome;
use crate::config::Limits;
use crate::model::{Labels, LogsBatch, MetricsBatch, SeriesPoints, TracesBatch};

/// The accepted time range of one signal, milliseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimeBounds {
    pub(crate) min_ms: i64,
    pub(crate) max_ms: i64,
}

impl TimeBounds {
    pub(crate) fn new(now_ms: i64, retention: Duration, max_future: Duration) -> TimeBounds {
        TimeBounds {
            min_ms: now_ms - retention.as_millis() as i64,
            max_ms: now_ms + max_future.as_millis() as i64,
        }
    }

    fn check(&self, t_ms: i64) -> Result<(), &'static str> {
        if t_ms < self.min_ms {
            Err("timestamp older than the retention period")
        } else if t_ms > self.max_ms {
            Err("timestamp too far in the future")
        } else {
            Ok(())
        }
    }
}

fn series_problem(s: &SeriesPoints, limits: &Limits) -> Option<String> {
    if s.labels.len() > limits.max_labels_per_series {
        return Some(format!(
            "series has {} labels, more than the limit of {}",
            s.labels.len(),
            limits.max_labels_per_series
        ));
    }
    for l in s.labels.iter() {
        if l.name.len() > limits.max_label_name_length {
            return Some(format!(
                "label name {:.40}… is longer than {} bytes",
                l.name, limits.max_label_name_length
            ));
        }
        if l.value.len() > limits.max_label_value_length {
            return Some(format!(
                "value of label {} is longer than {} bytes",
                l.name, limits.max_label_value_length
            ));
        }
    }
    if s.labels.get("__name__").is_none() {
        return Some("series has no metric name".to_string());
    }
    None
}

pub(crate) fn metrics(
    batch: MetricsBatch,
    limits: &Limits,
    bounds: TimeBounds,
) -> (MetricsBatch, WriteOutcome) {
    let mut out = WriteOutcome::default();
    let mut kept = Vec::with_capacity(batch.series.len());
    for mut s in batch.series {
        if let Some(p) = series_problem(&s, limits) {
            out.reject(s.points() as u64, p);
            continue;
        }
        let before = s.points();
        let mut reason = None;
        s.samples
            .retain(|x| bounds.check(x.t).map_err(|r| reason = Some(r)).is_ok());
        s.histograms
            .retain(|x| bounds.check(x.t).map_err(|r| reason = Some(r)).is_ok());
        // Exemplars are examples, not data points: those out of bounds are left out
        // silently. A label set longer than Prometheus allows (128 characters) keeps
        // only the trace and span ids, as Prometheus' OTLP translation does.
        let len = |l: &Labels| -> usize {
            l.iter()
                .map(|l| l.name.chars().count() + l.value.chars().count())
                .sum()
        };
        for e in &mut s.exemplars {
            if len(&e.labels) > 128 {
                e.labels = Labels::from_pairs(
                    e.labels
                        .iter()
                        .filter(|l| l.name == "trace_id" || l.name == "span_id")
                        .map(|l| (l.name.clone(), l.value.clone())),
                );
            }
        }
        s.exemplars
            .retain(|e| bounds.check(e.t).is_ok() && len(&e.labels) <= 128);
        if let Some(r) = reason {
            out.reject((before - s.points()) as u64, r);
        }
        if s.points() > 0 {
            s.samples.sort_by_key(|x| x.t);
            s.histograms.sort_by_key(|x| x.t);
            // A start time is kept only with a sample at its time, the last given for
            // a time (as for the samples themselves).
            s.starts.reverse();
            s.starts.sort_by_key(|x| x.t);
            s.starts.dedup_by_key(|x| x.t);
            let (samples, histograms) = (&s.samples, &s.histograms);
            s.starts.retain(|x| {
                samples.binary_search_by_key(&x.t, |p| p.t).is_ok()
                    || histograms.binary_search_by_key(&x.t, |p| p.t).is_ok()
            });
            out.accepted += s.points() as u64;
            kept.push(s);
        }
    }
    (
        MetricsBatch {
            series: kept,
            metadata: batch.metadata,
        },
        out,
    )
}

pub(crate) fn logs(mut batch: LogsBatch, bounds: TimeBounds) -> (LogsBatch, WriteOutcome) {
    let mut out = WriteOutcome::default();
    for s in &mut batch.streams {
        let before = s.records.len();
        let mut reason = None;
        s.records.retain(|r| {
            bounds
                .check(r.time_ns.div_euclid(1_000_000))
                .map_err(|e| reason = Some(e))
                .is_ok()
        });
        if let Some(r) = reason {
            out.reject((before - s.records.len()) as u64, r);
        }
        // A span id without a trace id is no span context; the WAL and parts keep
        // span ids only with a trace id, so the head must not show one either.
        for r in &mut s.records {
            if r.trace_id == [0; 16] {
                r.span_id = [0; 8];
            }
        }
        out.accepted += s.records.len() as u64;
    }
    batch.streams.retain(|s| !s.records.is_empty());
    (batch, out)
}

pub(crate) fn traces(mut batch: TracesBatch, bounds: TimeBounds) -> (TracesBatch, WriteOutcome) {
    let mut out = WriteOutcome::default();
    for r in &mut batch.resources {
        let before = r.spans.len();
        let mut reason = None;
        r.spans.retain(|s| {
            if s.trace_id == [0; 16] || s.span_id == [0; 8] {
                reason = Some("span has an all-zero trace or span id");
                return false;
            }
            bounds
                .check(s.start_ns.div_euclid(1_000_000))
                .map_err(|e| reason = Some(e))
                .is_ok()
        });
        if let Some(rs) = reason {
            out.reject((before - r.spans.len()) as u64, rs);
        }
        out.accepted += r.spans.len() as u64;
    }
    batch.resources.retain(|r| !r.spans.is_empty());
    (batch, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Exemplar, Sample};

    #[test]
    fn long_exemplar_label_sets_keep_their_trace_and_span_ids() {
        let ids = [("trace_id", "4b".repeat(16)), ("span_id", "21".repeat(8))];
        let long = Labels::from_pairs(ids.iter().cloned().chain([("note", "x".repeat(100))]));
        let batch = MetricsBatch {
            series: vec![SeriesPoints {
                starts: Vec::new(),
                labels: Labels::from_pairs([("__name__", "x")]),
                samples: vec![Sample { t: 10, v: 1.0 }],
                histograms: vec![],
                exemplars: vec![
                    Exemplar {
                        t: 10,
                        value: 1.0,
                        labels: long,
                    },
                    // Outside the time bounds.
                    Exemplar {
                        t: -10,
                        value: 1.0,
                        labels: Labels::default(),
                    },
                ],
            }],
            metadata: vec![],
        };
        let (b, out) = metrics(
            batch,
            &Limits::default(),
            TimeBounds {
                min_ms: 0,
                max_ms: 100,
            },
        );
        assert_eq!(out.accepted, 1);
        let e = &b.series[0].exemplars;
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].labels, Labels::from_pairs(ids));
    }
}
