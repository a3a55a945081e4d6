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
            // A panel of another size would overlap others: all are laid out again.
            Edit::Width(i, w) => {
                panel_of(d, i)?.grid.w = number(&w, "the width", 1, GRID_COLUMNS)?;
                d.reflow();
            }
            Edit::Height(i, h) => {
                panel_of(d, i)?.grid.h = number(&h, "the height", 1, 100)?;
                d.reflow();
            }
            Edit::Unit(i, u) => panel_of(d, i)?.unit = u.trim().to_string(),
            Edit::Expr(i, j, e) => query_of(d, i, j)?.expr = e.trim().to_string(),
            Edit::Legend(i, j, l) => query_of(d, i, j)?.legend = l,
            Edit::Exemplars(i, j, on) => query_of(d, i, j)?.exemplars = on,
            Edit::AddQuery(i) => {
                let p = panel_of(d, i)?;
                let lang = p.queries.last().map(|q| q.lang).unwrap_or_default();
                p.queries.push(Query {
                    lang,
                    ..Query::default()
                });
            }
            Edit::RemoveQuery(i, j) => {
                let p = panel_of(d, i)?;
                if j < p.queries.len() {
                    p.queries.remove(j);
                }
            }
            Edit::Move(i, by) => {
                panel_of(d, i)?;
                if !d.move_panel(i, by) {
                    return Err(format!("panel {} cannot move further", i + 1));
                }
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
    with_dashboard(text, |d| {
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
                ..Query::default()
            }],
            unit: String::new(),
            min: None,
            max: None,
            note: String::new(),
        });
        d.number_panels();
        Ok(())
    })
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
                // The editor lists panels in the order they are seen.
                d.sort_panels();
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
    let change = Callback::new(move |edit: Edit| match apply(&text.get_untracked(), edit) {
        Ok(t) => {
            text.set(t);
            message.set(None);
        }
        Err(e) => message.set(Some(e)),
    });
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
            // Parsed once per change of the text, for every field.
            let doc = parsed(text);
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
                    <Settings doc change/>
                    <h2>"Panels"</h2>
                    <PanelEditors doc change/>
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
                        <button type="button" class="expire delete" on:blur=move |_| confirm_delete.set(false) on:click=move |_| {
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

// The editor's fields are a few small components with concrete types (signals and
// callbacks rather than closures), so that the many fields of the editor share their
// code in the browser bundle instead of each being compiled on its own.

/// A text field (or, `multiline`, a text area) whose value follows `value` and whose
/// change (on leaving it) goes to `set`.
#[component]
fn Field(
    label: Signal<String>,
    name: String,
    value: Signal<String>,
    set: Callback<String>,
    #[prop(optional)] size: u32,
    #[prop(optional)] placeholder: &'static str,
    #[prop(optional)] grow: bool,
    #[prop(optional)] multiline: bool,
) -> impl IntoView {
    let changed = move |ev: leptos::ev::Event| set.run(event_target_value(&ev));
    if multiline {
        view! {
            <label class="query-label">{label}
                <textarea name=name rows="2" spellcheck="false" prop:value=value on:change=changed></textarea>
            </label>
        }
        .into_any()
    } else {
        view! {
            <label class:grow=grow>{label}
                <input name=name size=(size > 0).then(|| size.to_string()) placeholder=placeholder
                    prop:value=value on:change=changed/>
            </label>
        }
        .into_any()
    }
}

/// A choice among `options`, following `value`, sent to `set`.
#[component]
fn Choice(
    label: &'static str,
    name: String,
    options: Vec<&'static str>,
    value: Signal<String>,
    set: Callback<String>,
) -> impl IntoView {
    view! {
        <label>{label}
            <select name=name prop:value=value on:change=move |ev| set.run(event_target_value(&ev))>
                // `selected` too: a list built in the browser gets its value before its
                // options.
                {options
                    .into_iter()
                    .map(|o| view! { <option value=o selected=move || value.with(|v| v == o)>{o}</option> })
                    .collect_view()}
            </select>
        </label>
    }
}

/// A check box following `checked`, sent to `set`.
#[component]
fn Check(
    label: &'static str,
    title: &'static str,
    name: String,
    checked: Signal<bool>,
    set: Callback<bool>,
) -> impl IntoView {
    view! {
        <label class="check" title=title>
            <input type="checkbox" name=name prop:checked=checked on:change=move |ev| set.run(event_target_checked(&ev))/>
            {label}
        </label>
    }
}

/// A button that makes `edit` unless `disabled`.
#[component]
fn EditButton(
    label: &'static str,
    class: &'static str,
    edit: Edit,
    change: Callback<Edit>,
    #[prop(default = Signal::stored(false))] disabled: Signal<bool>,
) -> impl IntoView {
    view! {
        <button type="button" class=class disabled=disabled on:click=move |_| change.run(edit.clone())>{label}</button>
    }
}

fn fixed(s: &str) -> Signal<String> {
    Signal::stored(s.to_string())
}

/// The dashboard's title, time range and refresh. The fields stay in place while the
/// document changes (their values follow it), so the focus is not lost between them.
#[component]
fn Settings(doc: Memo<Result<Dashboard, String>>, change: Callback<Edit>) -> impl IntoView {
    let field = move |f: fn(&Dashboard) -> String| {
        Signal::derive(move || doc.with(|d| d.as_ref().map(f).unwrap_or_default()))
    };
    let set = move |mk: fn(String) -> Edit| Callback::new(move |v: String| change.run(mk(v)));
    view! {
        <div class="silence-form dashboard-settings">
            <Field label=fixed("Title") name="dashboard-title".into() grow=true
                value=field(|d| d.title.clone()) set=set(Edit::DashboardTitle)/>
            <Field label=fixed("From") name="dashboard-from".into() size=10
                value=field(|d| d.from.clone()) set=set(Edit::From)/>
            <Field label=fixed("To") name="dashboard-to".into() size=10
                value=field(|d| d.to.clone()) set=set(Edit::To)/>
            <Field label=fixed("Refresh") name="dashboard-refresh".into() size=6 placeholder="off"
                value=field(|d| d.refresh.clone()) set=set(Edit::Refresh)/>
        </div>
    }
}

/// One set of fields per panel, in the document's order: title, type, size, unit, the
/// queries with their legends and exemplar switches, and buttons that add or remove a
/// query and move or remove the panel. Rows are keyed by position and their values
/// follow the document.
#[component]
fn PanelEditors(doc: Memo<Result<Dashboard, String>>, change: Callback<Edit>) -> impl IntoView {
    let count = move || doc.with(|d| d.as_ref().map_or(0, |d| d.panels.len()));
    let panel = move |i: usize, f: fn(&Panel) -> String| {
        Signal::derive(move || {
            doc.with(|d| {
                d.as_ref()
                    .ok()
                    .and_then(|d| d.panels.get(i))
                    .map(f)
                    .unwrap_or_default()
            })
        })
    };
    let query = move |i: usize, j: usize, f: fn(&Query) -> String| {
        Signal::derive(move || {
            doc.with(|d| {
                d.as_ref()
                    .ok()
                    .and_then(|d| d.panels.get(i))
                    .and_then(|p| p.queries.get(j))
                    .map(f)
                    .unwrap_or_default()
            })
        })
    };
    let queries = move |i: usize| {
        doc.with(|d| {
            d.as_ref()
                .ok()
                .and_then(|d| d.panels.get(i))
                .map_or(0, |p| p.queries.len())
        })
    };
    let set = move |mk: fn(usize, String) -> Edit, i: usize| {
        Callback::new(move |v: String| change.run(mk(i, v)))
    };
    let set_query = move |mk: fn(usize, usize, String) -> Edit, i: usize, j: usize| {
        Callback::new(move |v: String| change.run(mk(i, j, v)))
    };
    let invalid = move || {
        doc.with(|d| {
            d.as_ref().err().map(|e| {
                view! { <p class="hint">"The panels are listed again when the document below is a dashboard: " {e.clone()}</p> }
            })
        })
    };
    let kinds: Vec<&'static str> = PanelType::ALL.iter().map(|k| k.name()).collect();
    let query_row = move |i: usize, j: usize| {
        let label = query(i, j, |q| {
            let lang = match q.lang {
                Lang::Promql => "PromQL",
                Lang::Logql => "LogQL",
                Lang::Traces => "trace search",
            };
            lang.to_string()
        });
        let label = Signal::derive(move || format!("Query {} ({})", j + 1, label.get()));
        let exemplars = Signal::derive(move || {
            doc.with(|d| {
                d.as_ref()
                    .ok()
                    .and_then(|d| d.panels.get(i)?.queries.get(j))
                    .is_some_and(|q| q.exemplars)
            })
        });
        view! {
            <div class="query-edit">
                <Field label name=format!("panel-{i}-query-{j}") multiline=true
                    value=query(i, j, |q| q.expr.clone()) set=set_query(Edit::Expr, i, j)/>
                <div class="silence-form">
                    <Field label=fixed("Legend") name=format!("panel-{i}-legend-{j}") grow=true placeholder="{{label}}"
                        value=query(i, j, |q| q.legend.clone()) set=set_query(Edit::Legend, i, j)/>
                    <Check label="Exemplars" title="Draw the exemplars of the series a PromQL query selects (time-series panels)"
                        name=format!("panel-{i}-exemplars-{j}")
                        checked=exemplars
                        set=Callback::new(move |on: bool| change.run(Edit::Exemplars(i, j, on)))/>
                    <EditButton label="Remove query" class="cancel" edit=Edit::RemoveQuery(i, j) change/>
                </div>
            </div>
        }
        .into_any()
    };
    let panel_row = move |i: usize| {
        let kinds = kinds.clone();
        view! {
            <fieldset class="panel-editor">
                <legend>{format!("Panel {}", i + 1)}</legend>
                <div class="silence-form">
                    <Field label=fixed("Title") name=format!("panel-{i}-title") grow=true
                        value=panel(i, |p| p.title.clone()) set=set(Edit::Title, i)/>
                    <Choice label="Type" name=format!("panel-{i}-type") options=kinds
                        value=panel(i, |p| p.kind.name().to_string()) set=set(Edit::Kind, i)/>
                    <Field label=fixed("Width (of 24)") name=format!("panel-{i}-width") size=3
                        value=panel(i, |p| p.grid.w.to_string()) set=set(Edit::Width, i)/>
                    <Field label=fixed("Height") name=format!("panel-{i}-height") size=3
                        value=panel(i, |p| p.grid.h.to_string()) set=set(Edit::Height, i)/>
                    <Field label=fixed("Unit") name=format!("panel-{i}-unit") size=8 placeholder="s, bytes, percent"
                        value=panel(i, |p| p.unit.clone()) set=set(Edit::Unit, i)/>
                </div>
                <For each=move || 0..queries(i) key=|j| *j children=move |j| query_row(i, j)/>
                <div class="range-row">
                    <EditButton label="Add query" class="cancel" edit=Edit::AddQuery(i) change/>
                    <EditButton label="Move up" class="cancel move-up" edit=Edit::Move(i, -1) change
                        disabled=Signal::stored(i == 0)/>
                    <EditButton label="Move down" class="cancel move-down" edit=Edit::Move(i, 1) change
                        disabled=Signal::derive(move || i + 1 >= count())/>
                    <EditButton label="Remove panel" class="expire remove-panel" edit=Edit::Remove(i) change/>
                </div>
            </fieldset>
        }
        .into_any()
    };
    view! {
        {invalid}
        <For each=move || 0..count() key=|i| *i children=panel_row/>
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
            Edit::Move(0, -1),
            Edit::Move(1, 1),
        ] {
            assert!(apply(&text, bad.clone()).is_err(), "{bad:?}");
        }
        let d: Dashboard =
            serde_json::from_str(&apply(&text, Edit::Remove(0)).expect("removed")).expect("json");
        assert_eq!(d.panels.len(), 1);
    }
}
