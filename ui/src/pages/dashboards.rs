//! The dashboards: the list, a new empty dashboard, and the import of a Grafana
//! dashboard export.

use crate::api::{PromEnvelope, encode, use_api};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_navigate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Listed {
    uid: String,
    title: String,
    #[serde(default)]
    tags: Vec<String>,
    panels: usize,
    provisioned: bool,
}

#[component]
pub(crate) fn Dashboards() -> impl IntoView {
    let api = use_api();
    let list = Resource::new(
        || (),
        move |_| {
            let api = api.clone();
            async move {
                api.get_json::<PromEnvelope<Vec<Listed>>>("/api/v1/dashboards")
                    .await
                    .and_then(PromEnvelope::into_result)
            }
        },
    );
    let title = RwSignal::new(String::new());
    let grafana = RwSignal::new(String::new());
    let message = RwSignal::new(None::<Result<String, String>>);
    let (create_api, import_api) = (use_api(), use_api());
    let navigate = use_navigate();
    let create = Action::new(move |_: &()| {
        let api = create_api.clone();
        let t = title.get_untracked();
        async move {
            if t.trim().is_empty() {
                return Err("give the dashboard a title".to_string());
            }
            let body = serde_json::json!({"title": t.trim()}).to_string();
            let data = api
                .send_json("POST", "/api/v1/dashboards", Some(body))
                .await?["data"]
                .clone();
            Ok(data["uid"].as_str().unwrap_or_default().to_string())
        }
    });
    let import = Action::new(move |_: &()| {
        let api = import_api.clone();
        let doc = grafana.get_untracked();
        async move {
            if doc.trim().is_empty() {
                return Err("paste a Grafana dashboard export (JSON)".to_string());
            }
            let data = api
                .send_json("POST", "/api/v1/dashboards/import", Some(doc))
                .await?["data"]
                .clone();
            let uid = data["uid"].as_str().unwrap_or_default().to_string();
            let warnings: Vec<String> = data["warnings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|w| w.as_str().map(str::to_string))
                .collect();
            Ok((uid, warnings))
        }
    });
    {
        let navigate = navigate.clone();
        Effect::new(move |_| match create.value().get() {
            Some(Ok(uid)) => navigate(
                &format!("/dashboards/{}/edit", encode(&uid)),
                Default::default(),
            ),
            Some(Err(e)) => message.set(Some(Err(e))),
            None => {}
        });
    }
    Effect::new(move |_| match import.value().get() {
        Some(Ok((uid, warnings))) => {
            list.refetch();
            let mut text = format!("Imported as {uid}.");
            if !warnings.is_empty() {
                text.push_str(&format!(" Not imported: {}.", warnings.join("; ")));
            }
            message.set(Some(Ok(text)));
            grafana.set(String::new());
        }
        Some(Err(e)) => message.set(Some(Err(e))),
        None => {}
    });

    let rows = move || {
        Suspend::new(async move {
            match list.await {
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok((l, _)) if l.is_empty() => view! { <p class="hint">"No dashboards yet: create one or import one from Grafana below."</p> }.into_any(),
                Ok((l, warnings)) => view! {
                    {(!warnings.is_empty()).then(|| view! { <p class="warning">{warnings.join("; ")}</p> })}
                    <ul class="dashboard-list">
                        {l.into_iter()
                            .map(|d| {
                                let href = format!("/dashboards/{}", encode(&d.uid));
                                view! {
                                    <li>
                                        <a href=href class="dashboard-link">{d.title.clone()}</a>
                                        <span class="muted">{format!(" {} panels", d.panels)}</span>
                                        {d.provisioned.then(|| view! { <span class="state">"provisioned"</span> })}
                                        {d.tags.iter().map(|t| view! { <span class="chip">{t.clone()}</span> }).collect_view()}
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

    view! {
        <Title text="Dashboards · SignalBox"/>
        <h1>"Dashboards"</h1>
        <section class="results">
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>{rows}</Suspense>
        </section>
        {move || message.get().map(|m| match m {
            Ok(t) => view! { <p class="ok" role="status">{t}</p> }.into_any(),
            Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
        })}
        <section class="results">
            <h2>"New dashboard"</h2>
            <form class="silence-form" on:submit=move |ev| { ev.prevent_default(); create.dispatch(()); }>
                <label class="grow">"Title"
                    <input name="title" prop:value=move || title.get() on:input=move |ev| title.set(event_target_value(&ev))/>
                </label>
                <button type="submit" class="primary">"Create"</button>
            </form>
        </section>
        <section class="results">
            <h2>"Import from Grafana"</h2>
            <p class="hint">"Paste a dashboard exported from Grafana (Share → Export → JSON). Prometheus and Loki queries, time series, stat, gauge, bar, table and logs panels and label_values variables are kept; other panels stay as placeholders."</p>
            <form on:submit=move |ev| { ev.prevent_default(); import.dispatch(()); }>
                <textarea name="grafana" rows="8" spellcheck="false"
                    prop:value=move || grafana.get() on:input=move |ev| grafana.set(event_target_value(&ev))></textarea>
                <button type="submit" class="primary">"Import"</button>
            </form>
        </section>
    }
}
