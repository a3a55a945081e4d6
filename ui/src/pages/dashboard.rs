//! One dashboard: its variables, time range and refresh (all in the URL: `from`,
//! `to`, `refresh`, `var-<name>`), and its panels on the 24-column grid.

mod panel;

use super::param_or;
use crate::api::{Api, PromEnvelope, encode, use_api};
use crate::pages::Running;
use crate::timerange::{Range, format_time, now, resolve};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};
use panel::{DashPanel, Loaded, load_panel};
use serde::{Deserialize, Serialize};
use signalbox_dashboard::{Dashboard, Selection, Variable, interpolate, parse_label_values};

const QUICK_RANGES: [&str; 5] = ["1h", "6h", "24h", "7d", "30d"];
const REFRESH: [&str; 5] = ["", "10s", "30s", "1m", "5m"];

/// A variable with the values it can take and those chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Resolved {
    var: Variable,
    options: Vec<String>,
    chosen: Vec<String>,
    all: bool,
    error: Option<String>,
}

impl Resolved {
    fn selection(&self) -> Selection {
        Selection {
            name: self.var.name.clone(),
            values: if self.all {
                self.options.clone()
            } else {
                self.chosen.clone()
            },
            all: self.all,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Page {
    dashboard: Dashboard,
    vars: Vec<Resolved>,
    /// The range as written (the URL's, else the dashboard's) and resolved.
    from: String,
    to: String,
    range: Result<Range, String>,
    /// Each panel's data, in the dashboard's order (none when the range is wrong).
    panels: Vec<Loaded>,
}

async fn options(api: &Api, v: &Variable, earlier: &[Selection]) -> Result<Vec<String>, String> {
    if v.query.is_empty() {
        return Ok(v.options.clone());
    }
    let (selector, label) = parse_label_values(&v.query)?;
    let mut url = format!("/api/v1/label/{}/values", encode(&label));
    if let Some(s) = selector {
        url.push_str(&format!(
            "?match[]={}",
            encode(&interpolate(&s, earlier, 60.0, 3600.0))
        ));
    }
    api.get_json::<PromEnvelope<Vec<String>>>(&url)
        .await
        .and_then(PromEnvelope::into_result)
        .map(|(v, _)| v)
}

/// Everything the page shows: the dashboard, its variables' options, and the data of
/// every panel, whose queries run concurrently over one resolved range. Loading the
/// panels here rather than in a resource per panel means a server render runs each
/// query once.
async fn load(
    api: Api,
    uid: String,
    chosen: Vec<(String, Vec<String>)>,
    from: Option<String>,
    to: Option<String>,
) -> Result<Page, String> {
    let (dashboard, _) = api
        .get_json::<PromEnvelope<Dashboard>>(&format!("/api/v1/dashboards/{}", encode(&uid)))
        .await
        .and_then(PromEnvelope::into_result)?;
    let mut vars: Vec<Resolved> = Vec::new();
    for v in &dashboard.variables {
        let earlier: Vec<Selection> = vars.iter().map(Resolved::selection).collect();
        let (opts, error) = match options(&api, v, &earlier).await {
            Ok(o) => (o, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let asked = chosen
            .iter()
            .find(|(n, _)| *n == v.name)
            .map(|(_, vals)| vals.clone())
            .unwrap_or_default();
        let all =
            v.include_all && (asked.iter().any(|a| a == "$__all") || (asked.is_empty() && v.multi));
        let mut pick: Vec<String> = asked.into_iter().filter(|a| opts.contains(a)).collect();
        if !v.multi {
            pick.truncate(1);
        }
        if pick.is_empty() && !all {
            pick = opts.first().cloned().into_iter().collect();
        }
        vars.push(Resolved {
            var: v.clone(),
            options: opts,
            chosen: pick,
            all,
            error,
        });
    }
    let from = from.unwrap_or_else(|| dashboard.from.clone());
    let to = to.unwrap_or_else(|| dashboard.to.clone());
    let range = resolve(&from, &to, "", now());
    let panels = match range {
        Ok(r) => {
            let selections: Vec<Selection> = vars.iter().map(Resolved::selection).collect();
            futures::future::join_all(
                dashboard
                    .panels
                    .iter()
                    .map(|p| load_panel(api.clone(), p.clone(), r, selections.clone())),
            )
            .await
        }
        Err(_) => Vec::new(),
    };
    Ok(Page {
        dashboard,
        vars,
        from,
        to,
        range,
        panels,
    })
}

/// The dashboard page.
#[component]
pub(crate) fn DashboardView() -> impl IntoView {
    let path = use_params_map();
    let query = use_query_map();
    let uid = Memo::new(move |_| path.with(|p| p.get("uid").unwrap_or_default()));
    let chosen = Memo::new(move |_| {
        query.with(|q| {
            let mut out: Vec<(String, Vec<String>)> = Vec::new();
            for (k, _) in q.into_iter() {
                if let Some(name) = k.strip_prefix("var-")
                    && !out.iter().any(|(n, _)| n == name)
                {
                    out.push((name.to_string(), q.get_all(k).unwrap_or_default()));
                }
            }
            out
        })
    });
    let api = use_api();
    // The URL's range; absent, the dashboard's (known once it is loaded).
    let range = Memo::new(move |_| {
        query.with(|q| {
            let given = |k: &str| Some(param_or(q, k, "")).filter(|s| !s.is_empty());
            (given("from"), given("to"))
        })
    });
    let page = Resource::new(
        move || (uid.get(), chosen.get(), range.get()),
        move |(uid, chosen, (from, to))| {
            let api = api.clone();
            async move { load(api, uid, chosen, from, to).await }
        },
    );
    // Auto-refresh: every panel reloads when the tick changes.
    let tick = RwSignal::new(0u64);
    // The URL's `refresh`, else the dashboard's own (shown the same way in the form).
    let refresh = Memo::new(move |_| {
        query.with(|q| q.get("refresh")).or_else(|| {
            page.with(|p| {
                p.as_ref()
                    .and_then(|p| p.as_ref().ok())
                    .map(|p| p.dashboard.refresh.clone())
            })
        })
    });
    Effect::new(move |_| {
        let every = refresh
            .get()
            .and_then(|r| crate::timerange::parse_duration(&r).ok())
            .filter(|s| *s >= 1.0);
        let handle = every.and_then(|s| {
            set_interval_with_handle(
                move || tick.update(|t| *t += 1),
                std::time::Duration::from_secs_f64(s),
            )
            .ok()
        });
        on_cleanup(move || {
            if let Some(h) = handle {
                h.clear();
            }
        });
    });

    let body = move || {
        Suspend::new(async move {
            let p = match page.await {
                Err(e) => return view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(p) => p,
            };
            let d = p.dashboard.clone();
            let refresh_now =
                query.with_untracked(|q| q.get("refresh").unwrap_or_else(|| d.refresh.clone()));
            let (from, to, range) = (p.from.clone(), p.to.clone(), p.range.clone());
            let selections: Vec<Selection> = p.vars.iter().map(Resolved::selection).collect();
            let base = format!("/dashboards/{}", encode(&d.uid));
            let vars_query: String = p
                .vars
                .iter()
                .flat_map(|r| {
                    let vals = if r.all {
                        vec!["$__all".to_string()]
                    } else {
                        r.chosen.clone()
                    };
                    vals.into_iter()
                        .map(|v| format!("&var-{}={}", encode(&r.var.name), encode(&v)))
                        .collect::<Vec<_>>()
                })
                .collect();
            let href = {
                let (base, vars_query, refresh_now) =
                    (base.clone(), vars_query.clone(), refresh_now.clone());
                move |f: &str, t: &str| {
                    format!(
                        "{base}?from={}&to={}&refresh={}{vars_query}",
                        encode(f),
                        encode(t),
                        encode(&refresh_now)
                    )
                }
            };
            let ranges = super::quick_ranges(&QUICK_RANGES, &from, &to, &|f: &str| href(f, "now"));
            let edit = format!("{base}/edit");
            let window = match &range {
                Ok(r) => format!("{} to {} UTC", format_time(r.start), format_time(r.end)),
                Err(_) => String::new(),
            };
            let (value_from, value_to) = (from.clone(), to.clone());
            let panels = match range {
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(_) if d.panels.is_empty() => {
                    view! { <p class="hint">"No panels yet. " <a href=edit.clone()>"Add one"</a></p> }.into_any()
                }
                Ok(_) => view! {
                    <div class="panel-grid">
                        {d.panels
                            .iter()
                            .cloned()
                            .zip(p.panels.iter().cloned())
                            .map(|(panel, initial)| view! { <DashPanel panel from=from.clone() to=to.clone() vars=selections.clone() tick initial/> })
                            .collect_view()}
                    </div>
                }
                .into_any(),
            };
            let var_inputs = p
                .vars
                .iter()
                .map(|r| {
                    let name = format!("var-{}", r.var.name);
                    let label = if r.var.label.is_empty() {
                        r.var.name.clone()
                    } else {
                        r.var.label.clone()
                    };
                    let all_opt = r.var.include_all.then(|| {
                        let selected = r.all;
                        view! { <option value="$__all" selected=selected>"All"</option> }
                    });
                    let opts = r
                        .options
                        .iter()
                        .map(|o| {
                            let selected = !r.all && r.chosen.contains(o);
                            view! { <option value=o.clone() selected=selected>{o.clone()}</option> }
                        })
                        .collect_view();
                    let error = r
                        .error
                        .clone()
                        .map(|e| view! { <span class="error">{e}</span> });
                    view! {
                        <label>
                            {label}
                            <select name=name multiple=r.var.multi>{all_opt}{opts}</select>
                            {error}
                        </label>
                    }
                })
                .collect_view();
            // A period of the dashboard's or the URL's that is not among the choices is
            // offered too, so that the form shows what is in effect.
            let mut periods: Vec<String> = REFRESH.iter().map(|r| r.to_string()).collect();
            if !periods.contains(&refresh_now) {
                periods.push(refresh_now.clone());
            }
            let refresh_opts = periods
                .into_iter()
                .map(|r| {
                    let selected = r == refresh_now;
                    let label = if r.is_empty() {
                        "Off".to_string()
                    } else {
                        r.clone()
                    };
                    view! { <option value=r selected=selected>{label}</option> }
                })
                .collect_view();
            let title = d.title.clone();
            view! {
                <Title text=format!("{title} · SignalBox")/>
                <div class="dash-head">
                    <h1>{d.title.clone()}</h1>
                    {d.provisioned.then(|| view! { <span class="state">"provisioned"</span> })}
                    <a href=edit class="edit-link">"Edit"</a>
                </div>
                <Form method="GET" action=base.clone() attr:class="query-form dash-controls">
                    <div class="range-row">
                        {var_inputs}
                        <label>"From" <input name="from" value=value_from size="16"/></label>
                        <label>"To" <input name="to" value=value_to size="16"/></label>
                        <label>"Refresh" <select name="refresh">{refresh_opts}</select></label>
                        <button type="submit" class="primary">"Apply"</button>
                    </div>
                </Form>
                {ranges}
                <p class="range-info">
                    {window}
                </p>
                {panels}
            }
            .into_any()
        })
    };
    view! { <Suspense fallback=|| view! { <Running what="Loading the dashboard…"/> }>{body}</Suspense> }
}
