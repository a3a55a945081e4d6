//! Editing a dashboard: its title, time range and refresh, each panel (title, type,
//! size, unit, queries, order, removal), a form that adds a panel, and the whole JSON
//! document; saved with the version check (a concurrent save is reported, not
//! overwritten). Every edit is made to the document, which stays the one source of truth.

use crate::api::{PromEnvelope, encode, use_api};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};
use signalbox_dashboard::{Dashboard, GRID_COLUMNS, Grid, Lang, Panel, PanelType, Query};

/// The dashboard in `text` changed by `f`, as the document's text.
fn with_dashboard(
    text: &str,
    f: impl FnOnce(&mut Dashboard) -> Result<(), String>,
) -> Result<String, String> {
    let mut d: Dashboard =
        serde_json::from_str(text).map_err(|e| format!("the document is not a dashboard: {e}"))?;
    f(&mut d)?;
    serde_json::to_string_pretty(&d).map_err(|e| e.to_string())
}

/// One change made through the form fields of the editor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Edit {
    DashboardTitle(String),
    From(String),
    To(String),
    Refresh(String),
    /// Of panel `.0`:
    Title(usize, String),
    Kind(usize, String),
    Width(usize, String),
    Height(usize, String),
    Unit(usize, String),
    /// Of query `.1` of panel `.0`:
    Expr(usize, usize, String),
    Legend(usize, usize, String),
    Exemplars(usize, usize, bool),
    AddQuery(usize),
    RemoveQuery(usize, usize),
    /// Moves the panel one place earlier (-1) or later (+1).
    Move(usize, isize),
    Remove(usize),
}

/// A whole number from `lo` to `hi` typed into the field `what`.
fn number(text: &str, what: &str, lo: u32, hi: u32) -> Result<u32, String> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (lo..=hi).contains(n))
        .ok_or_else(|| format!("{what} must be a whole number from {lo} to {hi}"))
}

/// The document in `text` with `edit` made.
pub(crate) fn apply(text: &str, edit: Edit) -> Result<String, String> {
    fn panel_of(d: &mut Dashboard, i: usize) -> Result<&mut Panel, String> {
        d.panels
            .get_mut(i)
            .ok_or_else(|| format!("there is no panel {}", i + 1))
    }
    fn query_of(d: &mut Dashboard, i: usize, j: usize) -> Result<&mut Query, String> {
        panel_of(d, i)?
            .queries
            .get_mut(j)
            .ok_or_else(|| format!("panel {} has no query {}", i + 1, j + 1))
    }
    with_dashboard(text, |d| {
        match edit {
            Edit::DashboardTitle(t) => d.title = t.trim().to_string(),
            Edit::From(t) => d.from = t.trim().to_string(),
            Edit::To(t) => d.to = t.trim().to_string(),
            Edit::Refresh(t) => d.refresh = t.trim().to_string(),
            Edit::Title(i, t) => panel_of(d, i)?.title = t.trim().to_string(),
            Edit::Kind(i, k) => {
                panel_of(d, i)?.kind =
                    PanelType::parse(&k).ok_or_else(|| format!("no panel type {k:?}"))?
            }
            Edit::Width(i, w) => {
                let w = number(&w, "the width", 1, GRID_COLUMNS)?;
                let g = &mut panel_of(d, i)?.grid;
                g.w = w;
                g.x = g.x.min(GRID_COLUMNS - w);
            }
            Edit::Height(i, h) => panel_of(d, i)?.grid.h = number(&h, "the height", 1, 100)?,
            Edit::Unit(i, u) => panel_of(d, i)?.unit = u.trim().to_string(),
            Edit::Expr(i, j, e) => query_of(d, i, j)?.expr = e.trim().to_string(),
            Edit::Legend(i, j, l) => query_of(d, i, j)?.legend = l,
            Edit::Exemplars(i, j, on) => query_of(d, i, j)?.exemplars = on,
            Edit::AddQuery(i) => {
                let p = panel_of(d, i)?;
                let lang = p.queries.last().map(|q| q.lang).unwrap_or_default();
                p.queries.push(Query {
                    lang,
                    expr: String::new(),
                    legend: String::new(),
                    exemplars: false,
                });
            }
            Edit::RemoveQuery(i, j) => {
                let p = panel_of(d, i)?;
                if j < p.queries.len() {
                    p.queries.remove(j);
                }
            }
            Edit::Move(i, by) => {
                d.move_panel(i, by);
            }
            Edit::Remove(i) => {
                panel_of(d, i)?;
                d.panels.remove(i);
            }
        }
        Ok(())
    })
}

/// Adds a panel to the dashboard in `text`, below the others.
pub(crate) fn add_panel(
    text: &str,
    title: &str,
    kind: PanelType,
    lang: Lang,
    expr: &str,
    width: u32,
) -> Result<String, String> {
    with_dashboard(text, |d| add_to(d, title, kind, lang, expr, width))
}

fn add_to(
    d: &mut Dashboard,
    title: &str,
    kind: PanelType,
    lang: Lang,
    expr: &str,
    width: u32,
) -> Result<(), String> {
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
            exemplars: false,
        }],
        unit: String::new(),
        min: None,
        max: None,
        note: String::new(),
    });
    d.number_panels();
    Ok(())
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
    // One change through a field: made to the document, or its error shown.
    let change = move |edit: Edit| match apply(&text.get_untracked(), edit) {
        Ok(t) => {
            text.set(t);
            message.set(None);
        }
        Err(e) => message.set(Some(e)),
    };
    let (save_api, delete_api) = (use_api(), use_api());
    // Deleting takes a second click on the same button.
    let confirm_delete = RwSignal::new(false);
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
                    <h2>"Dashboard"</h2>
                    <Settings text change/>
                    <h2>"Panels"</h2>
                    <PanelEditors text change/>
                </section>
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
                        <button type="button" class="expire delete" on:click=move |_| {
                            if confirm_delete.get_untracked() {
                                remove.dispatch(());
                            } else {
                                confirm_delete.set(true);
                            }
                        }>
                            {move || if confirm_delete.get() { "Click again to delete the dashboard" } else { "Delete dashboard" }}
                        </button>
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

/// The dashboard in the document, if it is one.
fn parsed(text: RwSignal<String>) -> Memo<Result<Dashboard, String>> {
    Memo::new(move |_| {
        text.with(|t| serde_json::from_str::<Dashboard>(t).map_err(|e| e.to_string()))
    })
}

/// The dashboard's title, time range and refresh. The fields stay in place while the
/// document changes (their values follow it), so the focus is not lost between them.
#[component]
fn Settings(
    text: RwSignal<String>,
    change: impl Fn(Edit) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let d = parsed(text);
    let field = move |f: fn(&Dashboard) -> String| {
        move || d.with(|d| d.as_ref().map(f).unwrap_or_default())
    };
    view! {
        <div class="silence-form dashboard-settings">
            <label class="grow">"Title"
                <input name="dashboard-title" prop:value=field(|d| d.title.clone())
                    on:change=move |ev| change(Edit::DashboardTitle(event_target_value(&ev)))/>
            </label>
            <label>"From"
                <input name="dashboard-from" size="10" prop:value=field(|d| d.from.clone())
                    on:change=move |ev| change(Edit::From(event_target_value(&ev)))/>
            </label>
            <label>"To"
                <input name="dashboard-to" size="10" prop:value=field(|d| d.to.clone())
                    on:change=move |ev| change(Edit::To(event_target_value(&ev)))/>
            </label>
            <label>"Refresh"
                <input name="dashboard-refresh" size="6" placeholder="off" prop:value=field(|d| d.refresh.clone())
                    on:change=move |ev| change(Edit::Refresh(event_target_value(&ev)))/>
            </label>
        </div>
    }
}

/// One set of fields per panel, in the document's order: title, type, size, unit, the
/// queries with their legends, and buttons that add or remove a query and move or
/// remove the panel. Rows are keyed by position and their values follow the document.
#[component]
fn PanelEditors(
    text: RwSignal<String>,
    change: impl Fn(Edit) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let d = parsed(text);
    let count = move || d.with(|d| d.as_ref().map_or(0, |d| d.panels.len()));
    let panel = move |i: usize, f: fn(&Panel) -> String| {
        move || {
            d.with(|d| {
                d.as_ref()
                    .ok()
                    .and_then(|d| d.panels.get(i))
                    .map(f)
                    .unwrap_or_default()
            })
        }
    };
    let query = move |i: usize, j: usize, f: fn(&Query) -> String| {
        move || {
            d.with(|d| {
                d.as_ref()
                    .ok()
                    .and_then(|d| d.panels.get(i))
                    .and_then(|p| p.queries.get(j))
                    .map(f)
                    .unwrap_or_default()
            })
        }
    };
    let queries = move |i: usize| {
        d.with(|d| {
            d.as_ref()
                .ok()
                .and_then(|d| d.panels.get(i))
                .map_or(0, |p| p.queries.len())
        })
    };
    let invalid = move || {
        d.with(|d| {
            d.as_ref().err().map(|e| {
                view! { <p class="hint">"The panels are listed again when the document below is a dashboard: " {e.clone()}</p> }
            })
        })
    };
    let lang_name = |q: &Query| {
        match q.lang {
            Lang::Promql => "PromQL",
            Lang::Logql => "LogQL",
            Lang::Traces => "trace search",
        }
        .to_string()
    };
    view! {
        {invalid}
        <For each=move || 0..count() key=|i| *i let:i>
            <fieldset class="panel-editor">
                <legend>{move || format!("Panel {}", i + 1)}</legend>
                <div class="silence-form">
                    <label class="grow">"Title"
                        <input name=format!("panel-{i}-title") prop:value=panel(i, |p| p.title.clone())
                            on:change=move |ev| change(Edit::Title(i, event_target_value(&ev)))/>
                    </label>
                    <label>"Type"
                        <select name=format!("panel-{i}-type") prop:value=panel(i, |p| p.kind.name().to_string())
                            on:change=move |ev| change(Edit::Kind(i, event_target_value(&ev)))>
                            {PanelType::ALL.iter().map(|k| view! { <option value=k.name()>{k.name()}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>"Width (of 24)"
                        <input name=format!("panel-{i}-width") size="3" prop:value=panel(i, |p| p.grid.w.to_string())
                            on:change=move |ev| change(Edit::Width(i, event_target_value(&ev)))/>
                    </label>
                    <label>"Height"
                        <input name=format!("panel-{i}-height") size="3" prop:value=panel(i, |p| p.grid.h.to_string())
                            on:change=move |ev| change(Edit::Height(i, event_target_value(&ev)))/>
                    </label>
                    <label>"Unit"
                        <input name=format!("panel-{i}-unit") size="8" placeholder="s, bytes, percent" prop:value=panel(i, |p| p.unit.clone())
                            on:change=move |ev| change(Edit::Unit(i, event_target_value(&ev)))/>
                    </label>
                </div>
                <For each=move || 0..queries(i) key=|j| *j let:j>
                    <div class="query-edit">
                        <label class="query-label">{move || format!("Query {} ({})", j + 1, query(i, j, lang_name)())}
                            <textarea name=format!("panel-{i}-query-{j}") rows="2" spellcheck="false" prop:value=query(i, j, |q| q.expr.clone())
                                on:change=move |ev| change(Edit::Expr(i, j, event_target_value(&ev)))></textarea>
                        </label>
                        <div class="silence-form">
                            <label class="grow">"Legend"
                                <input name=format!("panel-{i}-legend-{j}") placeholder="{{label}}" prop:value=query(i, j, |q| q.legend.clone())
                                    on:change=move |ev| change(Edit::Legend(i, j, event_target_value(&ev)))/>
                            </label>
                            <label class="check" title="Draw the exemplars of the series a PromQL query selects (time-series panels)">
                                <input type="checkbox" name=format!("panel-{i}-exemplars-{j}")
                                    prop:checked=move || query(i, j, |q| q.exemplars.to_string())() == "true"
                                    on:change=move |ev| change(Edit::Exemplars(i, j, event_target_checked(&ev)))/>
                                "Exemplars"
                            </label>
                            <button type="button" class="cancel" on:click=move |_| change(Edit::RemoveQuery(i, j))>"Remove query"</button>
                        </div>
                    </div>
                </For>
                <div class="range-row">
                    <button type="button" class="cancel" on:click=move |_| change(Edit::AddQuery(i))>"Add query"</button>
                    <button type="button" class="cancel move-up" disabled=move || i == 0 on:click=move |_| change(Edit::Move(i, -1))>"Move up"</button>
                    <button type="button" class="cancel move-down" disabled=move || { i + 1 >= count() } on:click=move |_| change(Edit::Move(i, 1))>"Move down"</button>
                    <button type="button" class="expire remove-panel" on:click=move |_| change(Edit::Remove(i))>"Remove panel"</button>
                </div>
            </fieldset>
        </For>
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

    #[test]
    fn field_edits_change_the_document_or_say_why_not() {
        let d = serde_json::to_string(&Dashboard::new("u", "T")).expect("json");
        let d = add_panel(&d, "A", PanelType::Timeseries, Lang::Promql, "up", 12).expect("added");
        let d = add_panel(&d, "B", PanelType::Stat, Lang::Promql, "up", 12).expect("added");
        let mut text = d;
        for edit in [
            Edit::DashboardTitle(" Shop ".into()),
            Edit::Refresh("30s".into()),
            Edit::Title(0, "Queues".into()),
            Edit::Kind(0, "bar".into()),
            Edit::Width(1, "20".into()),
            Edit::Height(1, "6".into()),
            Edit::Unit(0, "reqps".into()),
            Edit::AddQuery(0),
            Edit::Expr(0, 1, " rate(x[5m]) ".into()),
            Edit::Legend(0, 1, "{{job}}".into()),
            Edit::Exemplars(0, 1, true),
            Edit::RemoveQuery(0, 0),
            Edit::Move(1, -1),
        ] {
            text = apply(&text, edit.clone()).unwrap_or_else(|e| panic!("{edit:?}: {e}"));
        }
        let d: Dashboard = serde_json::from_str(&text).expect("dashboard");
        assert_eq!((d.title.as_str(), d.refresh.as_str()), ("Shop", "30s"));
        let first = &d.panels[1];
        assert_eq!(
            (first.title.as_str(), first.kind, first.unit.as_str()),
            ("Queues", PanelType::Bar, "reqps")
        );
        assert_eq!(first.queries.len(), 1);
        assert!(first.queries[0].exemplars);
        assert_eq!(
            (
                first.queries[0].expr.as_str(),
                first.queries[0].legend.as_str()
            ),
            ("rate(x[5m])", "{{job}}")
        );
        // B, now 20 wide and moved first, keeps its place on the grid within 24 columns.
        let b = &d.panels[0];
        assert_eq!(
            (b.title.as_str(), b.grid.x, b.grid.y, b.grid.w, b.grid.h),
            ("B", 0, 0, 20, 6)
        );
        assert_eq!((first.grid.x, first.grid.y), (0, 6));
        assert_eq!(d.check(), Ok(()));
        for bad in [
            Edit::Width(0, "25".into()),
            Edit::Height(0, "x".into()),
            Edit::Kind(0, "pie".into()),
            Edit::Title(9, "x".into()),
            Edit::Expr(0, 5, "up".into()),
        ] {
            assert!(apply(&text, bad.clone()).is_err(), "{bad:?}");
        }
        let d: Dashboard =
            serde_json::from_str(&apply(&text, Edit::Remove(0)).expect("removed")).expect("json");
        assert_eq!(d.panels.len(), 1);
    }
}
