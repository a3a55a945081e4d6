//! LogQL metric queries. Range aggregations turn log lines into samples per step; the
//! operations above them (vector aggregations, binary operations, `label_replace`)
//! have PromQL's semantics and reuse the PromQL engine's implementations.
//!
//! Series labels are the stream labels plus whatever the pipeline extracted. Record
//! metadata (attributes, trace context, severity) is dropped from series unless the
//! query groups or matches on it, or it is `level`: otherwise every trace id would be
//! a series of its own.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use logql::{
    AggregationFunction, BinOp, Grouping, MetricQuery, PipelineStage, RangeAggregation,
    RangeFunction, Unwrap,
};
use promql_parser::label::Labels as NameList;
use promql_parser::parser::token::{self, TokenType};
use promql_parser::parser::{BinModifier, LabelModifier, VectorMatchCardinality};
use signalbox_storage::{Labels, LineTest, LogFields, TimesQuery};

use super::eval::{
    LogqlEngine, LogqlError, LogqlResult, Metadata, ScanStats, Span, entry, level, matchers,
    metadata_value,
};
use super::pipeline::{Pipeline, parse_bytes, parse_duration_secs};
use crate::promql::types::{Instant, Sample};
use crate::promql::{aggregate, binary, functions};

/// Names the query groups or matches on: metadata labels with these names stay in series.
fn referenced(q: &MetricQuery, out: &mut HashSet<String>) {
    let mut grouping = |g: &Option<Grouping>| {
        if let Some(g) = g.as_ref().filter(|g| !g.without) {
            out.extend(g.labels.iter().cloned());
        }
    };
    match q {
        MetricQuery::Range(r) => grouping(&r.grouping),
        MetricQuery::Vector(v) => {
            grouping(&v.grouping);
            referenced(&v.inner, out);
        }
        MetricQuery::Binary(b) => {
            if let Some(m) = b.matching.as_ref().filter(|m| m.on) {
                out.extend(m.labels.iter().cloned());
            }
            referenced(&b.left, out);
            referenced(&b.right, out);
        }
        MetricQuery::LabelReplace(l) => {
            out.insert(l.src_label.clone());
            referenced(&l.inner, out);
        }
        _ => {}
    }
}

/// Range aggregations in evaluation order.
fn ranges<'a>(q: &'a MetricQuery, out: &mut Vec<&'a RangeAggregation>) {
    match q {
        MetricQuery::Range(r) => out.push(r),
        MetricQuery::Vector(v) => ranges(&v.inner, out),
        MetricQuery::Binary(b) => {
            ranges(&b.left, out);
            ranges(&b.right, out);
        }
        MetricQuery::LabelReplace(l) => ranges(&l.inner, out),
        _ => {}
    }
}

fn ns(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn name(f: RangeFunction) -> &'static str {
    match f {
        RangeFunction::Rate => "rate",
        RangeFunction::RateCounter => "rate_counter",
        RangeFunction::CountOverTime => "count_over_time",
        RangeFunction::BytesRate => "bytes_rate",
        RangeFunction::BytesOverTime => "bytes_over_time",
        RangeFunction::AvgOverTime => "avg_over_time",
        RangeFunction::SumOverTime => "sum_over_time",
        RangeFunction::MinOverTime => "min_over_time",
        RangeFunction::MaxOverTime => "max_over_time",
        RangeFunction::StdvarOverTime => "stdvar_over_time",
        RangeFunction::StddevOverTime => "stddev_over_time",
        RangeFunction::QuantileOverTime => "quantile_over_time",
        RangeFunction::FirstOverTime => "first_over_time",
        RangeFunction::LastOverTime => "last_over_time",
        RangeFunction::AbsentOverTime => "absent_over_time",
        _ => "unknown range function",
    }
}

/// The unwrapped value of a label, as its conversion reads it.
fn convert(u: &Unwrap, v: &str) -> Result<f64, String> {
    let v = v.trim();
    let parsed = match u.conversion.as_deref() {
        None => v.parse::<f64>().ok(),
        Some("duration" | "duration_seconds") => parse_duration_secs(v),
        Some("bytes") => parse_bytes(v),
        Some(other) => return Err(format!("unknown conversion {other}")),
    };
    parsed.ok_or_else(|| {
        format!(
            "cannot convert {v:?} with {}",
            u.conversion.as_deref().unwrap_or("float")
        )
    })
}

fn group(labels: &mut BTreeMap<String, String>, g: &Option<Grouping>) {
    if let Some(g) = g {
        if g.without {
            for l in &g.labels {
                labels.remove(l);
            }
        } else {
            labels.retain(|k, _| g.labels.contains(k));
        }
    }
}

fn pipeline_error(err: &str, labels: &BTreeMap<String, String>) -> LogqlError {
    let series = Labels::from_pairs(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    LogqlError::Invalid(format!(
        "pipeline error: '{err}' for series: '{series}'.\nUse a label filter to intentionally skip this error. \
         (e.g | __error__!=\"\").\nTo skip all potential errors you can match empty errors.(e.g __error__=\"\")\n\
         The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )"
    ))
}

/// One stream's points in a range aggregation whose pipeline only tests lines.
struct Fast {
    labels: Arc<Labels>,
    /// The metadata names the query keeps that the stream's labels do not have.
    keep: Vec<String>,
    /// Points by the values of those names.
    by_meta: HashMap<Metadata, Vec<(i64, f64)>>,
}

/// Evaluates one range aggregation at every step.
async fn range_aggregation(
    engine: &LogqlEngine,
    r: &RangeAggregation,
    steps: &[i64],
    keep_meta: &HashSet<String>,
    stats: &mut ScanStats,
) -> Result<Vec<Vec<Sample>>, LogqlError> {
    let f = r.function;
    let range = ns(r.range);
    let offset = r.offset.map_or(0, ns);
    if range <= 0 {
        return Err(LogqlError::Invalid(
            "the range of a range aggregation must be positive".into(),
        ));
    }
    let stages = &r.log_query.pipeline;
    let (pre, post, unwrap) = match stages
        .iter()
        .position(|s| matches!(s, PipelineStage::Unwrap(_)))
    {
        Some(i) => match &stages[i] {
            PipelineStage::Unwrap(u) => (&stages[..i], &stages[i + 1..], Some(u.clone())),
            _ => unreachable!("position found an unwrap stage"),
        },
        None => (&stages[..], &stages[..0], r.unwrap.clone()),
    };
    let needs_unwrap = !matches!(
        f,
        RangeFunction::Rate
            | RangeFunction::CountOverTime
            | RangeFunction::BytesRate
            | RangeFunction::BytesOverTime
            | RangeFunction::AbsentOverTime
    );
    let forbids_unwrap = matches!(
        f,
        RangeFunction::CountOverTime
            | RangeFunction::BytesRate
            | RangeFunction::BytesOverTime
            | RangeFunction::AbsentOverTime
    );
    if needs_unwrap && unwrap.is_none() {
        return Err(LogqlError::Invalid(format!(
            "invalid aggregation {} without unwrap",
            name(f)
        )));
    }
    if forbids_unwrap && unwrap.is_some() {
        return Err(LogqlError::Invalid(format!(
            "invalid aggregation {} with unwrap",
            name(f)
        )));
    }
    if r.grouping.is_some() && unwrap.is_none() {
        return Err(LogqlError::Invalid(format!(
            "grouping not allowed for {} aggregation",
            name(f)
        )));
    }
    let quantile = match (f, r.param) {
        (RangeFunction::QuantileOverTime, Some(q)) => q,
        (RangeFunction::QuantileOverTime, None) => {
            return Err(LogqlError::Invalid(
                "quantile_over_time requires a parameter".into(),
            ));
        }
        _ => 0.0,
    };
    let pre = Arc::new(Pipeline::compile(pre).map_err(LogqlError::Invalid)?);
    let post = Arc::new(Pipeline::compile(post).map_err(LogqlError::Invalid)?);
    let ms = matchers(&r.log_query.selector.matchers)?;
    let (Some(&first), Some(&last)) = (steps.first(), steps.last()) else {
        return Ok(Vec::new());
    };
    let span = Span {
        start_ns: first
            .saturating_sub(offset)
            .saturating_sub(range)
            .saturating_add(1),
        end_ns: last.saturating_sub(offset).saturating_add(1),
    };
    let max = engine.max_lines;
    let mut read = 0u64;
    let mut series: BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>> = BTreeMap::new();
    let bytes = matches!(f, RangeFunction::BytesRate | RangeFunction::BytesOverTime);
    if unwrap.is_none() && pre.only_line_tests() && post.only_line_tests() {
        // Labels pass through unchanged: a series is the stream plus the metadata the
        // query keeps, so only those values are looked up for each line.
        let mut keep: Vec<&String> = keep_meta.iter().collect();
        keep.sort();
        // Streams by the address of their labels: the entries of a stream read together
        // share them, so a line finds its stream without hashing its labels.
        let mut slot: HashMap<usize, usize> = HashMap::new();
        let mut fast: Vec<Fast> = Vec::new();
        // Counting needs no line when nothing tests one.
        let fields = if !bytes && pre.is_empty() && post.is_empty() {
            LogFields::NoLines
        } else {
            LogFields::Lines
        };
        // Counting lines (or their bytes) that only line tests choose needs their times
        // (and sizes), not the records,
        // unless a kept label is metadata: then the records are read, and lines tested
        // by the times query would be read twice (a stream without the label tells).
        let metadata = keep
            .iter()
            .filter(|k| !matches!(k.as_str(), "level" | "severity_text"))
            .collect::<Vec<_>>();
        let in_streams = metadata.is_empty()
            || engine
                .reader
                .log_streams(&ms, span.start_ns, span.end_ns)
                .await
                .map_err(|e| LogqlError::Storage(e.to_string()))?
                .iter()
                .all(|l| metadata.iter().all(|k| l.get(k).is_some()));
        let counted = if !in_streams {
            false
        } else {
            let line_test: Option<LineTest> = if pre.is_empty() && post.is_empty() {
                None
            } else {
                let (pre, post) = (pre.clone(), post.clone());
                Some(Arc::new(move |l: &str| {
                    pre.line_passes(l) && post.line_passes(l)
                }))
            };
            let q = TimesQuery {
                matchers: ms.clone(),
                start_ns: span.start_ns,
                end_ns: span.end_ns,
                contains: pre.required.clone(),
                line_test,
                bytes: false,
                sizes: bytes,
                max: engine.max_lines,
            };
            count_streams(engine, &q, &keep, stats, &mut series).await?
        };
        if !counted {
            engine
                .scan_all(&ms, &pre, fields, span, stats, |e| {
                    read += 1;
                    if read > max {
                        return Err(too_many_lines(max));
                    }
                    let line = e.record.line();
                    if !pre.line_passes(&line) || !post.line_passes(&line) {
                        return Ok(());
                    }
                    let value = if bytes { line.len() as f64 } else { 1.0 };
                    let i = *slot
                        .entry(Arc::as_ptr(&e.labels) as usize)
                        .or_insert_with(|| {
                            fast.push(Fast {
                                labels: e.labels.clone(),
                                keep: keep
                                    .iter()
                                    .filter(|k| e.labels.get(k).is_none())
                                    .map(|k| (*k).clone())
                                    .collect(),
                                by_meta: HashMap::new(),
                            });
                            fast.len() - 1
                        });
                    let Some(s) = fast.get_mut(i) else {
                        return Ok(());
                    };
                    let extra: Vec<(String, String)> = s
                        .keep
                        .iter()
                        .filter_map(|k| metadata_value(&e.record, k).map(|v| (k.clone(), v)))
                        .collect();
                    s.by_meta
                        .entry(extra)
                        .or_default()
                        .push((e.record.time_ns, value));
                    Ok(())
                })
                .await?;
        }
        for Fast {
            labels, by_meta, ..
        } in fast
        {
            for (extra, pts) in by_meta {
                let mut key: BTreeMap<String, String> = labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect();
                key.extend(extra);
                series.entry(key).or_default().extend(pts);
            }
        }
    } else {
        engine
            .scan_all(&ms, &pre, LogFields::Lines, span, stats, |e| {
                read += 1;
                if read > max {
                    return Err(too_many_lines(max));
                }
                let (en, meta) = entry(e);
                let Some(mut out) = pre.run(en) else {
                    return Ok(());
                };
                let value = match &unwrap {
                    Some(u) => match out.labels.remove(&u.label) {
                        None => return Ok(()),
                        Some(v) => match convert(u, &v) {
                            Ok(x) => x,
                            Err(detail) => {
                                out.labels
                                    .insert("__error__".into(), "SampleExtractionErr".into());
                                out.labels.insert("__error_details__".into(), detail);
                                f64::NAN
                            }
                        },
                    },
                    None if bytes => out.line.len() as f64,
                    None => 1.0,
                };
                let Some(mut out) = post.run(out) else {
                    return Ok(());
                };
                for (k, v) in &meta {
                    if !keep_meta.contains(k) && out.labels.get(k) == Some(v) {
                        out.labels.remove(k);
                    }
                }
                if let Some(err) = out.labels.get("__error__") {
                    return Err(pipeline_error(err, &out.labels));
                }
                out.labels.remove("__error_details__");
                let mut key = out.labels;
                group(&mut key, &r.grouping);
                series.entry(key).or_default().push((out.t_ns, value));
                Ok(())
            })
            .await?;
    }

    let range_s = range as f64 / 1e9;
    let mut out: Vec<Vec<Sample>> = vec![Vec::new(); steps.len()];
    let mut present = vec![false; steps.len()];
    for (key, mut pts) in series {
        pts.sort_by_key(|p| p.0);
        let labels = Arc::new(Labels::from_pairs(key));
        for (i, &t) in steps.iter().enumerate() {
            let end = t.saturating_sub(offset);
            let start = end.saturating_sub(range);
            let lo = pts.partition_point(|p| p.0 <= start);
            let hi = pts.partition_point(|p| p.0 <= end);
            if lo >= hi {
                continue;
            }
            present[i] = true;
            let w = &pts[lo..hi];
            let mut values: Vec<f64> = w.iter().map(|p| p.1).collect();
            let v = match f {
                RangeFunction::CountOverTime => Some(w.len() as f64),
                RangeFunction::Rate if unwrap.is_some() => {
                    Some(aggregate::kahan_sum(&values) / range_s)
                }
                RangeFunction::Rate => Some(w.len() as f64 / range_s),
                RangeFunction::BytesOverTime | RangeFunction::SumOverTime => {
                    Some(aggregate::kahan_sum(&values))
                }
                RangeFunction::BytesRate => Some(aggregate::kahan_sum(&values) / range_s),
                RangeFunction::AvgOverTime => Some(aggregate::mean(&values)),
                RangeFunction::MinOverTime => values.iter().copied().reduce(f64::min),
                RangeFunction::MaxOverTime => values.iter().copied().reduce(f64::max),
                RangeFunction::StdvarOverTime => Some(aggregate::variance(&values)),
                RangeFunction::StddevOverTime => Some(aggregate::variance(&values).sqrt()),
                RangeFunction::QuantileOverTime => Some(aggregate::quantile(quantile, &mut values)),
                RangeFunction::FirstOverTime => Some(w[0].1),
                RangeFunction::LastOverTime => Some(w[w.len() - 1].1),
                RangeFunction::RateCounter => {
                    let ms: Vec<(i64, f64)> = w.iter().map(|p| (p.0 / 1_000_000, p.1)).collect();
                    functions::extrapolated(
                        &ms,
                        &[],
                        (start / 1_000_000, end / 1_000_000),
                        true,
                        true,
                    )
                }
                RangeFunction::AbsentOverTime => None,
                other => {
                    return Err(LogqlError::Invalid(format!(
                        "unsupported range function {other:?}"
                    )));
                }
            };
            if let Some(v) = v {
                out[i].push(Sample {
                    h: None,
                    labels: labels.clone(),
                    f: v,
                    drop_name: false,
                });
            }
        }
    }
    if f == RangeFunction::AbsentOverTime {
        let labels = Arc::new(Labels::from_pairs(
            r.log_query
                .selector
                .matchers
                .iter()
                .filter(|m| m.op == logql::MatchOp::Eq)
                .map(|m| (m.name.as_str(), m.value.as_str())),
        ));
        for (i, p) in present.iter().enumerate() {
            if !p {
                out[i].push(Sample {
                    h: None,
                    labels: labels.clone(),
                    f: 1.0,
                    drop_name: false,
                });
            }
        }
    }
    Ok(out)
}

/// The lines `q` selects, counted from their times and severities alone, into `series`:
/// false (and nothing added) when a label the query keeps is neither a stream label nor
/// given by the severity, since its values would be in the records' metadata.
async fn count_streams(
    engine: &LogqlEngine,
    q: &TimesQuery,
    keep: &[&String],
    stats: &mut ScanStats,
    series: &mut BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>>,
) -> Result<bool, LogqlError> {
    let Some(found) = engine
        .reader
        .log_times(q)
        .await
        .map_err(|e| LogqlError::Storage(e.to_string()))?
    else {
        return Err(too_many_lines(engine.max_lines));
    };
    let mut keys = Vec::with_capacity(found.streams.len());
    for s in &found.streams {
        let mut key: BTreeMap<String, String> = s
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        for &k in keep {
            if key.contains_key(k) {
                continue;
            }
            let value = match k.as_str() {
                "level" => level(s.severity_number, &s.severity_text),
                "severity_text" => Some(s.severity_text.clone()),
                _ => None,
            };
            match value.filter(|v| !v.is_empty()) {
                Some(v) => key.insert(k.clone(), v),
                None => return Ok(false),
            };
        }
        keys.push(key);
    }
    stats.lines += found.lines;
    stats.bytes += found.bytes;
    for (s, key) in found.streams.into_iter().zip(keys) {
        let points = series.entry(key).or_default();
        if q.sizes && s.sizes.len() != s.times.len() {
            return Err(LogqlError::Storage(
                "storage returned times without their line sizes".into(),
            ));
        }
        if q.sizes {
            points.extend(s.times.into_iter().zip(s.sizes).map(|(t, n)| (t, n as f64)));
        } else {
            points.extend(s.times.into_iter().map(|t| (t, 1.0)));
        }
    }
    Ok(true)
}

fn vectors(v: Vec<Instant>, what: &str) -> Result<Vec<Vec<Sample>>, LogqlError> {
    v.into_iter()
        .map(|i| match i {
            Instant::Vector(v) => Ok(v),
            _ => Err(LogqlError::Invalid(format!(
                "{what} requires a vector argument"
            ))),
        })
        .collect()
}

fn names(l: &[String]) -> NameList {
    NameList::new(l.iter().map(String::as_str).collect())
}

fn promql_err(e: crate::promql::PromqlError) -> LogqlError {
    LogqlError::Invalid(e.to_string())
}

/// Evaluates the query above its range aggregations, whose results `data` holds in order.
fn eval_with(
    q: &MetricQuery,
    steps: &[i64],
    data: &mut std::vec::IntoIter<Vec<Vec<Sample>>>,
) -> Result<Vec<Instant>, LogqlError> {
    Ok(match q {
        MetricQuery::Range(_) => data
            .next()
            .ok_or_else(|| LogqlError::Invalid("range aggregation without data".into()))?
            .into_iter()
            .map(Instant::Vector)
            .collect(),
        MetricQuery::Literal(f) => vec![Instant::Scalar(*f); steps.len()],
        MetricQuery::VectorLiteral(f) => steps
            .iter()
            .map(|_| {
                Instant::Vector(vec![Sample {
                    h: None,
                    labels: Arc::new(Labels::default()),
                    f: *f,
                    drop_name: false,
                }])
            })
            .collect(),
        MetricQuery::Vector(v) => {
            let inner = vectors(eval_with(&v.inner, steps, data)?, "a vector aggregation")?;
            let id = match v.function {
                AggregationFunction::Sort | AggregationFunction::SortDesc => {
                    let desc = v.function == AggregationFunction::SortDesc;
                    return Ok(inner
                        .into_iter()
                        .map(|mut s| {
                            s.sort_by(|a, b| {
                                let o = a.f.total_cmp(&b.f);
                                if desc { o.reverse() } else { o }
                            });
                            Instant::Vector(s)
                        })
                        .collect());
                }
                AggregationFunction::Sum => token::T_SUM,
                AggregationFunction::Avg => token::T_AVG,
                AggregationFunction::Min => token::T_MIN,
                AggregationFunction::Max => token::T_MAX,
                AggregationFunction::Stddev => token::T_STDDEV,
                AggregationFunction::Stdvar => token::T_STDVAR,
                AggregationFunction::Count => token::T_COUNT,
                AggregationFunction::Topk => token::T_TOPK,
                AggregationFunction::Bottomk => token::T_BOTTOMK,
                other => {
                    return Err(LogqlError::Invalid(format!(
                        "unsupported aggregation {other:?}"
                    )));
                }
            };
            let modifier = v.grouping.as_ref().map(|g| {
                if g.without {
                    LabelModifier::Exclude(names(&g.labels))
                } else {
                    LabelModifier::Include(names(&g.labels))
                }
            });
            let param = v.param.map(Instant::Scalar);
            let mut keys = aggregate::GroupKeys::default();
            inner
                .into_iter()
                .map(|s| {
                    aggregate::eval(
                        &TokenType::new(id),
                        modifier.as_ref(),
                        param.as_ref(),
                        s,
                        &mut keys,
                        &mut Vec::new(),
                    )
                    .map(Instant::Vector)
                    .map_err(promql_err)
                })
                .collect::<Result<_, _>>()?
        }
        MetricQuery::Binary(b) => {
            let left = eval_with(&b.left, steps, data)?;
            let right = eval_with(&b.right, steps, data)?;
            let id = match b.op {
                BinOp::Add => token::T_ADD,
                BinOp::Sub => token::T_SUB,
                BinOp::Mul => token::T_MUL,
                BinOp::Div => token::T_DIV,
                BinOp::Mod => token::T_MOD,
                BinOp::Pow => token::T_POW,
                BinOp::Eq => token::T_EQLC,
                BinOp::Neq => token::T_NEQ,
                BinOp::Gt => token::T_GTR,
                BinOp::Gte => token::T_GTE,
                BinOp::Lt => token::T_LSS,
                BinOp::Lte => token::T_LTE,
                BinOp::And => token::T_LAND,
                BinOp::Or => token::T_LOR,
                BinOp::Unless => token::T_LUNLESS,
                other => {
                    return Err(LogqlError::Invalid(format!(
                        "unsupported operator {other:?}"
                    )));
                }
            };
            if b.matching.as_ref().is_some_and(|m| m.grouped) {
                return Err(LogqlError::Invalid(
                    "group_left and group_right are not supported in LogQL queries".into(),
                ));
            }
            let set_op = matches!(b.op, BinOp::And | BinOp::Or | BinOp::Unless);
            let modifier = BinModifier {
                card: if set_op {
                    VectorMatchCardinality::ManyToMany
                } else {
                    VectorMatchCardinality::OneToOne
                },
                matching: b.matching.as_ref().map(|m| {
                    if m.on {
                        LabelModifier::Include(names(&m.labels))
                    } else {
                        LabelModifier::Exclude(names(&m.labels))
                    }
                }),
                return_bool: b.bool_modifier,
                fill_values: Default::default(),
            };
            let op = TokenType::new(id);
            left.into_iter()
                .zip(right)
                // Log metrics are floats only, so no operation is left out with a note.
                .map(|(l, r)| {
                    binary::eval(&op.to_string(), Some(&modifier), l, r, &mut Vec::new())
                        .map_err(promql_err)
                })
                .collect::<Result<_, _>>()?
        }
        MetricQuery::LabelReplace(l) => {
            let re = functions::anchored(&l.regex).map_err(|_| {
                LogqlError::Invalid(format!(
                    "invalid regular expression in label_replace(): {}",
                    l.regex
                ))
            })?;
            vectors(eval_with(&l.inner, steps, data)?, "label_replace")?
                .into_iter()
                .map(|v| {
                    Instant::Vector(
                        v.into_iter()
                            .map(|s| {
                                functions::replace_label(
                                    s,
                                    &re,
                                    &l.replacement,
                                    &l.src_label,
                                    &l.dst_label,
                                )
                            })
                            .collect(),
                    )
                })
                .collect()
        }
        other => {
            return Err(LogqlError::Invalid(format!(
                "unsupported expression {other:?}"
            )));
        }
    })
}

/// Evaluates a metric query at each step (nanoseconds).
pub(crate) async fn eval(
    engine: &LogqlEngine,
    q: &MetricQuery,
    steps: &[i64],
    stats: &mut ScanStats,
) -> Result<Vec<Instant>, LogqlError> {
    let mut keep = HashSet::from(["level".to_string()]);
    referenced(q, &mut keep);
    let mut rs = Vec::new();
    ranges(q, &mut rs);
    let mut data = Vec::with_capacity(rs.len());
    for r in rs {
        data.push(range_aggregation(engine, r, steps, &keep, stats).await?);
    }
    eval_with(q, steps, &mut data.into_iter())
}

/// Per-step values as series over time (milliseconds), sorted by labels.
pub(crate) fn into_matrix(values: Vec<Instant>, steps: &[i64]) -> LogqlResult {
    let mut series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    for (v, &t) in values.into_iter().zip(steps) {
        let t_ms = t.div_euclid(1_000_000);
        match v {
            Instant::Scalar(f) => series.entry(Labels::default()).or_default().push((t_ms, f)),
            Instant::Vector(samples) => {
                for s in samples {
                    series
                        .entry((*s.labels).clone())
                        .or_default()
                        .push((t_ms, s.f));
                }
            }
            Instant::String(_) => {}
        }
    }
    LogqlResult::Matrix(series.into_iter().collect())
}

/// The value at one instant, in evaluation order.
pub(crate) fn into_vector(values: Vec<Instant>, t_ns: i64) -> LogqlResult {
    let t_ms = t_ns.div_euclid(1_000_000);
    match values.into_iter().next() {
        Some(Instant::Scalar(f)) => LogqlResult::Scalar(t_ms, f),
        Some(Instant::Vector(samples)) => LogqlResult::Vector(
            samples
                .into_iter()
                .map(|s| ((*s.labels).clone(), t_ms, s.f))
                .collect(),
        ),
        _ => LogqlResult::Vector(Vec::new()),
    }
}

fn too_many_lines(max: u64) -> LogqlError {
    LogqlError::Limit(format!(
        "the query would read more than {max} log lines; narrow the stream selector or the time range"
    ))
}
