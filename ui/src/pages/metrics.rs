//! The metrics explorer: PromQL queries over a time range, drawn as a chart or listed
//! as a table. Everything the page shows is in its URL (`q`, repeated for several
//! queries, `from`, `to`, `step`, `tab`), so a link reproduces it.

use super::{Running, param_or, quick_ranges};
use crate::api::{
    Api, PromEnvelope, QueryData, Sample, encode, exemplars_of, series_name, use_api,
};
use crate::chart::{ChartExemplar, ChartSeries, LineChart, color, distinct, ticks::format_value};
use crate::complete::{Lang, QueryBox};
use crate::timerange::{Range, format_duration, format_time, now, resolve};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

/// Most series one chart draws; the rest are counted in a note.
const MAX_SERIES: usize = 200;

/// Most exemplars one chart draws; the rest are counted in a note.
const MAX_EXEMPLARS: usize = 2_000;

/// Relative ranges offered as one-click choices.
const QUICK_RANGES: [&str; 7] = ["5m", "15m", "1h", "6h", "24h", "7d", "30d"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Params {
    queries: Vec<String>,
    from: String,
    to: String,
    step: String,
    table: bool,
}

impl Params {
    /// The URL of this view with another time range or tab.
    fn href(&self, from: &str, to: &str, table: bool) -> String {
        let mut url = String::from("/explore/metrics?");
        for q in &self.queries {
            url.push_str(&format!("q={}&", encode(q)));
        }
        url.push_str(&format!("from={}&to={}", encode(from), encode(to)));
        if !self.step.is_empty() {
            url.push_str(&format!("&step={}", encode(&self.step)));
        }
        if table {
            url.push_str("&tab=table");
        }
        url
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Outcome {
    range: Result<Range, String>,
    /// One answer per query, in the order of the queries.
    answers: Vec<Result<(QueryData, Vec<String>), String>>,
    /// The exemplars of the series the queries select, for the chart.
    exemplars: Vec<ChartExemplar>,
}

async fn run(api: Api, p: Params) -> Outcome {
    let range = resolve(&p.from, &p.to, &p.step, now());
    let Ok(r) = range else {
        return Outcome {
            range,
            answers: Vec::new(),
            exemplars: Vec::new(),
        };
    };
    // The queries run at the same time, each followed by its exemplars.
    let runs = p.queries.iter().map(|q| one_query(&api, q, p.table, r));
    let mut answers = Vec::with_capacity(p.queries.len());
    let mut exemplars = Vec::new();
    for (answer, found) in futures::future::join_all(runs).await {
        answers.push(answer);
        exemplars.extend(found);
    }
    Outcome {
        range,
        answers,
        exemplars: distinct(exemplars),
    }
}

/// One query's answer over `r` (at its end for a table) and, for a chart, the
/// exemplars of the series it selects.
async fn one_query(
    api: &Api,
    q: &str,
    table: bool,
    r: Range,
) -> (Result<(QueryData, Vec<String>), String>, Vec<ChartExemplar>) {
    let url = if table {
        format!("/api/v1/query?query={}&time={}", encode(q), r.end)
    } else {
        format!(
            "/api/v1/query_range?query={}&start={}&end={}&step={}",
            encode(q),
            r.start,
            r.end,
            r.step
        )
    };
    let answer = api
        .get_json::<PromEnvelope<QueryData>>(&url)
        .await
        .and_then(PromEnvelope::into_result);
    // Exemplars only decorate a chart of a query that succeeded.
    let exemplars = if !table && answer.is_ok() {
        exemplars_of(api, q, r).await
    } else {
        Vec::new()
    };
    (answer, exemplars)
}

/// The explorer page.
#[component]
pub(crate) fn MetricsExplorer() -> impl IntoView {
    let query = use_query_map();
    let params = Memo::new(move |_| {
        query.with(|m| Params {
            queries: m
                .get_all("q")
                .unwrap_or_default()
                .into_iter()
                .map(|q| q.trim().to_string())
                .filter(|q| !q.is_empty())
                .collect(),
            from: param_or(m, "from", "now-1h"),
            to: param_or(m, "to", "now"),
            step: m.get("step").unwrap_or_default().trim().to_string(),
            table: m.get("tab").as_deref() == Some("table"),
        })
    });
    let api = use_api();
    let outcome = Resource::new(
        move || params.get(),
        move |p| {
            let api = api.clone();
            async move { run(api, p).await }
        },
    );

    let editor = move || {
        let p = params.get();
        let ranges = quick_ranges(&QUICK_RANGES, &p.from, &p.to, &|f: &str| {
            p.href(f, "now", p.table)
        });
        let value_from = p.from.clone();
        let value_to = p.to.clone();
        let value_step = p.step.clone();
        // The queries, then an empty box for one more.
        let boxes: Vec<String> = p.queries.iter().cloned().chain([String::new()]).collect();
        let count = boxes.len();
        view! {
            <Form method="GET" action="/explore/metrics" attr:class="query-form">
                {boxes
                    .into_iter()
                    .enumerate()
                    .map(|(i, q)| {
                        let label = if i + 1 == count && i > 0 { "Add a query".to_string() } else { format!("Query {}", i + 1) };
                        view! {
                            <div class="query-row">
                                <label class="query-label">
                                    <span class="swatch" style:background=color(i)></span>
                                    {label}
                                    <QueryBox
                                        name="q"
                                        value=q
                                        lang=Lang::PromQL
                                        list_id=format!("q-suggest-{i}")
                                        placeholder="PromQL, e.g. rate(http_server_request_duration_seconds_count[5m])"
                                    />
                                </label>
                                <Suspense fallback=|| ()>
                                    {move || Suspend::new(async move {
                                        let o = outcome.await;
                                        match o.answers.get(i) {
                                            Some(Err(e)) => Some(view! { <p class="error" role="alert">{e.clone()}</p> }.into_any()),
                                            Some(Ok((_, warnings))) if !warnings.is_empty() => Some(
                                                view! { <p class="warning">{warnings.join("; ")}</p> }.into_any(),
                                            ),
                                            _ => None,
                                        }
                                    })}
                                </Suspense>
                            </div>
                        }
                    })
                    .collect_view()}
                <div class="range-row">
                    <label>"From" <input name="from" value=value_from size="22"/></label>
                    <label>"To" <input name="to" value=value_to size="22"/></label>
                    <label>"Step" <input name="step" value=value_step size="6" placeholder="auto"/></label>
                    {p.table.then(|| view! { <input type="hidden" name="tab" value="table"/> })}
                    <button type="submit" class="primary">"Run queries"</button>
                </div>
            </Form>
            {ranges}
            <nav class="tabs" aria-label="view">
                <a href=p.href(&p.from, &p.to, false) class:current=!p.table>"Graph"</a>
                <a href=p.href(&p.from, &p.to, true) class:current=p.table>"Table"</a>
            </nav>
        }
    };

    let results = move || {
        Suspend::new(async move {
            let o = outcome.await;
            let p = params.get_untracked();
            let range = match o.range {
                Err(e) => return view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(r) => r,
            };
            if p.queries.is_empty() {
                return view! { <p class="hint">"Write a PromQL query above and run it."</p> }
                    .into_any();
            }
            let header = format!(
                "{} to {} UTC, step {}",
                format_time(range.start),
                format_time(range.end),
                format_duration(range.step)
            );
            if p.table {
                view! { <p class="range-info">{format!("At {} UTC", format_time(range.end))}</p> <ResultTable answers=o.answers/> }
                    .into_any()
            } else {
                let mut series = Vec::new();
                for (data, _) in o.answers.iter().filter_map(|a| a.as_ref().ok()) {
                    chart_series(data, &mut series);
                }
                let total = series.len();
                series.truncate(MAX_SERIES);
                let mut exemplars = o.exemplars;
                let all_exemplars = exemplars.len();
                // The most recent ones.
                exemplars.drain(..all_exemplars.saturating_sub(MAX_EXEMPLARS));
                view! {
                    <p class="range-info">{header}</p>
                    {(total > MAX_SERIES).then(|| view! {
                        <p class="warning">{format!("Showing {MAX_SERIES} of {total} series.")}</p>
                    })}
                    {(all_exemplars > MAX_EXEMPLARS).then(|| view! {
                        <p class="warning">{format!("Showing {MAX_EXEMPLARS} of {all_exemplars} exemplars.")}</p>
                    })}
                    {if series.is_empty() {
                        view! { <p class="hint">"No data in this range."</p> }.into_any()
                    } else {
                        view! { <LineChart series range exemplars/> }.into_any()
                    }}
                }
                .into_any()
            }
        })
    };

    view! {
        <Title text="Metrics · SignalBox"/>
        <h1>"Metrics"</h1>
        {editor}
        <section class="results" aria-live="polite">
            <Suspense fallback=|| view! { <Running what="Running…"/> }>{results}</Suspense>
        </section>
    }
}

/// The lines of one query's answer.
fn chart_series(data: &QueryData, out: &mut Vec<ChartSeries>) {
    match data {
        QueryData::Matrix(m) => out.extend(m.iter().map(|s| ChartSeries {
            label: series_name(&s.metric),
            points: s.values.iter().map(|v| (v.0, v.value())).collect(),
        })),
        QueryData::Vector(v) => out.extend(v.iter().map(|s| ChartSeries {
            label: series_name(&s.metric),
            points: s.value.iter().map(|v| (v.0, v.value())).collect(),
        })),
        QueryData::Scalar(s) => out.push(ChartSeries {
            label: "scalar".into(),
            points: vec![(s.0, s.value())],
        }),
        QueryData::String(_) => {}
    }
}

/// Instant answers as rows of series and value.
#[component]
fn ResultTable(answers: Vec<Result<(QueryData, Vec<String>), String>>) -> impl IntoView {
    let rows: Vec<(usize, String, String)> = answers
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.as_ref().ok().map(|(d, _)| (i, d)))
        .flat_map(|(i, d)| -> Vec<(usize, String, String)> {
            let fmt = |s: &Sample| format!("{} ({})", s.1, format_value(s.value()));
            match d {
                QueryData::Vector(v) => v
                    .iter()
                    .map(|s| {
                        (
                            i,
                            series_name(&s.metric),
                            s.value.as_ref().map(fmt).unwrap_or_default(),
                        )
                    })
                    .collect(),
                QueryData::Matrix(m) => m
                    .iter()
                    .map(|s| {
                        let vals: Vec<String> = s
                            .values
                            .iter()
                            .map(|v| format!("{} @{}", v.1, v.0))
                            .collect();
                        (i, series_name(&s.metric), vals.join("\n"))
                    })
                    .collect(),
                QueryData::Scalar(s) => vec![(i, "scalar".into(), fmt(s))],
                QueryData::String(s) => vec![(i, "string".into(), s.1.clone())],
            }
        })
        .collect();
    if rows.is_empty() {
        return view! { <p class="hint">"No data at this time."</p> }.into_any();
    }
    view! {
        <table class="result-table">
            <thead><tr><th scope="col">"Series"</th><th scope="col">"Value"</th></tr></thead>
            <tbody>
                {rows
                    .into_iter()
                    .map(|(i, name, value)| view! {
                        <tr>
                            <td><span class="swatch" style:background=color(i)></span>{name}</td>
                            <td class="num">{value}</td>
                        </tr>
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
