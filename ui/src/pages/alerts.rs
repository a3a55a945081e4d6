//! Alerts: firing and pending alerts with their labels and annotations, the rules with
//! their state and last evaluation, silences (create one from an alert's labels,
//! expire one), and the delivery status of notifications.

use crate::api::{Api, Labels, PromEnvelope, encode, use_api};
use crate::silence::{Silence, matchers_for, parse_matchers, rfc3339};
use crate::timerange::{format_duration, format_time, now, parse_duration, parse_rfc3339};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Alert {
    labels: Labels,
    #[serde(default)]
    annotations: Labels,
    state: String,
    #[serde(rename = "activeAt", default)]
    active_at: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

/// An alert as the Alertmanager API (`/api/v2/alerts`) reports it: whether a silence
/// or an inhibition suppresses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Routed {
    labels: Labels,
    status: RoutedStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RoutedStatus {
    #[serde(rename = "silencedBy", default)]
    silenced_by: Vec<String>,
    #[serde(rename = "inhibitedBy", default)]
    inhibited_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Rule {
    name: String,
    query: String,
    /// How long an alerting rule's condition must hold (`for`), in seconds.
    #[serde(default)]
    duration: f64,
    #[serde(default)]
    labels: Labels,
    #[serde(default)]
    annotations: Labels,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    health: String,
    #[serde(rename = "lastError", default)]
    last_error: Option<String>,
    #[serde(rename = "lastEvaluation", default)]
    last_evaluation: Option<String>,
    #[serde(rename = "evaluationTime", default)]
    evaluation_time: f64,
    #[serde(default)]
    alerts: Vec<Alert>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Group {
    name: String,
    #[serde(default)]
    file: String,
    #[serde(default)]
    interval: f64,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Groups {
    groups: Vec<Group>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AlertList {
    alerts: Vec<Alert>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Delivery {
    receiver: String,
    integration: String,
    #[serde(rename = "lastAttempt", default)]
    last_attempt: Option<String>,
    #[serde(rename = "lastSuccess", default)]
    last_success: Option<String>,
    #[serde(rename = "lastError", default)]
    last_error: Option<String>,
    #[serde(default)]
    sent: u64,
    #[serde(default)]
    failed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Page {
    alerts: Result<Vec<Alert>, String>,
    /// What suppresses each alert that the Alertmanager side has (if it could not be
    /// read, the alerts are shown without it, and a warning says so).
    routed: Result<Vec<Routed>, String>,
    groups: Result<Vec<Group>, String>,
    silences: Result<Vec<Silence>, String>,
    deliveries: Result<Vec<Delivery>, String>,
}

async fn load(api: Api) -> Page {
    // The five reads are independent: they run at the same time.
    let (alerts, routed, groups, silences, deliveries) = futures::join!(
        api.get_json::<PromEnvelope<AlertList>>("/api/v1/alerts"),
        api.get_json::<Vec<Routed>>("/api/v2/alerts"),
        api.get_json::<PromEnvelope<Groups>>("/api/v1/rules"),
        api.get_json::<Vec<Silence>>("/api/v2/silences"),
        api.get_json::<PromEnvelope<Vec<Delivery>>>("/api/v1/notifications"),
    );
    let alerts = alerts
        .and_then(PromEnvelope::into_result)
        .map(|(a, _)| a.alerts);
    let groups = groups
        .and_then(PromEnvelope::into_result)
        .map(|(g, _)| g.groups);
    let silences = silences.map(|mut s| {
        // Active first, then pending, then expired; newest end first within each.
        let rank = |s: &Silence| match s.status.state.as_str() {
            "active" => 0,
            "pending" => 1,
            _ => 2,
        };
        s.sort_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then_with(|| b.ends_at.cmp(&a.ends_at))
        });
        s
    });
    let deliveries = deliveries
        .and_then(PromEnvelope::into_result)
        .map(|(d, _)| d);
    Page {
        alerts,
        routed,
        groups,
        silences,
        deliveries,
    }
}

/// Label pairs as chips.
fn chips(labels: &Labels) -> impl IntoView + use<> {
    labels
        .iter()
        .map(|(k, v)| view! { <span class="chip"><span class="chip-key">{k.clone()}</span> "=" {v.clone()}</span> })
        .collect_view()
}

/// Annotation pairs as a definition list's terms and descriptions.
fn annotations(pairs: &Labels) -> impl IntoView + use<> {
    pairs
        .iter()
        .map(|(k, v)| view! { <dt>{k.clone()}</dt> <dd>{v.clone()}</dd> })
        .collect_view()
}

/// An RFC 3339 time from the APIs as the UI writes times (UTC); Go's zero time, which
/// stands for "never", as `never`; anything unreadable as it came.
fn when(t: &str) -> String {
    if t.is_empty() || t.starts_with("0001-01-01") {
        return "never".into();
    }
    match parse_rfc3339(t) {
        Some(ts) => format!("{} UTC", format_time(ts)),
        None => t.to_string(),
    }
}

fn error_view(e: String) -> AnyView {
    view! { <p class="error" role="alert">{e}</p> }.into_any()
}

/// The alerts page.
#[component]
pub(crate) fn Alerts() -> impl IntoView {
    let query = use_query_map();
    let api = use_api();
    let post_api = api.clone();
    let page = Resource::new(
        || (),
        move |_| {
            let api = api.clone();
            async move { load(api).await }
        },
    );
    // The new-silence form, pre-filled from `?silence=` (a link on every alert).
    let matchers = RwSignal::new(query.with_untracked(|q| q.get("silence").unwrap_or_default()));
    let initial_matchers = matchers.get_untracked();
    let duration = RwSignal::new("2h".to_string());
    let author = RwSignal::new(String::new());
    let comment = RwSignal::new(String::new());
    let outcome = RwSignal::new(None::<Result<String, String>>);
    Effect::new(move |_| {
        if let Some(m) = query.with(|q| q.get("silence")) {
            matchers.set(m);
        }
    });
    let create = Action::new(move |_: &()| {
        let api = post_api.clone();
        let (m, d, a, c) = (
            matchers.get_untracked(),
            duration.get_untracked(),
            author.get_untracked(),
            comment.get_untracked(),
        );
        async move {
            let matchers = parse_matchers(&m)?;
            let secs = parse_duration(d.trim())?;
            if a.trim().is_empty() || c.trim().is_empty() {
                return Err("a silence needs an author and a comment".to_string());
            }
            let start = now();
            let body = serde_json::json!({
                "matchers": matchers,
                "startsAt": rfc3339(start),
                "endsAt": rfc3339(start + secs),
                "createdBy": a.trim(),
                "comment": c.trim(),
            });
            let answer = api
                .send_json("POST", "/api/v2/silences", Some(body.to_string()))
                .await?;
            Ok(answer["silenceID"].as_str().unwrap_or_default().to_string())
        }
    });
    Effect::new(move |_| {
        if let Some(r) = create.value().get() {
            if r.is_ok() {
                page.refetch();
            }
            outcome.set(Some(r));
        }
    });
    let expire_api = use_api();
    let expire = Action::new(move |id: &String| {
        let api = expire_api.clone();
        let id = id.clone();
        async move {
            api.send_json("DELETE", &format!("/api/v2/silence/{}", encode(&id)), None)
                .await
                .map(|_| ())
        }
    });
    Effect::new(move |_| {
        if let Some(r) = expire.value().get() {
            match r {
                Ok(()) => page.refetch(),
                Err(e) => outcome.set(Some(Err(e))),
            }
        }
    });

    let alerts_view = move || {
        Suspend::new(async move {
            let p = page.await;
            let (routed, unknown) = match p.routed {
                Ok(r) => (r, None),
                Err(e) => (Vec::new(), Some(e)),
            };
            match p.alerts {
                Err(e) => error_view(e),
                Ok(a) if a.is_empty() => {
                    view! { <p class="hint">"No alert is firing or pending."</p> }.into_any()
                }
                Ok(mut a) => {
                    let unknown = unknown.map(|e| view! {
                        <p class="warning">{format!("Whether silences hold these alerts back is not known: {e}")}</p>
                    });
                    a.sort_by(|x, y| {
                        (x.state != "firing", &x.labels).cmp(&(y.state != "firing", &y.labels))
                    });
                    view! {
                        {unknown}
                        <ul class="alert-list">
                            {a.into_iter()
                                .map(|al| {
                                    let name = al.labels.get("alertname").cloned().unwrap_or_default();
                                    let silence = format!("/alerts?silence={}#new-silence", encode(&matchers_for(&al.labels)));
                                    let status = routed.iter().find(|r| r.labels == al.labels).map(|r| r.status.clone());
                                    let suppressed = status.and_then(|st| {
                                        if !st.silenced_by.is_empty() {
                                            Some(("silenced", format!("silenced by {}", st.silenced_by.join(", "))))
                                        } else if !st.inhibited_by.is_empty() {
                                            Some(("inhibited", format!("inhibited by {}", st.inhibited_by.join(", "))))
                                        } else {
                                            None
                                        }
                                    });
                                    let annotations = annotations(&al.annotations);
                                    view! {
                                        <li class="alert-item">
                                            <div class="alert-head">
                                                <span class=format!("state state-{}", al.state)>{al.state.clone()}</span>
                                                {suppressed.map(|(state, by)| view! {
                                                    <span class=format!("state state-{state}") title=by>{state}</span>
                                                })}
                                                <strong>{name}</strong>
                                                <span class="muted">
                                                    {al.active_at.as_deref().map(|t| format!("since {}", when(t))).unwrap_or_default()}
                                                </span>
                                                {al.value.clone().map(|v| view! { <span class="muted">{format!("value {v}")}</span> })}
                                                <a href=silence class="silence-link">"Silence…"</a>
                                            </div>
                                            <div class="chips">{chips(&al.labels)}</div>
                                            <dl class="labels">{annotations}</dl>
                                        </li>
                                    }
                                })
                                .collect_view()}
                        </ul>
                    }
                    .into_any()
                }
            }
        })
    };

    let rules_view = move || {
        Suspend::new(async move {
            let p = page.await;
            match p.groups {
                Err(e) => error_view(e),
                Ok(g) if g.is_empty() => view! {
                    <p class="hint">"No rules loaded. Give rule files with " <code>"--rule-file"</code> " or " <code>"rules.files"</code> "."</p>
                }
                .into_any(),
                Ok(g) => g
                    .into_iter()
                    .map(|group| {
                        let rows = group
                            .rules
                            .into_iter()
                            .map(|r| {
                                let state = r.state.clone().unwrap_or_else(|| "–".into());
                                let class = format!("state state-{state}");
                                let graph = format!("/explore/metrics?q={}&from=now-1h&to=now", encode(&r.query));
                                view! {
                                    <tr>
                                        <td><strong>{r.name.clone()}</strong> <span class="muted">{format!(" {}", r.kind)}</span></td>
                                        <td><span class=class>{state}</span> {(!r.alerts.is_empty()).then(|| format!(" ({})", r.alerts.len()))}</td>
                                        <td class:bad=r.health == "err">{r.health.clone()}</td>
                                        <td><a href=graph><code>{r.query.clone()}</code></a>
                                            {(r.duration > 0.0).then(|| view! { <span class="muted">{format!(" for {}", format_duration(r.duration))}</span> })}
                                            {(!r.labels.is_empty()).then(|| view! { <div class="chips">{chips(&r.labels)}</div> })}
                                            {(!r.annotations.is_empty()).then(|| view! { <dl class="labels">{annotations(&r.annotations)}</dl> })}
                                            {r.last_error.clone().filter(|e| !e.is_empty()).map(|e| view! { <p class="error">{e}</p> })}
                                        </td>
                                        <td class="muted">{when(r.last_evaluation.as_deref().unwrap_or_default())}</td>
                                        <td class="num">{format!("{:.1} ms", r.evaluation_time * 1000.0)}</td>
                                    </tr>
                                }
                            })
                            .collect_view();
                        view! {
                            <h3>{group.name.clone()} <span class="muted">{format!(" {} · every {}s", group.file, group.interval)}</span></h3>
                            <div class="table-scroll">
                                <table class="result-table rules-table">
                                    <thead><tr><th>"Rule"</th><th>"State"</th><th>"Health"</th><th>"Expression"</th><th>"Last evaluation"</th><th class="num">"Took"</th></tr></thead>
                                    <tbody>{rows}</tbody>
                                </table>
                            </div>
                        }
                    })
                    .collect_view()
                    .into_any(),
            }
        })
    };

    let silences_view = move || {
        Suspend::new(async move {
            let p = page.await;
            match p.silences {
                Err(e) => error_view(e),
                Ok(s) if s.is_empty() => view! { <p class="hint">"No silences."</p> }.into_any(),
                Ok(s) => view! {
                    <ul class="silence-list">
                        {s.into_iter()
                            .map(|si| {
                                let id = si.id.clone();
                                let expired = si.status.state == "expired";
                                let matchers = si.matchers.iter().map(|m| m.text()).collect::<Vec<_>>().join(", ");
                                view! {
                                    <li class="silence-item" class:expired=expired data-id=si.id.clone()>
                                        <span class=format!("state state-{}", si.status.state)>{si.status.state.clone()}</span>
                                        <code class="matchers">{matchers}</code>
                                        <span class="muted">{format!("{} → {}", when(&si.starts_at), when(&si.ends_at))}</span>
                                        <span>{format!("{}: {}", si.created_by, si.comment)}</span>
                                        {(!expired).then(|| view! {
                                            <button type="button" class="expire" on:click=move |_| { expire.dispatch(id.clone()); }>"Expire"</button>
                                        })}
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                }
                .into_any(),
            }
        })
    };

    let deliveries_view = move || {
        Suspend::new(async move {
            let p = page.await;
            match p.deliveries {
                Err(e) => error_view(e),
                Ok(d) if d.is_empty() => view! { <p class="hint">"No notification has been sent yet."</p> }.into_any(),
                Ok(d) => view! {
                    <div class="table-scroll">
                    <table class="result-table">
                        <thead><tr><th>"Receiver"</th><th>"Integration"</th><th class="num">"Sent"</th><th class="num">"Failed"</th><th>"Last attempt"</th><th>"Last success"</th><th>"Last error"</th></tr></thead>
                        <tbody>
                            {d.into_iter()
                                .map(|x| view! {
                                    <tr>
                                        <td>{x.receiver}</td>
                                        <td>{x.integration}</td>
                                        <td class="num">{x.sent.to_string()}</td>
                                        <td class="num" class:bad={x.failed > 0}>{x.failed.to_string()}</td>
                                        <td class="muted">{x.last_attempt.as_deref().map(when).unwrap_or_default()}</td>
                                        <td class="muted">{x.last_success.as_deref().map(when).unwrap_or_default()}</td>
                                        <td class="bad">{x.last_error.unwrap_or_default()}</td>
                                    </tr>
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                    </div>
                }
                .into_any(),
            }
        })
    };

    view! {
        <Title text="Alerts · SignalBox"/>
        <h1>"Alerts"</h1>
        <section class="results">
            <h2>"Firing and pending"</h2>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>{alerts_view}</Suspense>
        </section>
        <section class="results">
            <h2>"Rules"</h2>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>{rules_view}</Suspense>
        </section>
        <section class="results" id="new-silence">
            <h2>"Silences"</h2>
            <form class="silence-form" on:submit=move |ev| { ev.prevent_default(); create.dispatch(()); }>
                <label class="grow">"Matchers"
                    <input name="matchers" value=initial_matchers prop:value=move || matchers.get() on:input=move |ev| matchers.set(event_target_value(&ev))
                        placeholder="alertname=\"HighLatency\", job=~\"api|web\""/>
                </label>
                <label>"For" <input name="duration" size="6" value="2h" prop:value=move || duration.get() on:input=move |ev| duration.set(event_target_value(&ev))/></label>
                <label>"Author" <input name="createdBy" size="12" prop:value=move || author.get() on:input=move |ev| author.set(event_target_value(&ev))/></label>
                <label class="grow">"Comment" <input name="comment" prop:value=move || comment.get() on:input=move |ev| comment.set(event_target_value(&ev))/></label>
                <button type="submit" class="primary" disabled=move || create.pending().get()>"Create silence"</button>
            </form>
            {move || outcome.get().map(|r| match r {
                Ok(id) => view! { <p class="ok" role="status">{format!("Silence {id} created.")}</p> }.into_any(),
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
            })}
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>{silences_view}</Suspense>
        </section>
        <section class="results">
            <h2>"Notifications"</h2>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>{deliveries_view}</Suspense>
        </section>
    }
}
