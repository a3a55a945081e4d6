//! One dashboard panel: its queries run over the dashboard's range with the chosen
//! variables, drawn as its type says.

use crate::api::{
    Api, JaegerEnvelope, Labels, LogLine, LokiData, LokiStream, PromEnvelope, QueryData, Trace,
    encode, exemplars_of, series_name, use_api,
};
use crate::chart::{ChartExemplar, ChartSeries, LineChart, color, distinct};
use crate::pages::logs::LogLines;
use crate::pages::traces::TraceList;
use crate::timerange::{Range, now, resolve};
use crate::trace_tree::{Summary, summarize, tags_json};
use crate::units::with_unit;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use signalbox_dashboard::{Lang, Panel, PanelType, Query, Selection, interpolate, legend};

/// Most log lines and traces a panel lists.
const PANEL_LIMIT: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) enum Data {
    /// Lines, and the exemplars of the queries that ask for them.
    Series(Vec<ChartSeries>, Vec<ChartExemplar>),
    /// Instant values with their labels and display names.
    Values(#[serde(with = "crate::json_num::named_values")] Vec<(String, Labels, f64)>),
    Lines(Vec<LogLine>),
    Traces(Vec<Summary>),
}

fn ns(secs: f64) -> i64 {
    (secs * 1e9) as i64
}

fn named(q: &Query, labels: &Labels) -> String {
    // A series without labels (a `sum(...)`) has no name worth showing.
    let fallback = if labels.is_empty() {
        String::new()
    } else {
        series_name(labels)
    };
    legend(&q.legend, labels, &fallback)
}

async fn range_query(
    api: &Api,
    q: &Query,
    expr: &str,
    r: Range,
) -> Result<Vec<ChartSeries>, String> {
    let matrix = match q.lang {
        Lang::Promql => {
            let url = format!(
                "/api/v1/query_range?query={}&start={}&end={}&step={}",
                encode(expr),
                r.start,
                r.end,
                r.step
            );
            match api
                .get_json::<PromEnvelope<QueryData>>(&url)
                .await
                .and_then(PromEnvelope::into_result)?
                .0
            {
                QueryData::Matrix(m) => m,
                _ => Vec::new(),
            }
        }
        Lang::Logql => {
            let url = format!(
                "/loki/api/v1/query_range?query={}&start={}&end={}&step={}",
                encode(expr),
                ns(r.start),
                ns(r.end),
                r.step
            );
            match api
                .get_json::<PromEnvelope<LokiData>>(&url)
                .await
                .and_then(PromEnvelope::into_result)?
                .0
            {
                LokiData::Matrix(m) => m,
                _ => {
                    return Err(
                        "a log query draws no graph: use a metric query like rate({…}[5m])".into(),
                    );
                }
            }
        }
        Lang::Traces => return Err("a trace search draws no graph: use a traces panel".into()),
    };
    Ok(matrix
        .into_iter()
        .map(|s| ChartSeries {
            label: named(q, &s.metric),
            points: s.values.iter().map(|v| (v.0, v.value())).collect(),
        })
        .collect())
}

async fn instant_query(
    api: &Api,
    q: &Query,
    expr: &str,
    r: Range,
) -> Result<Vec<(String, Labels, f64)>, String> {
    let samples = match q.lang {
        Lang::Promql => {
            let url = format!("/api/v1/query?query={}&time={}", encode(expr), r.end);
            match api
                .get_json::<PromEnvelope<QueryData>>(&url)
                .await
                .and_then(PromEnvelope::into_result)?
                .0
            {
                QueryData::Vector(v) => v
                    .into_iter()
                    .filter_map(|s| Some((s.metric, s.value?.value())))
                    .collect(),
                QueryData::Scalar(s) => vec![(Labels::new(), s.value())],
                _ => Vec::new(),
            }
        }
        Lang::Logql => {
            let url = format!(
                "/loki/api/v1/query?query={}&time={}",
                encode(expr),
                ns(r.end)
            );
            match api.get_json::<PromEnvelope<LokiData>>(&url).await.and_then(PromEnvelope::into_result)?.0 {
                LokiData::Vector(v) => v.into_iter().filter_map(|s| Some((s.metric, s.value?.value()))).collect(),
                _ => return Err("a log query has no single value: use a metric query like count_over_time({…}[1h])".into()),
            }
        }
        Lang::Traces => return Err("a trace search has no single value: use a traces panel".into()),
    };
    Ok(samples
        .into_iter()
        .map(|(l, v)| (named(q, &l), l, v))
        .collect())
}

async fn lines(api: &Api, expr: &str, r: Range) -> Result<Vec<LogLine>, String> {
    let url = format!(
        "/loki/api/v1/query_range?query={}&start={}&end={}&limit={PANEL_LIMIT}&direction=backward",
        encode(expr),
        ns(r.start),
        ns(r.end)
    );
    match api
        .get_json::<PromEnvelope<LokiData>>(&url)
        .await
        .and_then(PromEnvelope::into_result)?
        .0
    {
        LokiData::Streams(s) => {
            let mut l: Vec<LogLine> = s.into_iter().flat_map(LokiStream::into_lines).collect();
            l.sort_by_key(|x| std::cmp::Reverse(x.ts_ns));
            l.truncate(PANEL_LIMIT);
            Ok(l)
        }
        _ => Err("a logs panel needs a log query, not a metric query".into()),
    }
}

/// `service=checkout operation="GET /" minDuration=100ms`: a Jaeger search.
async fn traces(api: &Api, expr: &str, r: Range) -> Result<Vec<Summary>, String> {
    let fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&tags_json(expr)?).map_err(|e| e.to_string())?;
    let field = |k: &str| {
        fields
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    if field("service").is_empty() {
        return Err("a trace search needs service=<name>".into());
    }
    let mut url = format!(
        "/jaeger/api/traces?start={}&end={}&limit={}",
        (r.start * 1e6) as i64,
        (r.end * 1e6) as i64,
        field("limit")
            .parse::<usize>()
            .unwrap_or(20)
            .min(PANEL_LIMIT)
    );
    for k in ["service", "operation", "minDuration", "maxDuration"] {
        if !field(k).is_empty() {
            url.push_str(&format!("&{k}={}", encode(&field(k))));
        }
    }
    if !field("tags").is_empty() {
        url.push_str(&format!("&tags={}", encode(&tags_json(&field("tags"))?)));
    }
    let found = api
        .get_json::<JaegerEnvelope<Vec<Trace>>>(&url)
        .await
        .and_then(JaegerEnvelope::into_result)?;
    let mut s: Vec<Summary> = found.iter().map(summarize).collect();
    s.sort_by_key(|x| std::cmp::Reverse(x.start_us));
    Ok(s)
}

/// A panel's data over the range it was loaded for, or why there is none.
pub(super) type Loaded = Result<(Range, Data), String>;

/// Runs the panel's queries over `r` (none for a panel without queries or of a type
/// not supported, see `load`).
pub(super) async fn load_panel(api: Api, panel: Panel, r: Range, vars: Vec<Selection>) -> Loaded {
    Ok((r, load(api, panel, r, vars).await?))
}

/// What the queries of a panel give, run at the same time, in the order of the queries;
/// the first error if one fails.
async fn all<T>(
    queries: impl IntoIterator<Item = impl Future<Output = Result<Vec<T>, String>>>,
) -> Result<Vec<T>, String> {
    Ok(futures::future::try_join_all(queries)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

async fn load(api: Api, panel: Panel, r: Range, vars: Vec<Selection>) -> Result<Data, String> {
    let span = r.end - r.start;
    let exprs: Vec<(Query, String)> = panel
        .queries
        .iter()
        .map(|q| (q.clone(), interpolate(&q.expr, &vars, r.step, span)))
        .collect();
    match panel.kind {
        PanelType::Timeseries => {
            let wanted = exprs
                .iter()
                .filter(|(q, _)| q.exemplars && q.lang == Lang::Promql);
            let (series, exemplars) = futures::future::join(
                all(exprs.iter().map(|(q, e)| range_query(&api, q, e, r))),
                futures::future::join_all(wanted.map(|(_, e)| exemplars_of(&api, e, r))),
            )
            .await;
            Ok(Data::Series(
                series?,
                distinct(exemplars.into_iter().flatten().collect()),
            ))
        }
        PanelType::Stat | PanelType::Gauge | PanelType::Bar | PanelType::Table => Ok(Data::Values(
            all(exprs.iter().map(|(q, e)| instant_query(&api, q, e, r))).await?,
        )),
        PanelType::Logs => Ok(Data::Lines(
            all(exprs.iter().map(|(_, e)| lines(&api, e, r))).await?,
        )),
        PanelType::Traces => Ok(Data::Traces(
            all(exprs.iter().map(|(_, e)| traces(&api, e, r))).await?,
        )),
        PanelType::Unsupported => Ok(Data::Values(Vec::new())),
    }
}

/// A gauge: an arc from `min` to `max` filled up to the value.
fn gauge(v: f64, min: f64, max: f64, unit: &str) -> impl IntoView + use<> {
    let f = if max > min {
        ((v - min) / (max - min)).clamp(0.0, 1.0)
    } else {
        0.0
    };
    // A half circle of radius 80 centred at (100, 100), from the left end clockwise.
    let arc = |to: f64| {
        let a = std::f64::consts::PI * (1.0 - to);
        format!(
            "M20 100A80 80 0 0 1 {:.2} {:.2}",
            100.0 + 80.0 * a.cos(),
            100.0 - 80.0 * a.sin()
        )
    };
    let c = if f > 0.9 {
        "var(--error)"
    } else if f > 0.75 {
        "#e89c1b"
    } else {
        "#4caf50"
    };
    view! {
        <svg class="gauge" viewBox="0 0 200 115" role="img" aria-label=format!("gauge {}", with_unit(v, unit))>
            <path d=arc(1.0) class="gauge-track"></path>
            {(f > 0.0).then(|| view! { <path d=arc(f) class="gauge-fill" style:stroke=c></path> })}
            <text x="100" y="96" text-anchor="middle" class="gauge-value">{with_unit(v, unit)}</text>
        </svg>
    }
}

fn values_view(kind: PanelType, panel: &Panel, values: Vec<(String, Labels, f64)>) -> AnyView {
    if values.is_empty() {
        return view! { <p class="hint">"No data"</p> }.into_any();
    }
    let unit = panel.unit.clone();
    match kind {
        PanelType::Stat => view! {
            <div class="stats">
                {values
                    .into_iter()
                    .take(12)
                    .map(|(name, _, v)| view! {
                        <div class="stat"><span class="stat-value">{with_unit(v, &unit)}</span><span class="stat-name">{name}</span></div>
                    })
                    .collect_view()}
            </div>
        }
        .into_any(),
        PanelType::Gauge => {
            let (min, max) = (panel.min.unwrap_or(0.0), panel.max.unwrap_or(if unit == "percentunit" { 1.0 } else { 100.0 }));
            view! {
                <div class="stats">
                    {values
                        .into_iter()
                        .take(6)
                        .map(|(name, _, v)| view! { <div class="stat">{gauge(v, min, max, &unit)}<span class="stat-name">{name}</span></div> })
                        .collect_view()}
                </div>
            }
            .into_any()
        }
        PanelType::Bar => {
            let top = values.iter().map(|(_, _, v)| v.abs()).filter(|v| v.is_finite()).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
            view! {
                <ul class="bars">
                    {values
                        .into_iter()
                        .take(50)
                        .enumerate()
                        .map(|(i, (name, _, v))| {
                            let w = format!("{:.1}%", (v.abs() / top * 100.0).min(100.0));
                            view! {
                                <li>
                                    <span class="bar-name">{name}</span>
                                    <span class="bar-track"><span class="bar-fill" style:width=w style:background=color(i)></span></span>
                                    <span class="bar-value">{with_unit(v, &unit)}</span>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            }
            .into_any()
        }
        _ => {
            let mut keys: Vec<String> = values.iter().flat_map(|(_, l, _)| l.keys().cloned()).collect();
            keys.sort();
            keys.dedup();
            let head = keys.iter().map(|k| view! { <th>{k.clone()}</th> }).collect_view();
            let rows = values
                .into_iter()
                .map(|(_, l, v)| {
                    let cells = keys.iter().map(|k| view! { <td>{l.get(k).cloned().unwrap_or_default()}</td> }).collect_view();
                    view! { <tr>{cells}<td class="num">{with_unit(v, &unit)}</td></tr> }
                })
                .collect_view();
            view! {
                <div class="table-scroll">
                    <table class="result-table"><thead><tr>{head}<th class="num">"Value"</th></tr></thead><tbody>{rows}</tbody></table>
                </div>
            }
            .into_any()
        }
    }
}

/// One panel. It shows the data the page loaded (`initial`, on the server and at
/// hydration: no panel runs its own queries while the page renders), and loads it again
/// in the browser each time `tick` changes (auto-refresh), resolving the range anew so a
/// relative range moves with the clock. The old data stays until the new has arrived.
#[component]
pub(super) fn DashPanel(
    panel: Panel,
    /// The dashboard's range as written (`now-6h`, `now`).
    from: String,
    to: String,
    vars: Vec<Selection>,
    tick: RwSignal<u64>,
    initial: Loaded,
) -> impl IntoView {
    let api = use_api();
    let g = panel.grid;
    let style = format!(
        "grid-column: {} / span {}; grid-row: {} / span {};",
        g.x + 1,
        g.w,
        g.y + 1,
        g.h
    );
    let kind = panel.kind;
    let data = RwSignal::new(initial);
    let busy = RwSignal::new(false);
    // Why the last refresh failed, while the panel keeps showing the data it had.
    let failed: RwSignal<Option<String>> = RwSignal::new(None);
    let for_load = panel.clone();
    Effect::new(move |seen: Option<u64>| {
        let t = tick.get();
        // A tick while the last refresh still runs is skipped: a panel slower than the
        // refresh interval does not pile up queries.
        if seen.is_some() && busy.try_get_untracked() == Some(false) {
            let (api, panel, vars) = (api.clone(), for_load.clone(), vars.clone());
            let (from, to) = (from.clone(), to.clone());
            busy.set(true);
            leptos::task::spawn_local(async move {
                let loaded = match resolve(&from, &to, "", now()) {
                    Ok(range) => load_panel(api, panel, range, vars).await,
                    Err(e) => Err(e),
                };
                // The panel may be gone by now (its signals disposed): then nothing is set.
                let Some(had_data) = data.try_with_untracked(Result::is_ok) else {
                    return;
                };
                match loaded {
                    Ok(d) => {
                        data.set(Ok(d));
                        failed.set(None);
                    }
                    Err(e) if had_data => failed.set(Some(e)),
                    Err(e) => data.set(Err(e)),
                }
                busy.set(false);
            });
        }
        t
    });
    let shown = panel.clone();
    let body = move || {
        let panel = &shown;
        if panel.kind == PanelType::Unsupported {
            let note = if panel.note.is_empty() {
                "This panel type is not supported.".to_string()
            } else {
                panel.note.clone()
            };
            return view! { <p class="placeholder">{note}</p> }.into_any();
        }
        if panel.queries.is_empty() {
            return view! { <p class="hint">"No query"</p> }.into_any();
        }
        let (range, data) = match data.get() {
            Err(e) => return view! { <p class="error" role="alert">{e}</p> }.into_any(),
            Ok(x) => x,
        };
        match data {
            Data::Series(s, _) if s.is_empty() => view! { <p class="hint">"No data"</p> }.into_any(),
            Data::Series(s, exemplars) => view! {
                <LineChart series=s range exemplars unit=panel.unit.clone() min=panel.min max=panel.max/>
            }
            .into_any(),
            Data::Values(v) => values_view(kind, panel, v),
            Data::Lines(l) => view! { <LogLines lines=l/> }.into_any(),
            Data::Traces(t) if t.is_empty() => view! { <p class="hint">"No traces"</p> }.into_any(),
            Data::Traces(t) => view! { <TraceList found=t/> }.into_any(),
        }
    };
    view! {
        <section class=format!("panel panel-{}", kind.name()) style=style data-panel=panel.id.to_string()
            aria-busy=move || busy.get().to_string()>
            <h2 class="panel-title">
                {panel.title.clone()}
                {move || failed.get().map(|e| view! { <span class="panel-stale" title=e>"refresh failed"</span> })}
            </h2>
            <div class="panel-body">{body}</div>
        </section>
    }
}
