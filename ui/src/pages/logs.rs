//! The logs explorer: a LogQL query over a time range, its log volume by level, and the
//! lines with their labels. Metric queries (`rate(...)`, `sum by ...`) draw a chart.
//! Everything is in the URL (`q`, `from`, `to`, `limit`, `dir`).

use super::{Running, count_param, param_or, quick_ranges};
use crate::api::{Api, LogLine, LokiData, LokiStream, PromEnvelope, encode, series_name, use_api};
use crate::chart::{ChartSeries, LineChart, VolumeChart, level_color};
use crate::complete::{Lang, QueryBox};
use crate::live::LiveTail;
use crate::timerange::{Range, auto_step, format_time, now, resolve};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 5000;
const QUICK_RANGES: [&str; 6] = ["5m", "15m", "1h", "6h", "24h", "7d"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Params {
    query: String,
    from: String,
    to: String,
    limit: usize,
    forward: bool,
}

impl Params {
    fn href(&self, from: &str, to: &str) -> String {
        format!(
            "/explore/logs?q={}&from={}&to={}&limit={}{}",
            encode(&self.query),
            encode(from),
            encode(to),
            self.limit,
            if self.forward { "&dir=forward" } else { "" }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Found {
    Nothing,
    Lines {
        lines: Vec<LogLine>,
        volume: Result<Vec<ChartSeries>, String>,
    },
    Series(Vec<ChartSeries>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Outcome {
    range: Range,
    found: Result<Found, String>,
}

fn ns(secs: f64) -> i64 {
    (secs * 1e9) as i64
}

fn lines_of(data: LokiData) -> Found {
    match data {
        LokiData::Streams(s) => Found::Lines {
            lines: s.into_iter().flat_map(LokiStream::into_lines).collect(),
            volume: Ok(Vec::new()),
        },
        LokiData::Matrix(m) => Found::Series(
            m.into_iter()
                .map(|s| ChartSeries {
                    label: series_name(&s.metric),
                    points: s.values.iter().map(|v| (v.0, v.value())).collect(),
                })
                .collect(),
        ),
        LokiData::Vector(v) => Found::Series(
            v.into_iter()
                .map(|s| ChartSeries {
                    label: series_name(&s.metric),
                    points: s.value.iter().map(|v| (v.0, v.value())).collect(),
                })
                .collect(),
        ),
    }
}

async fn run(api: Api, p: Params) -> Result<Outcome, String> {
    let range = resolve(&p.from, &p.to, "", now())?;
    if p.query.is_empty() {
        return Ok(Outcome {
            range,
            found: Ok(Found::Nothing),
        });
    }
    let url = format!(
        "/loki/api/v1/query_range?query={}&start={}&end={}&step={}&limit={}&direction={}",
        encode(&p.query),
        ns(range.start),
        ns(range.end),
        range.step,
        p.limit,
        if p.forward { "forward" } else { "backward" }
    );
    let found = api
        .get_json::<PromEnvelope<LokiData>>(&url)
        .await
        .and_then(PromEnvelope::into_result);
    let found = match found {
        Err(e) => Err(e),
        Ok((data, _)) => {
            let mut found = lines_of(data);
            if let Found::Lines { volume, .. } = &mut found {
                *volume = volume_of(&api, &p.query, range).await;
            }
            Ok(found)
        }
    };
    Ok(Outcome { range, found })
}

/// Lines per level and time bucket (about 60 buckets over the range).
async fn volume_of(api: &Api, query: &str, range: Range) -> Result<Vec<ChartSeries>, String> {
    let step = auto_step(range.end - range.start, 60.0);
    let q = format!(
        "sum by (level) (count_over_time({query} [{}s]))",
        step as u64
    );
    let url = format!(
        "/loki/api/v1/query_range?query={}&start={}&end={}&step={step}",
        encode(&q),
        ns(range.start),
        ns(range.end)
    );
    match api
        .get_json::<PromEnvelope<LokiData>>(&url)
        .await
        .and_then(PromEnvelope::into_result)?
    {
        (LokiData::Matrix(m), _) => Ok(m
            .into_iter()
            .map(|s| ChartSeries {
                label: s
                    .metric
                    .get("level")
                    .cloned()
                    .unwrap_or_else(|| "unknown".into()),
                points: s.values.iter().map(|v| (v.0, v.value())).collect(),
            })
            .collect()),
        _ => Ok(Vec::new()),
    }
}

/// The explorer page.
#[component]
pub(crate) fn LogsExplorer() -> impl IntoView {
    let query = use_query_map();
    let params = Memo::new(move |_| {
        query.with(|m| Params {
            query: m.get("q").unwrap_or_default().trim().to_string(),
            from: param_or(m, "from", "now-1h"),
            to: param_or(m, "to", "now"),
            limit: count_param(m, "limit", DEFAULT_LIMIT, MAX_LIMIT),
            forward: m.get("dir").as_deref() == Some("forward"),
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
        let ranges = quick_ranges(&QUICK_RANGES, &p.from, &p.to, &|f: &str| p.href(f, "now"));
        let value_from = p.from.clone();
        let value_query = p.query.clone();
        let value_to = p.to.clone();
        let value_limit = p.limit.to_string();
        view! {
            <Form method="GET" action="/explore/logs" attr:class="query-form">
                <div class="query-row">
                    <label class="query-label">
                        "LogQL"
                        <QueryBox
                            name="q"
                            value=value_query
                            lang=Lang::LogQL
                            list_id="q-suggest".to_string()
                            placeholder="{service_name=\"checkout\"} |= \"error\""
                        />
                    </label>
                </div>
                <div class="range-row">
                    <label>"From" <input name="from" value=value_from size="22"/></label>
                    <label>"To" <input name="to" value=value_to size="22"/></label>
                    <label>"Lines" <input name="limit" value=value_limit size="6"/></label>
                    <label>
                        "Order"
                        <select name="dir">
                            <option value="backward" selected=!p.forward>"Newest first"</option>
                            <option value="forward" selected=p.forward>"Oldest first"</option>
                        </select>
                    </label>
                    <button type="submit" class="primary">"Run query"</button>
                </div>
            </Form>
            {ranges}
        }
    };

    let results = move || {
        Suspend::new(async move {
            let o = match outcome.await {
                Err(e) => return view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(o) => o,
            };
            let range = o.range;
            match o.found {
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(Found::Nothing) => view! {
                    <p class="hint">"Write a LogQL query above, e.g. " <code>"{service_name=\"checkout\"} |= \"error\""</code></p>
                }
                .into_any(),
                Ok(Found::Series(series)) if series.is_empty() => {
                    view! { <p class="hint">"No data in this range."</p> }.into_any()
                }
                Ok(Found::Series(series)) => view! { <LineChart series range/> }.into_any(),
                Ok(Found::Lines { lines, volume }) => view! {
                    {match volume {
                        Ok(v) if !v.is_empty() => Some(view! { <VolumeChart series=v range/> }.into_any()),
                        Ok(_) => None,
                        Err(e) => Some(view! { <p class="warning">"Log volume: " {e}</p> }.into_any()),
                    }}
                    <LiveTail query=params.get_untracked().query/>
                    <p class="range-info">
                        {format!("{} lines, {} to {} UTC", lines.len(), format_time(range.start), format_time(range.end))}
                    </p>
                    <LogLines lines/>
                }
                .into_any(),
            }
        })
    };

    view! {
        <Title text="Logs · SignalBox"/>
        <h1>"Logs"</h1>
        {editor}
        <section class="results" aria-live="polite">
            <Suspense fallback=|| view! { <Running what="Running…"/> }>{results}</Suspense>
        </section>
    }
}

/// The level of a line: its `level` label, else its OpenTelemetry severity text.
fn level_of(l: &LogLine) -> String {
    l.labels
        .get("level")
        .or_else(|| l.labels.get("severity_text"))
        .or_else(|| l.labels.get("detected_level"))
        .cloned()
        .unwrap_or_else(|| "unknown".into())
}

/// Lines, each expandable to all its labels.
#[component]
pub(crate) fn LogLines(lines: Vec<LogLine>) -> impl IntoView {
    if lines.is_empty() {
        return view! { <p class="hint">"No lines match in this range."</p> }.into_any();
    }
    view! {
        <ol class="log-lines">
            {lines
                .into_iter()
                .map(|l| {
                    let level = level_of(&l);
                    let time = format_time(l.ts_ns as f64 / 1e9);
                    let millis = (l.ts_ns.rem_euclid(1_000_000_000)) / 1_000_000;
                    // A line logged inside a span links to that trace (and span).
                    let trace_link = l.labels.get("trace_id").filter(|t| !t.is_empty()).map(|t| {
                        let mut href = format!("/traces/{}", encode(t));
                        if let Some(span) = l.labels.get("span_id").filter(|s| !s.is_empty()) {
                            href.push_str(&format!("?span={}", encode(span)));
                        }
                        view! { <a class="trace-link" href=href>"trace"</a> }
                    });
                    let labels = l
                        .labels
                        .into_iter()
                        .map(|(k, v)| view! { <dt>{k}</dt> <dd>{v}</dd> })
                        .collect_view();
                    view! {
                        <li class="log-line" style:border-left-color=level_color(&level)>
                            <details>
                                <summary>
                                    <time>{format!("{time}.{millis:03}")}</time>
                                    <span class="level" style:color=level_color(&level)>{level.clone()}</span>
                                    <span class="msg">{l.line}</span>
                                    {trace_link}
                                </summary>
                                <dl class="labels">{labels}</dl>
                            </details>
                        </li>
                    }
                })
                .collect_view()}
        </ol>
    }
    .into_any()
}
