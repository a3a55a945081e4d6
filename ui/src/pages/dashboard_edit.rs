//! Editing a dashboard: its JSON document, with a form that adds a panel to it, saved
//! with the version check (a concurrent save is reported, not overwritten).

use crate::api::{PromEnvelope, encode, use_api};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};
use signalbox_dashboard::{Dashboard, GRID_COLUMNS, Grid, Lang, Panel, PanelType, Query};

/// Adds a panel to the dashboard in `text`, below the others.
pub(crate) fn add_panel(
    text: &str,
    title: &str,
    kind: PanelType,
    lang: Lang,
    expr: &str,
    width: u32,
) -> Result<String, String> {
    let mut d: Dashboard =
        serde_json::from_str(text).map_err(|e| format!("the document is not a dashboard: {e}"))?;
    if expr.trim().is_empty() {
        return Err("the new panel needs a query".into());
    }
    let w = width.clamp(1, GRID_COLUMNS);
    // Next to the last panel if it fits on its row, else below everything.
    let (x, y) = match d.panels.last() {
        Some(p) if p.grid.x.saturating_add(p.grid.w).saturating_add(w) <= GRID_COLUMNS => {
            (p.grid.x + p.grid.w, p.grid.y)
        }
        _ => (0, d.next_row()),
    };
    d.panels.push(Panel {
        id: 0,
        title: title.trim().to_string(),
        kind,
        grid: Grid {
            x,
            y,
            w,
            h: if kind == PanelType::Stat { 4 } else { 8 },
        },
        queries: vec![Query {
            lang,
            expr: expr.trim().to_string(),
            legend: String::new(),
        }],
        unit: String::new(),
        min: None,
        max: None,
        note: String::new(),
    });
    d.number_panels();
    serde_json::to_string_pretty(&d).map_err(|e| e.to_string())
}

#[component]
pub(crate) fn DashboardEdit() -> impl IntoView {
    let path = use_params_map();
    let uid = Memo::new(move |_| path.with(|p| p.get("uid").unwrap_or_default()));
    let api = use_api();
    let doc = Resource::new(
        move || uid.get(),
        move |uid| {
            let api = api.clone();
            async move {
                let (mut d, _) = api
                    .get_json::<PromEnvelope<Dashboard>>(&format!(
                        "/api/v1/dashboards/{}",
                        encode(&uid)
                    ))
                    .await
                    .and_then(PromEnvelope::into_result)?;
                let provisioned = d.provisioned;
                d.provisioned = false;
                Ok::<_, String>((
                    serde_json::to_string_pretty(&d).map_err(|e| e.to_string())?,
                    provisioned,
                ))
            }
        },
    );
    let text = RwSignal::new(String::new());
    let message = RwSignal::new(None::<String>);
    let (title, kind, lang, expr, width) = (
        RwSignal::new(String::new()),
        RwSignal::new("timeseries".to_string()),
        RwSignal::new("promql".to_string()),
        RwSignal::new(String::new()),
        RwSignal::new("12".to_string()),
    );
    let add = move |_| {
        let k = PanelType::parse(&kind.get_untracked()).unwrap_or_default();
        let l = match lang.get_untracked().as_str() {
            "logql" => Lang::Logql,
            "traces" => Lang::Traces,
            _ => Lang::Promql,
        };
        let w = width.get_untracked().trim().parse().unwrap_or(12);
        match add_panel(
            &text.get_untracked(),
            &title.get_untracked(),
            k,
            l,
            &expr.get_untracked(),
            w,
        ) {
            Ok(t) => {
                text.set(t);
                expr.set(String::new());
                title.set(String::new());
                message.set(None);
            }
            Err(e) => message.set(Some(e)),
        }
    };
    let (save_api, delete_api) = (use_api(), use_api());
    let navigate = use_navigate();
    let save = Action::new(move |_: &()| {
        let api = save_api.clone();
        let (uid, body) = (uid.get_untracked(), text.get_untracked());
        async move {
            api.send_json(
                "PUT",
                &format!("/api/v1/dashboards/{}", encode(&uid)),
                Some(body),
            )
            .await
            .map(|_| uid)
        }
    });
    let remove = Action::new(move |_: &()| {
        let api = delete_api.clone();
        let uid = uid.get_untracked();
        async move {
            api.send_json(
                "DELETE",
                &format!("/api/v1/dashboards/{}", encode(&uid)),
                None,
            )
            .await
            .map(|_| ())
        }
    });
    {
        let navigate = navigate.clone();
        Effect::new(move |_| match save.value().get() {
            Some(Ok(uid)) => navigate(&format!("/dashboards/{}", encode(&uid)), Default::default()),
            Some(Err(e)) => message.set(Some(e)),
            None => {}
        });
    }
    Effect::new(move |_| match remove.value().get() {
        Some(Ok(())) => navigate("/dashboards", Default::default()),
        Some(Err(e)) => message.set(Some(e)),
        None => {}
    });

    let editor = move || {
        Suspend::new(async move {
            let (initial, provisioned) = match doc.await {
                Err(e) => return view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(x) => x,
            };
            text.set(initial.clone());
            let kinds = PanelType::ALL
                .iter()
                .map(|k| view! { <option value=k.name()>{k.name()}</option> })
                .collect_view();
            view! {
                {provisioned.then(|| view! {
                    <p class="warning">"This dashboard is provisioned from a file: change the file to change it. You can still try panels here."</p>
                })}
                <section class="results">
                    <h2>"Add a panel"</h2>
                    <div class="silence-form">
                        <label class="grow">"Title" <input name="panel-title" prop:value=move || title.get() on:input=move |ev| title.set(event_target_value(&ev))/></label>
                        <label>"Type" <select name="panel-type" on:change=move |ev| kind.set(event_target_value(&ev))>{kinds}</select></label>
                        <label>"Language"
                            <select name="panel-lang" on:change=move |ev| lang.set(event_target_value(&ev))>
                                <option value="promql">"PromQL"</option>
                                <option value="logql">"LogQL"</option>
                                <option value="traces">"Trace search"</option>
                            </select>
                        </label>
                        <label>"Width (of 24)" <input name="panel-width" size="3" value="12" on:input=move |ev| width.set(event_target_value(&ev))/></label>
                    </div>
                    <label class="query-label">"Query"
                        <textarea name="panel-query" rows="2" spellcheck="false" prop:value=move || expr.get() on:input=move |ev| expr.set(event_target_value(&ev))></textarea>
                    </label>
                    <button type="button" class="primary add-panel" on:click=add>"Add panel"</button>
                </section>
                <section class="results">
                    <h2>"Dashboard document"</h2>
                    <p class="hint">"Panels sit on a 24-column grid (x, y, w, h). Queries may use the dashboard's variables as $name, and $__interval, $__rate_interval, $__range."</p>
                    <textarea name="document" class="document" rows="24" spellcheck="false"
                        prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev))>{initial}</textarea>
                    <div class="range-row">
                        <button type="button" class="primary save" disabled=move || save.pending().get() on:click=move |_| { save.dispatch(()); }>"Save"</button>
                        <a href=format!("/dashboards/{}", encode(&uid.get_untracked()))>"Cancel"</a>
                        <button type="button" class="expire delete" on:click=move |_| { remove.dispatch(()); }>"Delete dashboard"</button>
                    </div>
                </section>
            }
            .into_any()
        })
    };
    view! {
        <Title text="Edit dashboard · SignalBox"/>
        <h1>"Edit dashboard"</h1>
        {move || message.get().map(|m| view! { <p class="error" role="alert">{m}</p> })}
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>{editor}</Suspense>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_are_added_beside_the_last_one_or_below() {
        let d = serde_json::to_string(&Dashboard::new("u", "T")).expect("json");
        let d = add_panel(&d, "A", PanelType::Timeseries, Lang::Promql, "up", 12).expect("added");
        let d = add_panel(&d, "B", PanelType::Stat, Lang::Promql, "up", 12).expect("added");
        let d = add_panel(&d, "C", PanelType::Logs, Lang::Logql, "{a=\"b\"}", 24).expect("added");
        let d: Dashboard = serde_json::from_str(&d).expect("dashboard");
        let grids: Vec<(u32, u32, u32, u32, u32)> = d
            .panels
            .iter()
            .map(|p| (p.id, p.grid.x, p.grid.y, p.grid.w, p.grid.h))
            .collect();
        assert_eq!(
            grids,
            [(1, 0, 0, 12, 8), (2, 12, 0, 12, 4), (3, 0, 8, 24, 8)]
        );
        assert_eq!(d.check(), Ok(()));
        assert!(add_panel("{", "X", PanelType::Stat, Lang::Promql, "up", 6).is_err());
        assert!(
            add_panel(
                &serde_json::to_string(&d).expect("json"),
                "X",
                PanelType::Stat,
                Lang::Promql,
                " ",
                6
            )
            .is_err()
        );
    }
}
