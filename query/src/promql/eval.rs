//! The evaluator: an expression is evaluated at a list of step timestamps; instant
//! queries have one step. Selectors pick the newest sample within the lookback window,
//! range selectors and subqueries provide a window of points per step.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant as Clock};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{Expr, VectorSelector};
use rustc_hash::FxHashMap;
use signalbox_storage::{Histogram, Labels, MetricsReader, ResetHint, is_stale_nan};

use super::error::{PromqlError, exec};
use super::fetch::{self, Ctx, Fetched, at_ms, offset_ms};
use super::position::{Positions, node_key};
use super::types::{
    Cursor, Instant, QueryResult, QueryValue, RangeInput, RangeSeries, Sample, Starts, Value,
    final_labels,
};
use super::{aggregate, binary, functions, histogram};
use super::{durations, escapes, extended, info, trim};

/// Limits and defaults of the engine.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back a selector looks for the newest sample.
    pub lookback: Duration,
    /// Samples held at once during one query before it is stopped.
    pub max_samples: usize,
    /// Points per series of a range query result.
    pub max_points_per_series: usize,
    pub timeout: Duration,
    /// Step of subqueries written without one (`[5m:]`).
    pub default_subquery_step: Duration,
    /// Whether `rate`, `increase`, `irate`, `resets` and `start_timestamp` read the
    /// samples' start times (off by default, as in Prometheus).
    pub start_times: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback: Duration::from_secs(300),
            max_samples: 50_000_000,
            max_points_per_series: 11_000,
            timeout: Duration::from_secs(120),
            default_subquery_step: Duration::from_secs(60),
            start_times: false,
        }
    }
}

/// The PromQL engine. Its clones share its metrics.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    opts: EngineOptions,
    stats: EngineStats,
}

/// What the engine reports about itself (on `/metrics`).
#[derive(Clone, Debug, Default)]
struct EngineStats {
    /// Evaluations in progress.
    running: Gauge,
    /// Evaluations stopped because whoever asked went away.
    canceled: Counter,
}

/// Sets the flag when dropped: an evaluation on another thread sees that the future
/// waiting for it is gone.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Counts an evaluation as running while it lives.
struct Running<'a>(&'a Gauge);

impl<'a> Running<'a> {
    fn start(g: &'a Gauge) -> Running<'a> {
        g.inc();
        Running(g)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub(crate) struct Ev<'a> {
    pub(crate) data: &'a Fetched,
    pub(crate) times: Vec<i64>,
    pub(crate) query_start: i64,
    pub(crate) query_end: i64,
    /// Step of the query (0 for instant queries), for `step()`.
    pub(crate) query_step: i64,
    pub(crate) opts: &'a EngineOptions,
    pub(crate) started: Clock,
    /// Set when whoever asked for the query went away.
    canceled: &'a AtomicBool,
    notes: &'a Notes,
    pub(crate) positions: &'a Positions,
    /// The node whose position annotations get, while one is being evaluated.
    pub(crate) note_at: Cell<Option<usize>>,
}

/// What a query's evaluation gathers besides its value: warnings and infos (each a
/// message and the ` (line:col)` it is given at) and the most samples held at once.
#[derive(Default)]
struct Notes {
    warnings: RefCell<Vec<(String, String)>>,
    infos: RefCell<Vec<(String, String)>>,
    peak: Cell<usize>,
}

impl Notes {
    /// Adds a message once; given again, it takes the later position, as in Prometheus.
    fn add(to: &RefCell<Vec<(String, String)>>, msg: String, at: String) {
        let mut all = to.borrow_mut();
        match all.iter_mut().find(|(m, _)| *m == msg) {
            Some(known) => known.1 = at,
            None => all.push((msg, at)),
        }
    }

    /// The warnings and the infos as the API gives them.
    fn into_lists(self) -> (Vec<String>, Vec<String>) {
        let join = |v: RefCell<Vec<(String, String)>>| {
            v.into_inner().into_iter().map(|(m, at)| m + &at).collect()
        };
        (join(self.warnings), join(self.infos))
    }
}

/// The syntax tree (on the heap: fetched samples and positions are keyed by node
/// addresses, which must not change when the tree moves to the evaluating thread) and
/// the positions of its nodes in `query`. Duration expressions are computed for the
/// query's step and range and `anchored`/`smoothed` moved into their selectors first,
/// since `promql-parser` reads neither.
fn parse_query(query: &str, step: i64, range: i64) -> Result<(Box<Expr>, Positions), PromqlError> {
    // The trim operators' replacements keep every offset where it was.
    let (trimmed, trims) = trim::mark(query);
    let durations = durations::resolve(&trimmed.text, step, range)?;
    let marked = extended::mark(&durations.text)?;
    let info = info::mark(&marked.text);
    let escaped = escapes::mark(&info.text);
    let expr = promql_parser::parser::parse(&escaped.text)
        .map(Box::new)
        .map_err(PromqlError::Parse)?;
    let mut positions = Positions::of(&escaped.text, &expr).relocated(query, |p| {
        durations.back(marked.back(info.back(escaped.back(p))))
    });
    if !positions.mark_trims(&trims) {
        return Err(PromqlError::Parse(
            "the trim operators </ and >/ are not supported in this form of query".into(),
        ));
    }
    if !trims.is_empty() {
        check_trims(&expr, &positions)?;
    }
    Ok((expr, positions))
}

/// Refuses what Prometheus' parser refuses about trims (`bool`), before any data is read.
fn check_trims(e: &Expr, positions: &Positions) -> Result<(), PromqlError> {
    match e {
        Expr::Binary(b) => {
            if positions.trim(node_key(e)).is_some() {
                trim::check_modifier(b.modifier.as_ref().is_some_and(|m| m.return_bool))?;
            }
            check_trims(&b.lhs, positions)?;
            check_trims(&b.rhs, positions)
        }
        Expr::Paren(p) => check_trims(&p.expr, positions),
        Expr::Unary(u) => check_trims(&u.expr, positions),
        Expr::Subquery(s) => check_trims(&s.expr, positions),
        Expr::Aggregate(a) => {
            check_trims(&a.expr, positions)?;
            a.param
                .as_deref()
                .map_or(Ok(()), |p| check_trims(p, positions))
        }
        Expr::Call(c) => c
            .args
            .args
            .iter()
            .try_for_each(|a| check_trims(a, positions)),
        _ => Ok(()),
    }
}

/// The storage matchers of every selector in `query` (one set per `or` group), as the
/// exemplar API looks series up by them.
pub fn selector_matchers(query: &str) -> Result<Vec<Vec<signalbox_storage::Matcher>>, PromqlError> {
    fn walk(e: &Expr, out: &mut Vec<Vec<signalbox_storage::Matcher>>) -> Result<(), PromqlError> {
        let mut selector = |vs: &VectorSelector| -> Result<(), PromqlError> {
            let groups = fetch::or_groups(vs)?;
            if groups.is_empty() {
                out.push(fetch::storage_matchers(&vs.matchers, &vs.name)?);
            }
            out.extend(groups);
            Ok(())
        };
        match e {
            Expr::VectorSelector(vs) => selector(vs),
            Expr::MatrixSelector(ms) => selector(&ms.vs),
            Expr::Subquery(sq) => walk(&sq.expr, out),
            Expr::Paren(p) => walk(&p.expr, out),
            Expr::Unary(u) => walk(&u.expr, out),
            Expr::Binary(b) => {
                walk(&b.lhs, out)?;
                walk(&b.rhs, out)
            }
            Expr::Aggregate(a) => {
                walk(&a.expr, out)?;
                a.param.as_deref().map_or(Ok(()), |p| walk(p, out))
            }
            // info()'s second argument selects labels of info series, not series.
            Expr::Call(c) if c.func.name == "info" => {
                c.args.args.first().map_or(Ok(()), |a| walk(a, out))
            }
            Expr::Call(c) => c.args.args.iter().try_for_each(|a| walk(a, out)),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Ok(()),
        }
    }
    let (expr, _) = parse_query(query, 0, 0)?;
    let mut out = Vec::new();
    walk(&expr, &mut out)?;
    Ok(out)
}

/// Whether `query` is a valid PromQL expression (as the engine reads it, with duration
/// expressions, the `anchored`/`smoothed` modifiers and the trim operators).
pub fn check(query: &str) -> Result<(), PromqlError> {
    parse_query(query, 0, 0).map(|_| ())
}

fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        other => other,
    }
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Engine {
        Engine {
            opts,
            stats: EngineStats::default(),
        }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Registers the engine's metrics: evaluations in progress and those canceled.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "promql_queries",
            "PromQL evaluations in progress",
            self.stats.running.clone(),
        );
        registry.register(
            "promql_queries_canceled",
            "PromQL evaluations stopped because the client went away or its timeout passed",
            self.stats.canceled.clone(),
        );
    }

    async fn prepare(
        &self,
        reader: &dyn MetricsReader,
        expr: &Expr,
        start: i64,
        end: i64,
    ) -> Result<Fetched, PromqlError> {
        let cx = Ctx {
            query_start: start,
            query_end: end,
            lookback: self.opts.lookback.as_millis() as i64,
        };
        let mut needs = Vec::new();
        fetch::collect(expr, start, end, &cx, &mut needs)?;
        let mut data = fetch::fetch(reader, needs).await?;
        fetch::detect_resets(expr, &mut data);
        Ok(data)
    }

    /// The evaluator of a whole query over `times`; `range` is its start, end and step
    /// (0 for an instant query).
    fn top_level<'a>(
        &'a self,
        data: &'a Fetched,
        positions: &'a Positions,
        notes: &'a Notes,
        canceled: &'a AtomicBool,
        times: Vec<i64>,
        (query_start, query_end, query_step): (i64, i64, i64),
    ) -> Ev<'a> {
        Ev {
            data,
            times,
            query_start,
            query_end,
            query_step,
            opts: &self.opts,
            started: Clock::now(),
            canceled,
            notes,
            positions,
            note_at: Cell::new(None),
        }
    }

    /// Runs an evaluation, which does not yield. One that may take long runs on a thread
    /// of the blocking pool, so that it holds up neither ingestion nor other requests,
    /// and stops at its next step when the future waiting for it is dropped (the
    /// client disconnected or a timeout passed). A short one, where the hand-over would
    /// cost a noticeable part of its time, runs in place.
    async fn evaluate<T: Send + 'static>(
        &self,
        long: bool,
        f: impl FnOnce(&Engine, &AtomicBool) -> Result<T, PromqlError> + Send + 'static,
    ) -> Result<T, PromqlError> {
        if !long || tokio::runtime::Handle::try_current().is_err() {
            let _running = Running::start(&self.stats.running);
            return f(self, &AtomicBool::new(false));
        }
        let canceled = Arc::new(AtomicBool::new(false));
        let _cancel = CancelOnDrop(canceled.clone());
        let engine = self.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let _running = Running::start(&engine.stats.running);
            let r = f(&engine, &canceled);
            if matches!(r, Err(PromqlError::Canceled(_))) {
                engine.stats.canceled.inc();
            }
            r
        })
        .await;
        joined.unwrap_or_else(|e| {
            tracing::error!(error = %e, "a PromQL evaluation failed");
            Err(exec("the query's evaluation failed unexpectedly"))
        })
    }

    /// Evaluates `query` at time `t` (milliseconds).
    pub async fn instant(
        &self,
        reader: &dyn MetricsReader,
        query: &str,
        t: i64,
    ) -> Result<QueryResult, PromqlError> {
        let (expr, positions) = parse_query(query, 0, 0)?;
        let data = self.prepare(reader, &expr, t, t).await?;
        let long = may_take_long(&expr, &data, 1);
        self.evaluate(long, move |engine, canceled| {
            let notes = Notes::default();
            let ev = engine.top_level(&data, &positions, &notes, canceled, vec![t], (t, t, 0));
            let value = match unwrap_parens(&expr) {
                e @ (Expr::MatrixSelector(_) | Expr::Subquery(_)) => {
                    let r = ev.eval_range(e)?;
                    let modifier = extended::of_range(e);
                    let lookback = engine.opts.lookback.as_millis() as i64;
                    let mut out: Vec<(Labels, Vec<(i64, Value)>)> = Vec::new();
                    for s in &r.series {
                        let labels = if s.drop_name {
                            super::types::without_name(&s.labels)
                        } else {
                            (*s.labels).clone()
                        };
                        let points = match modifier {
                            None => s.values_in(r.windows[0]),
                            Some(m) => extended::range_points(s, r.windows[0], m, lookback)?
                                .into_iter()
                                .map(|(t, v)| (t, Value::Float(v)))
                                .collect(),
                        };
                        if !points.is_empty() {
                            out.push((labels, points));
                        }
                    }
                    out.sort_by(|a, b| a.0.cmp(&b.0));
                    QueryValue::Matrix(out)
                }
                e => match ev.eval(e)?.pop() {
                    Some(Instant::Scalar(v)) => QueryValue::Scalar { t, v },
                    // A byte outside UTF-8 is answered as Go's JSON encoder writes it.
                    Some(Instant::String(v)) => QueryValue::String {
                        t,
                        v: escapes::shown(&v),
                    },
                    Some(Instant::Vector(v)) => {
                        let mut out = Vec::with_capacity(v.len());
                        let mut seen = std::collections::HashSet::new();
                        for s in &v {
                            let l = final_labels(s);
                            if !seen.insert(l.clone()) {
                                return Err(exec(
                                    "vector cannot contain metrics with the same labelset",
                                ));
                            }
                            out.push((l, t, s.value()));
                        }
                        QueryValue::Vector(out)
                    }
                    None => QueryValue::Vector(Vec::new()),
                },
            };
            let (warnings, infos) = notes.into_lists();
            Ok(QueryResult {
                value,
                warnings,
                infos,
            })
        })
        .await
    }

    /// Evaluates `query` at every step from `start` to `end` (milliseconds).
    pub async fn range(
        &self,
        reader: &dyn MetricsReader,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, PromqlError> {
        if step <= 0 {
            return Err(PromqlError::Parse(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(PromqlError::Parse(
                "end timestamp must not be before start time".into(),
            ));
        }
        if (end - start) / step + 1 > self.opts.max_points_per_series as i64 {
            return Err(PromqlError::Parse(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
            ));
        }
        let (expr, positions) = parse_query(query, step, end - start)?;
        match expr.value_type() {
            ValueType::Vector | ValueType::Scalar => {}
            other => {
                return Err(PromqlError::Parse(format!(
                    "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                    type_name(&other)
                )));
            }
        }
        let data = self.prepare(reader, &expr, start, end).await?;
        let steps = ((end - start) / step + 1) as usize;
        let long = may_take_long(&expr, &data, steps);
        self.evaluate(long, move |engine, canceled| {
            let times: Vec<i64> = (0..)
                .map(|i| start + i * step)
                .take_while(|t| *t <= end)
                .collect();
            let notes = Notes::default();
            let ev = engine.top_level(
                &data,
                &positions,
                &notes,
                canceled,
                times.clone(),
                (start, end, step),
            );
            let vals = ev.eval(&expr)?;
            let mut series: Vec<(Labels, Vec<(i64, Value)>)> = Vec::new();
            let mut slots = SeriesSlots::default();
            let scalar = Arc::new(Labels::default());
            for (t, v) in times.iter().zip(&vals) {
                match v {
                    Instant::Scalar(f) => {
                        let (i, new) = slots.slot(&scalar, false, Labels::default);
                        if let Some(l) = new {
                            series.push((l, Vec::new()));
                        }
                        series[i].1.push((*t, Value::Float(*f)));
                    }
                    Instant::Vector(samples) => {
                        for s in samples {
                            let (i, new) = slots.slot(&s.labels, s.drop_name, || final_labels(s));
                            if let Some(l) = new {
                                series.push((l, Vec::new()));
                            }
                            let pts = &mut series[i].1;
                            if pts.last().is_some_and(|p| p.0 == *t) {
                                return Err(exec(
                                    "vector cannot contain metrics with the same labelset",
                                ));
                            }
                            pts.push((*t, s.value()));
                        }
                    }
                    Instant::String(_) => {
                        return Err(exec("string values are not allowed in range queries"));
                    }
                }
            }
            series.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let (warnings, infos) = notes.into_lists();
            Ok(QueryResult {
                value: QueryValue::Matrix(series),
                warnings,
                infos,
            })
        })
        .await
    }
}

/// Samples plus series × steps above which an evaluation counts as long (a few
/// milliseconds and more).
const LONG_EVALUATION: usize = 100_000;

/// Whether evaluating `expr` over `data` at `steps` steps may take long: much data,
/// many points, or a subquery (whose inner steps may be many even over little data).
fn may_take_long(expr: &Expr, data: &Fetched, steps: usize) -> bool {
    fn has_subquery(e: &Expr) -> bool {
        match e {
            Expr::Subquery(_) => true,
            Expr::Paren(p) => has_subquery(&p.expr),
            Expr::Unary(u) => has_subquery(&u.expr),
            Expr::Binary(b) => has_subquery(&b.lhs) || has_subquery(&b.rhs),
            Expr::Aggregate(a) => {
                has_subquery(&a.expr) || a.param.as_deref().is_some_and(has_subquery)
            }
            Expr::Call(c) => c.args.args.iter().any(|a| has_subquery(a)),
            _ => false,
        }
    }
    let series: usize = data.values().map(Vec::len).sum();
    let samples: usize = data
        .values()
        .flatten()
        .map(|s| s.samples.len() + s.histograms.len())
        .sum();
    samples + series.max(1) * steps > LONG_EVALUATION || has_subquery(expr)
}

/// Puts the samples of successive steps into output series: by the address of a
/// sample's label set first (steps share one per input series, so labels are cut and
/// compared once per label set, not once per point), by its key only for an address not
/// seen before. The samples must stay alive while it is used, so that an address stands
/// for one label set.
struct SeriesSlots<K> {
    by_addr: FxHashMap<(usize, bool), usize>,
    /// Label values come from outside: hashed with the standard (keyed) hasher.
    by_key: HashMap<K, usize>,
}

impl<K> Default for SeriesSlots<K> {
    fn default() -> Self {
        SeriesSlots {
            by_addr: FxHashMap::default(),
            by_key: HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone> SeriesSlots<K> {
    /// The slot of a sample, and its key when the slot is new (slots are numbered from
    /// 0 in the order they are made).
    fn slot(
        &mut self,
        labels: &Arc<Labels>,
        drop_name: bool,
        key: impl FnOnce() -> K,
    ) -> (usize, Option<K>) {
        let addr = (Arc::as_ptr(labels) as usize, drop_name);
        if let Some(&i) = self.by_addr.get(&addr) {
            return (i, None);
        }
        let k = key();
        let (i, new) = match self.by_key.get(&k) {
            Some(&i) => (i, None),
            None => {
                let i = self.by_key.len();
                self.by_key.insert(k.clone(), i);
                (i, Some(k))
            }
        };
        self.by_addr.insert(addr, i);
        (i, new)
    }
}

/// A series' native histogram samples for evaluation. One that evaluation cannot work
/// with (an unknown schema, buckets past any float) is left out; ingestion rejects
/// those.
fn histogram_points(s: &signalbox_storage::Series) -> Vec<(i64, Arc<Histogram>)> {
    s.histograms
        .iter()
        .filter(|x| x.h.is_valid())
        .map(|x| (x.t, Arc::new(x.h.clone())))
        .collect()
}

pub(crate) fn type_name(t: &ValueType) -> &'static str {
    match t {
        ValueType::Vector => "instant vector",
        ValueType::Scalar => "scalar",
        ValueType::Matrix => "range vector",
        ValueType::String => "string",
    }
}

impl Ev<'_> {
    /// Stops an evaluation that ran out of time or whose caller went away.
    pub(crate) fn check_time(&self) -> Result<(), PromqlError> {
        if self.canceled.load(Ordering::Relaxed) {
            return Err(PromqlError::Canceled("query execution"));
        }
        if self.started.elapsed() > self.opts.timeout {
            return Err(PromqlError::Timeout("query execution"));
        }
        Ok(())
    }

    pub(crate) fn count_samples(&self, n: usize) -> Result<(), PromqlError> {
        self.notes.peak.set(self.notes.peak.get().max(n));
        if n > self.opts.max_samples {
            return Err(PromqlError::Limit(
                "query processing would load too many samples into memory in query execution"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Adds annotations given as full messages, infos and warnings by their prefix.
    pub(crate) fn annotate(&self, notes: Vec<String>) {
        for n in notes {
            if n.starts_with("PromQL info") {
                self.info(n);
            } else {
                self.warn(n);
            }
        }
    }

    pub(crate) fn warn(&self, msg: String) {
        Notes::add(&self.notes.warnings, msg, self.position());
    }

    pub(crate) fn info(&self, msg: String) {
        Notes::add(&self.notes.infos, msg, self.position());
    }

    /// The position of the node being evaluated, as annotations end in it.
    fn position(&self) -> String {
        self.note_at
            .get()
            .map(|k| self.positions.suffix(k))
            .unwrap_or_default()
    }

    /// Runs `f` with annotations placed at the node `key`.
    pub(crate) fn noting_at<T>(&self, key: usize, f: impl FnOnce() -> T) -> T {
        let before = self.note_at.replace(Some(key));
        let out = f();
        self.note_at.set(before);
        out
    }

    pub(crate) fn steps(&self) -> usize {
        self.times.len()
    }

    /// Evaluates an expression of scalar, vector or string type at every step.
    pub(crate) fn eval(&self, e: &Expr) -> Result<Vec<Instant>, PromqlError> {
        self.check_time()?;
        match e {
            Expr::NumberLiteral(n) => Ok(vec![Instant::Scalar(n.val); self.steps()]),
            Expr::StringLiteral(s) => Ok(vec![Instant::String(s.val.clone()); self.steps()]),
            Expr::Paren(p) => self.eval(&p.expr),
            // Annotations of a selector (those of `smoothed`) are placed at it.
            Expr::VectorSelector(vs) => self
                .noting_at(node_key(e), || self.select(vs))
                .map(|v| v.into_iter().map(Instant::Vector).collect()),
            Expr::Unary(u) => Ok(self
                .eval(&u.expr)?
                .into_iter()
                .map(|v| match v {
                    Instant::Scalar(f) => Instant::Scalar(-f),
                    Instant::Vector(s) => Instant::Vector(
                        s.into_iter()
                            .map(|x| Sample {
                                f: -x.f,
                                h: x.h.map(|h| Arc::new(histogram::scale(&h, -1.0))),
                                drop_name: true,
                                ..x
                            })
                            .collect(),
                    ),
                    other => other,
                })
                .collect()),
            Expr::Binary(b) => {
                let op = match self.positions.trim(node_key(e)) {
                    Some(t) => t.to_string(),
                    None => b.op.to_string(),
                };
                let lhs = self.eval(&b.lhs)?;
                let rhs = self.eval(&b.rhs)?;
                let mut notes = Vec::new();
                let out = lhs
                    .into_iter()
                    .zip(rhs)
                    .map(|(l, r)| binary::eval(&op, b.modifier.as_ref(), l, r, &mut notes))
                    .collect();
                self.noting_at(node_key(e), || self.annotate(notes));
                out
            }
            Expr::Aggregate(a) => {
                let input = self.eval(&a.expr)?;
                let param = match &a.param {
                    Some(p) => Some(self.eval(p)?),
                    None => None,
                };
                let mut notes = Vec::new();
                let mut keys = aggregate::GroupKeys::default();
                let out = input
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let Instant::Vector(samples) = v else {
                            return Err(exec("aggregation over a non-vector"));
                        };
                        let p = param.as_ref().map(|p| &p[i]);
                        aggregate::eval(
                            &a.op,
                            a.modifier.as_ref(),
                            p,
                            samples,
                            &mut keys,
                            &mut notes,
                        )
                        .map(Instant::Vector)
                    })
                    .collect();
                // Warnings about the parameter point at it, others at the input.
                if let (Some(p), Some(values)) = (&a.param, &param) {
                    let params: Vec<f64> = values
                        .iter()
                        .filter_map(|v| match v {
                            Instant::Scalar(f) => Some(*f),
                            _ => None,
                        })
                        .collect();
                    let op = a.op.to_string();
                    self.noting_at(node_key(p), || {
                        self.annotate(aggregate::param_warnings(&op, &params))
                    });
                }
                self.noting_at(node_key(&a.expr), || self.annotate(notes));
                out
            }
            Expr::Call(c) => {
                self.noting_at(functions::annotated_node(e, c), || functions::call(self, c))
            }
            Expr::MatrixSelector(_) | Expr::Subquery(_) => Err(PromqlError::Parse(
                "range vector cannot be evaluated as an instant value here".into(),
            )),
            Expr::Extension(_) => Err(exec("unsupported expression")),
        }
    }

    pub(crate) fn series_of(&self, vs: &VectorSelector) -> &[signalbox_storage::Series] {
        self.data
            .get(&fetch::key(vs))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// An instant vector selector at every step.
    pub(crate) fn select(&self, vs: &VectorSelector) -> Result<Vec<Vec<Sample>>, PromqlError> {
        if extended::of(vs) == Some(extended::Modifier::Smoothed) {
            return extended::smoothed_select(self, vs);
        }
        Ok(self
            .select_with_times(vs)?
            .into_iter()
            .map(|v| v.into_iter().map(|(s, _)| s).collect())
            .collect())
    }

    /// Like `select`, with the timestamp of each selected sample. A series gives its
    /// newest sample within the lookback window, float or native histogram; a stale
    /// marker as the newest sample hides the series.
    pub(crate) fn select_with_times(
        &self,
        vs: &VectorSelector,
    ) -> Result<Vec<Vec<(Sample, i64)>>, PromqlError> {
        let off = offset_ms(&vs.offset);
        let at = at_ms(&vs.at, self.query_start, self.query_end);
        self.newest_samples(self.series_of(vs), at, off)
    }

    /// Per step, each series' newest sample within the lookback window before the step
    /// (or before `at`, when set), moved back by `off`, with its timestamp. The samples
    /// of one series share one label set across steps.
    pub(crate) fn newest_samples<S: std::borrow::Borrow<signalbox_storage::Series>>(
        &self,
        series: &[S],
        at: Option<i64>,
        off: i64,
    ) -> Result<Vec<Vec<(Sample, i64)>>, PromqlError> {
        let series: Vec<&signalbox_storage::Series> = series.iter().map(|s| s.borrow()).collect();
        let labels: Vec<Arc<Labels>> = series.iter().map(|s| Arc::new(s.labels.clone())).collect();
        let hists: Vec<Vec<(i64, Arc<Histogram>)>> =
            series.iter().map(|s| histogram_points(s)).collect();
        let lookback = self.opts.lookback.as_millis() as i64;
        let mut cursors = vec![(Cursor::default(), Cursor::default()); series.len()];
        let mut out = Vec::with_capacity(self.steps());
        for (step, &ts) in self.times.iter().enumerate() {
            if step % 64 == 0 {
                self.check_time()?;
            }
            let t = at.unwrap_or(ts) - off;
            let mut v = Vec::new();
            for (((s, l), hs), (cf, ch)) in series.iter().zip(&labels).zip(&hists).zip(&mut cursors)
            {
                let i = cf.upto(&s.samples, |x| x.t, t);
                let f = i.checked_sub(1).map(|i| s.samples[i]);
                let j = ch.upto(hs, |h| h.0, t);
                let h = j.checked_sub(1).map(|j| (hs[j].0, &hs[j].1));
                let picked = match (f, h) {
                    (Some(f), Some((ht, h))) if ht > f.t => Some((None, Some(h), ht)),
                    (Some(f), _) => Some((Some(f.v), None, f.t)),
                    (None, Some((ht, h))) => Some((None, Some(h), ht)),
                    (None, None) => None,
                };
                let Some((f, h, st)) = picked else {
                    continue;
                };
                if st <= t - lookback || f.is_some_and(is_stale_nan) {
                    continue;
                }
                v.push((
                    Sample {
                        labels: l.clone(),
                        f: f.unwrap_or(0.0),
                        h: h.cloned(),
                        drop_name: false,
                    },
                    st,
                ));
            }
            self.count_samples(v.len())?;
            out.push(v);
        }
        Ok(out)
    }

    /// The series fetched for a selector with all their points (staleness markers
    /// and invalid histograms left out).
    pub(crate) fn range_series_of(&self, vs: &VectorSelector) -> Vec<RangeSeries> {
        self.series_of(vs)
            .iter()
            .map(|s| {
                let points: Vec<(i64, f64)> = s
                    .samples
                    .iter()
                    .filter(|x| !is_stale_nan(x.v))
                    .map(|x| (x.t, x.v))
                    .collect();
                let hists = histogram_points(s);
                let starts = if self.opts.start_times {
                    Starts::of(&s.starts, &points, &hists)
                } else {
                    Starts::default()
                };
                RangeSeries {
                    labels: Arc::new(s.labels.clone()),
                    points,
                    hists,
                    starts,
                    drop_name: false,
                }
            })
            .collect()
    }

    /// A range vector argument (range selector or subquery): its series and per-step windows.
    pub(crate) fn eval_range(&self, e: &Expr) -> Result<RangeInput, PromqlError> {
        match unwrap_parens(e) {
            Expr::MatrixSelector(ms) => {
                let vs = &ms.vs;
                let range = ms.range.as_millis() as i64;
                let off = offset_ms(&vs.offset);
                let at = at_ms(&vs.at, self.query_start, self.query_end);
                let series = self.range_series_of(vs);
                let windows: Vec<(i64, i64)> = self
                    .times
                    .iter()
                    .map(|&ts| {
                        let t = at.unwrap_or(ts) - off;
                        (t - range, t)
                    })
                    .collect();
                if let Some(w) = windows.first() {
                    self.count_samples(
                        series
                            .iter()
                            .map(|s| s.window(*w).len() + s.hist_window(*w).len())
                            .sum(),
                    )?;
                }
                Ok(RangeInput { series, windows })
            }
            Expr::Subquery(sq) => {
                let off = offset_ms(&sq.offset);
                let at = at_ms(&sq.at, self.query_start, self.query_end);
                let range = sq.range.as_millis() as i64;
                let step = sq
                    .step
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(self.opts.default_subquery_step.as_millis() as i64)
                    .max(1);
                let first = at.unwrap_or(self.times[0]);
                let last = at.unwrap_or(*self.times.last().unwrap_or(&first));
                // The first inner step is the first multiple of the step inside the window.
                let start = (first - off - range).div_euclid(step) * step;
                let start = if start < first - off - range {
                    start + step
                } else {
                    start
                };
                let end = last - off;
                // Every inner step holds at least its timestamp: a subquery of more steps
                // than samples allowed is refused before anything is allocated for it.
                if end >= start {
                    self.count_samples(((end - start) / step + 1) as usize)?;
                }
                let times: Vec<i64> = (0..)
                    .map(|i| start + i * step)
                    .take_while(|t| *t <= end)
                    .collect();
                let inner = Ev {
                    data: self.data,
                    times: times.clone(),
                    query_start: self.query_start,
                    query_end: self.query_end,
                    query_step: self.query_step,
                    opts: self.opts,
                    started: self.started,
                    canceled: self.canceled,
                    notes: self.notes,
                    positions: self.positions,
                    note_at: Cell::new(None),
                };
                let vals = inner.eval(&sq.expr)?;
                let mut series: Vec<RangeSeries> = Vec::new();
                let mut slots = SeriesSlots::default();
                let scalar = Arc::new(Labels::default());
                for (i, (t, v)) in times.iter().zip(&vals).enumerate() {
                    if i % 1024 == 0 {
                        self.check_time()?;
                    }
                    let mut put = |labels: &Arc<Labels>,
                                   drop_name: bool,
                                   f: f64,
                                   h: &Option<Arc<Histogram>>| {
                        let (i, new) =
                            slots.slot(labels, drop_name, || ((**labels).clone(), drop_name));
                        if new.is_some() {
                            series.push(RangeSeries {
                                labels: labels.clone(),
                                points: Vec::new(),
                                hists: Vec::new(),
                                starts: Starts::default(),
                                drop_name,
                            });
                        }
                        match h {
                            Some(h) => series[i].hists.push((*t, without_reset_hint(h))),
                            None => series[i].points.push((*t, f)),
                        }
                    };
                    match v {
                        Instant::Scalar(f) => put(&scalar, false, *f, &None),
                        Instant::Vector(s) => {
                            for x in s {
                                put(&x.labels, x.drop_name, x.f, &x.h);
                            }
                        }
                        Instant::String(_) => return Err(exec("subquery over a string")),
                    }
                }
                series.sort_by(|a, b| (&a.labels, a.drop_name).cmp(&(&b.labels, b.drop_name)));
                let windows = self
                    .times
                    .iter()
                    .map(|&ts| {
                        let t = at.unwrap_or(ts) - off;
                        (t - range, t)
                    })
                    .collect();
                Ok(RangeInput { series, windows })
            }
            _ => Err(PromqlError::Parse("expected a range vector".into())),
        }
    }
}

/// A subquery's point with a `Reset` or `NotReset` hint made `Unknown`: its points need
/// not be consecutive samples (a step may skip some or repeat one), so resets are found
/// from the values, as Prometheus does.
fn without_reset_hint(h: &Arc<Histogram>) -> Arc<Histogram> {
    match h.hint {
        ResetHint::Reset | ResetHint::NotReset => Arc::new(Histogram {
            hint: ResetHint::Unknown,
            ..(**h).clone()
        }),
        _ => h.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signalbox_storage::Sample as Point;

    /// `n` series of `per` samples each.
    fn data(n: usize, per: usize) -> Fetched {
        let series = (0..n)
            .map(|_| signalbox_storage::Series {
                samples: (0..per as i64).map(|t| Point { t, v: 1.0 }).collect(),
                ..Default::default()
            })
            .collect();
        Fetched::from([(1, series)])
    }

    /// Nested subqueries over a week at one-second steps: billions of points visited,
    /// far longer than any test waits, over no stored data at all.
    const ENDLESS: &str = "max_over_time(max_over_time(vector(1)[1d:1s])[7d:1s])";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_evaluation_stops_when_its_caller_goes_away() {
        let engine = Engine::default();
        let store = signalbox_storage::MemStore::new();
        let t = 30 * 86_400_000;
        let gone = tokio::time::timeout(
            Duration::from_millis(300),
            engine.instant(&store, ENDLESS, t),
        )
        .await;
        assert!(gone.is_err(), "the evaluation finished: {gone:?}");
        // The evaluation runs on another thread until it sees the flag at its next step.
        let deadline = Clock::now() + Duration::from_secs(120);
        while engine.stats.canceled.get() == 0 || engine.stats.running.get() > 0 {
            assert!(Clock::now() < deadline, "the evaluation did not stop");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(engine.stats.canceled.get(), 1);
        // A long query that completes (a subquery runs on another thread) is not
        // counted as canceled.
        let r = engine
            .instant(&store, "max_over_time(vector(1)[1m:1s])", t)
            .await
            .unwrap();
        assert!(matches!(r.value, QueryValue::Vector(ref v) if v.len() == 1));
        assert_eq!(engine.stats.canceled.get(), 1);
        assert_eq!(engine.stats.running.get(), 0);
    }

    /// A long evaluation moves the syntax tree to another thread; the samples fetched
    /// for a selector at its root must still be found there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_evaluation_of_a_bare_selector_finds_its_samples() {
        use signalbox_storage::{IngestSink, MetricsBatch, SeriesPoints};
        let store = signalbox_storage::MemStore::new();
        let mut batch = MetricsBatch::default();
        batch.series.push(SeriesPoints {
            starts: Vec::new(),
            labels: Labels::from_pairs([("__name__", "x")]),
            samples: (0..150_000).map(|i| Point { t: i, v: i as f64 }).collect(),
            histograms: vec![],
            exemplars: Vec::new(),
        });
        store.write_metrics(batch).await.unwrap();
        let engine = Engine::default();
        let r = engine.instant(&store, "x[1d]", 200_000).await.unwrap();
        assert!(
            matches!(&r.value, QueryValue::Matrix(m) if m.len() == 1 && m[0].1.len() == 150_000),
            "{:?}",
            r.warnings
        );
        let r = engine.instant(&store, "x", 150_000).await.unwrap();
        assert!(matches!(&r.value, QueryValue::Vector(v) if v.len() == 1));
    }

    /// Annotations of a query whose text is rewritten before parsing (duration
    /// expressions, `anchored`) are placed in the text as written.
    #[tokio::test]
    async fn annotation_positions_refer_to_the_query_as_written() {
        use signalbox_storage::{IngestSink, MetricsBatch, SeriesPoints};
        let store = signalbox_storage::MemStore::new();
        let mut batch = MetricsBatch::default();
        for name in ["m", "n"] {
            batch.series.push(SeriesPoints {
                starts: Vec::new(),
                labels: Labels::from_pairs([("__name__", name)]),
                samples: (0..10)
                    .map(|i| Point {
                        t: i * 10_000,
                        v: i as f64,
                    })
                    .collect(),
                histograms: vec![],
                exemplars: Vec::new(),
            });
        }
        store.write_metrics(batch).await.unwrap();
        let engine = Engine::default();
        let q = "rate(m[1m] anchored) + rate(n[1m])";
        let i = engine.instant(&store, q, 90_000).await.unwrap().infos;
        assert!(i.iter().any(|x| x.ends_with("\"n\" (1:29)")), "{i:?}");
        assert!(i.iter().any(|x| x.ends_with("\"m\" (1:6)")), "{i:?}");
        let q = "rate(n[2m*15]) + rate(m[1m])";
        let i = engine.instant(&store, q, 90_000).await.unwrap().infos;
        assert!(i.iter().any(|x| x.ends_with("\"m\" (1:23)")), "{i:?}");
    }

    proptest::proptest! {
        /// Any text goes through the rewrites before parsing (trims, duration
        /// expressions, extended ranges) and the parser without a panic; text without
        /// anything to rewrite is parsed exactly as written.
        #[test]
        fn any_text_is_rewritten_and_parsed_without_a_panic(
            q in "\\PC{0,40}|[a-z(){}\\[\\]\"+\\-*/%^<>=!~:.,@0-9 ]{0,24}( offset | anchored| smoothed|</|>/|\\[step\\(\\)\\]|\\[1m\\*2\\])[a-z(){}\\[\\]+\\-*/<>0-9 ]{0,16}"
        ) {
            let parsed = parse_query(&q, 15_000, 60_000);
            let plain = !["offset", "anchored", "smoothed", "</", ">/", "[", "info"]
                .iter()
                .any(|w| q.to_ascii_lowercase().contains(&w.to_ascii_lowercase()));
            if plain {
                proptest::prop_assert_eq!(
                    parsed.is_ok(),
                    promql_parser::parser::parse(&q).is_ok()
                );
            }
        }
    }

    /// Trims through the whole path (rewrite, parse, placing, evaluation): a histogram is
    /// trimmed and keeps its name, a float is left out with an info, a comparison next
    /// to a trim stays a comparison, `bool` is refused before evaluation.
    #[tokio::test]
    async fn trims_are_evaluated_where_they_are_written() {
        use signalbox_storage::{Buckets, HistogramSample, IngestSink, MetricsBatch, SeriesPoints};
        let store = signalbox_storage::MemStore::new();
        let h = Histogram {
            count: 4.0,
            sum: 4.5,
            positive: Buckets {
                offset: 0,
                counts: vec![2.0, 2.0],
            },
            ..Histogram::default()
        };
        let mut batch = MetricsBatch::default();
        batch.series.push(SeriesPoints {
            labels: Labels::from_pairs([("__name__", "h")]),
            histograms: vec![HistogramSample { t: 0, h }],
            ..Default::default()
        });
        batch.series.push(SeriesPoints {
            labels: Labels::from_pairs([("__name__", "f")]),
            samples: vec![Point { t: 0, v: 3.0 }],
            ..Default::default()
        });
        store.write_metrics(batch).await.unwrap();
        let engine = Engine::default();
        let r = engine.instant(&store, "h </ 1", 1000).await.unwrap();
        let QueryValue::Vector(v) = &r.value else {
            panic!("{r:?}")
        };
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].0.get("__name__"), Some("h"));
        assert!(
            matches!(&v[0].2, Value::Histogram(t) if t.count == 2.0),
            "{v:?}"
        );
        let r = engine.instant(&store, "f </ 2", 1000).await.unwrap();
        assert!(matches!(&r.value, QueryValue::Vector(v) if v.is_empty()));
        assert_eq!(
            r.infos,
            [
                "PromQL info: incompatible sample types encountered for binary operator \"</\": float </ float (1:1)"
            ]
        );
        let r = engine
            .instant(&store, "f < 5 and h >/ 0.5", 1000)
            .await
            .unwrap();
        assert!(
            matches!(&r.value, QueryValue::Vector(v) if v.len() == 1),
            "{r:?}"
        );
        let e = check("h </ bool 2").unwrap_err();
        assert_eq!(
            e.to_string(),
            "bool modifier can only be used on comparison operators"
        );
    }

    #[test]
    fn a_subquery_of_more_steps_than_samples_allowed_is_refused() {
        let engine = Engine::new(EngineOptions {
            max_samples: 1000,
            ..Default::default()
        });
        let store = signalbox_storage::MemStore::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let run = |q: &str| rt.block_on(engine.instant(&store, q, 86_400_000));
        let e = run("max_over_time(vector(1)[1h:1s])").unwrap_err();
        assert!(e.to_string().contains("too many samples"), "{e}");
        assert!(run("max_over_time(vector(1)[10m:1s])").is_ok());
    }

    #[test]
    fn exemplar_lookups_use_the_selectors_of_series_only() {
        let names = |q: &str| {
            selector_matchers(q)
                .unwrap()
                .iter()
                .map(|set| {
                    set.iter()
                        .map(|m| format!("{}{:?}{}", m.name, m.op, m.value))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect::<Vec<_>>()
        };
        // info()'s second argument picks info-series labels: it is no selector.
        assert_eq!(
            names(r#"info(rate(m[5m]), {data=~".*"})"#),
            ["__name__Equalm"]
        );
        assert_eq!(
            names(r#"a{x="1" or x="2"} / b"#),
            [
                "__name__Equala,xEqual1",
                "__name__Equala,xEqual2",
                "__name__Equalb"
            ]
        );
    }

    #[test]
    fn only_evaluations_of_much_data_many_points_or_subqueries_count_as_long() {
        let q = |s: &str| promql_parser::parser::parse(s).unwrap();
        assert!(!may_take_long(&q("sum(x)"), &data(20, 100), 1));
        assert!(!may_take_long(&q("sum(x)"), &data(20, 100), 1000));
        assert!(may_take_long(&q("sum(x)"), &data(20, 10_000), 1));
        assert!(may_take_long(&q("sum(x)"), &data(200, 10), 1000));
        assert!(!may_take_long(&q("vector(1)"), &Fetched::new(), 11_000));
        assert!(may_take_long(
            &q("count_over_time(vector(1)[1h:1ms])"),
            &Fetched::new(),
            1
        ));
        assert!(may_take_long(
            &q("1 + sum(rate(x[5m:10s]))"),
            &data(1, 1),
            1
        ));
    }
}
