//! Importing a Grafana dashboard (the JSON Grafana exports): panels with Prometheus or
//! Loki targets, their grid, units and bounds, rows, and templating variables. What
//! SignalBox cannot draw stays as an `unsupported` panel that says what it was.

use crate::{Dashboard, Grid, Lang, Panel, PanelType, Query, Variable, uid_from_title, valid_uid};
use serde_json::Value;

/// A converted dashboard and what the conversion could not keep.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub dashboard: Dashboard,
    pub warnings: Vec<String>,
}

/// Whether a JSON document is a Grafana dashboard rather than a SignalBox one (or
/// Grafana's import wrapper `{"dashboard": {...}}`).
pub fn looks_like_grafana(v: &Value) -> bool {
    let d = v.get("dashboard").unwrap_or(v);
    d.get("schemaVersion").is_some()
        || d.get("templating").is_some()
        || d["panels"].as_array().is_some_and(|ps| {
            ps.iter()
                .any(|p| p.get("gridPos").is_some() || p.get("targets").is_some())
        })
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

/// The data source kind a `datasource` field names: `prometheus`, `loki`, another
/// type, or unknown (a name or a variable, taken as Prometheus).
fn source_kind(ds: &Value) -> Option<String> {
    match ds {
        Value::Object(o) => o.get("type").and_then(Value::as_str).map(str::to_lowercase),
        Value::String(s) => {
            let l = s.to_lowercase();
            if l.contains("loki") {
                Some("loki".into())
            } else if l.contains("prom") {
                Some("prometheus".into())
            } else {
                None
            }
        }
        _ => None,
    }
}

fn panel_type(t: &str) -> Option<PanelType> {
    Some(match t {
        "timeseries" | "graph" => PanelType::Timeseries,
        "stat" | "singlestat" => PanelType::Stat,
        "gauge" | "bargauge" => PanelType::Gauge,
        "barchart" => PanelType::Bar,
        "table" | "table-old" => PanelType::Table,
        "logs" => PanelType::Logs,
        "traces" => PanelType::Traces,
        _ => return None,
    })
}

fn grid(p: &Value) -> Grid {
    let g = &p["gridPos"];
    let n = |k: &str, d: u32| g[k].as_u64().map(|v| v.min(10_000) as u32).unwrap_or(d);
    let w = n("w", 12).clamp(1, 24);
    let x = n("x", 0).min(24 - w);
    Grid {
        x,
        y: n("y", 0),
        w,
        h: n("h", 8).clamp(1, 100),
    }
}

/// An axis bound: a number, or a number in a string as old `graph` panels write it.
fn bound(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .filter(|b: &f64| b.is_finite())
}

fn convert_panel(p: &Value, id: u32, warnings: &mut Vec<String>) -> Panel {
    let title = text(&p["title"]);
    let grafana_type = p["type"].as_str().unwrap_or("");
    let kind = panel_type(grafana_type);
    let defaults = &p["fieldConfig"]["defaults"];
    // The old `graph` panel keeps unit and bounds on its left axis.
    let left_axis = &p["yaxes"][0];
    let mut panel = Panel {
        id,
        title: title.clone(),
        kind: kind.unwrap_or(PanelType::Unsupported),
        grid: grid(p),
        queries: Vec::new(),
        unit: defaults["unit"]
            .as_str()
            .or_else(|| p["format"].as_str())
            .or_else(|| left_axis["format"].as_str())
            .unwrap_or("")
            .to_string(),
        min: bound(&defaults["min"]).or_else(|| bound(&left_axis["min"])),
        max: bound(&defaults["max"]).or_else(|| bound(&left_axis["max"])),
        note: String::new(),
    };
    if kind.is_none() {
        panel.note = format!("Grafana panel type {grafana_type:?} is not supported");
        warnings.push(format!(
            "panel {title:?}: type {grafana_type:?} kept as a placeholder"
        ));
        return panel;
    }
    let panel_source = source_kind(&p["datasource"]);
    for t in p["targets"].as_array().into_iter().flatten() {
        if t["hide"].as_bool() == Some(true) {
            continue;
        }
        let source = source_kind(&t["datasource"]).or_else(|| panel_source.clone());
        let lang = match source.as_deref() {
            Some("loki") => Lang::Logql,
            None | Some("prometheus") => Lang::Promql,
            Some(other) => {
                warnings.push(format!("panel {title:?}: a {other} query was left out (only Prometheus and Loki queries are imported)"));
                continue;
            }
        };
        let expr = text(&t["expr"]);
        if expr.trim().is_empty() {
            continue;
        }
        panel.queries.push(Query {
            lang,
            expr,
            legend: text(&t["legendFormat"]).replace("__auto", ""),
            exemplars: lang == Lang::Promql && t["exemplar"].as_bool() == Some(true),
        });
    }
    if panel.kind == PanelType::Logs {
        panel.queries.iter_mut().for_each(|q| q.lang = Lang::Logql);
    }
    panel
}

fn convert_variable(v: &Value, warnings: &mut Vec<String>) -> Option<Variable> {
    let name = text(&v["name"]);
    let mut out = Variable {
        name: name.clone(),
        label: text(&v["label"]),
        query: String::new(),
        options: Vec::new(),
        multi: v["multi"].as_bool().unwrap_or(false),
        include_all: v["includeAll"].as_bool().unwrap_or(false),
    };
    match v["type"].as_str().unwrap_or("") {
        "query" => {
            let q = match &v["query"] {
                Value::Object(o) => o.get("query").map(text).unwrap_or_default(),
                q => text(q),
            };
            if crate::parse_label_values(&q).is_err() {
                warnings.push(format!(
                    "variable {name:?}: query {q:?} is not label_values(...); left out"
                ));
                return None;
            }
            out.query = q.trim().to_string();
        }
        "custom" => {
            out.options = text(&v["query"])
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
        "interval" | "constant" | "textbox" => {
            let current = &v["current"]["value"];
            let value = if current.is_null() {
                text(&v["query"])
            } else {
                text(current)
            };
            out.options = value
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .take(1)
                .collect();
            out.multi = false;
            out.include_all = false;
        }
        other => {
            warnings.push(format!(
                "variable {name:?}: type {other:?} is not supported; left out"
            ));
            return None;
        }
    }
    Some(out)
}

/// Converts a Grafana dashboard. `suffix` makes the uid unique when the dashboard
/// has no usable one.
pub fn from_grafana(v: &Value, suffix: &str) -> Result<Imported, String> {
    let d = v.get("dashboard").filter(|d| d.is_object()).unwrap_or(v);
    if !d.is_object() {
        return Err("a Grafana dashboard is a JSON object".into());
    }
    let title = d["title"]
        .as_str()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("Imported dashboard")
        .to_string();
    let uid = d["uid"]
        .as_str()
        .filter(|u| valid_uid(u))
        .map(str::to_string)
        .unwrap_or_else(|| uid_from_title(&title, suffix));
    let mut warnings = Vec::new();
    let mut dash = Dashboard::new(&uid, &title);
    dash.tags = d["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    if let Some(from) = d["time"]["from"].as_str() {
        dash.from = from.to_string();
    }
    if let Some(to) = d["time"]["to"].as_str() {
        dash.to = to.to_string();
    }
    dash.refresh = d["refresh"].as_str().unwrap_or("").to_string();
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(var) = convert_variable(v, &mut warnings)
            && !dash.variables.iter().any(|x| x.name == var.name)
        {
            dash.variables.push(var);
        }
    }
    // Rows are dropped; the panels of a collapsed row are listed inside it.
    let mut next_id = 1;
    for p in d["panels"].as_array().into_iter().flatten() {
        let nested: Vec<&Value> = if p["type"].as_str() == Some("row") {
            p["panels"].as_array().into_iter().flatten().collect()
        } else {
            vec![p]
        };
        for p in nested {
            if dash.panels.len() >= crate::MAX_PANELS {
                warnings.push(format!(
                    "only the first {} panels were imported",
                    crate::MAX_PANELS
                ));
                break;
            }
            dash.panels.push(convert_panel(p, next_id, &mut warnings));
            next_id += 1;
        }
    }
    dash.check()?;
    Ok(Imported {
        dashboard: dash,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn export() -> Value {
        json!({
            "uid": "api-red", "title": "API RED", "tags": ["http"], "schemaVersion": 39,
            "time": {"from": "now-3h", "to": "now"}, "refresh": "30s",
            "templating": {"list": [
                {"name": "job", "type": "query", "multi": true, "includeAll": true,
                 "datasource": {"type": "prometheus", "uid": "p"},
                 "query": {"query": "label_values(http_requests_total, job)", "refId": "A"}},
                {"name": "env", "type": "custom", "query": "prod, staging"},
                {"name": "ds", "type": "datasource", "query": "prometheus"},
                {"name": "q", "type": "query", "query": "query_result(up)"}
            ]},
            "panels": [
                {"id": 4, "type": "timeseries", "title": "Requests", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
                 "datasource": {"type": "prometheus", "uid": "p"},
                 "fieldConfig": {"defaults": {"unit": "reqps"}},
                 "targets": [
                    {"refId": "A", "expr": "sum by (code) (rate(http_requests_total{job=~\"$job\"}[$__rate_interval]))", "legendFormat": "{{code}}", "exemplar": true},
                    {"refId": "B", "expr": "up", "hide": true}
                 ]},
                {"id": 5, "type": "gauge", "title": "Errors", "gridPos": {"x": 12, "y": 0, "w": 6, "h": 8},
                 "fieldConfig": {"defaults": {"unit": "percentunit", "min": 0, "max": 1}},
                 "targets": [{"expr": "sum(rate(errors[5m])) / sum(rate(reqs[5m]))", "legendFormat": "__auto"}]},
                {"id": 6, "type": "row", "title": "Logs", "collapsed": true, "gridPos": {"x": 0, "y": 8, "w": 24, "h": 1},
                 "panels": [
                    {"id": 7, "type": "logs", "title": "Errors", "gridPos": {"x": 0, "y": 9, "w": 24, "h": 10},
                     "datasource": {"type": "loki", "uid": "l"},
                     "targets": [{"expr": "{service_name=\"api\"} |= \"error\""}]},
                    {"id": 8, "type": "piechart", "title": "Share", "gridPos": {"x": 0, "y": 19, "w": 30, "h": 6}}
                 ]},
                {"id": 9, "type": "table", "title": "Elastic", "gridPos": {"x": 18, "y": 0, "w": 6, "h": 8},
                 "targets": [{"datasource": {"type": "elasticsearch"}, "query": "*"},
                             {"datasource": "Loki", "expr": "sum(count_over_time({a=\"b\"}[1m]))"}]}
            ]
        })
    }

    #[test]
    fn a_grafana_export_becomes_a_dashboard() {
        let v = export();
        assert!(looks_like_grafana(&v));
        let Imported {
            dashboard: d,
            warnings,
        } = from_grafana(&v, "x1").expect("imports");
        assert_eq!(
            (
                d.uid.as_str(),
                d.title.as_str(),
                d.from.as_str(),
                d.refresh.as_str()
            ),
            ("api-red", "API RED", "now-3h", "30s")
        );
        assert_eq!(d.tags, ["http"]);
        let vars: Vec<(&str, &str, Vec<String>)> = d
            .variables
            .iter()
            .map(|v| (v.name.as_str(), v.query.as_str(), v.options.clone()))
            .collect();
        assert_eq!(
            vars,
            [
                ("job", "label_values(http_requests_total, job)", vec![]),
                ("env", "", vec!["prod".to_string(), "staging".to_string()])
            ]
        );
        assert!(d.variables[0].multi && d.variables[0].include_all);
        let kinds: Vec<(u32, PanelType, &str)> = d
            .panels
            .iter()
            .map(|p| (p.id, p.kind, p.title.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (1, PanelType::Timeseries, "Requests"),
                (2, PanelType::Gauge, "Errors"),
                (3, PanelType::Logs, "Errors"),
                (4, PanelType::Unsupported, "Share"),
                (5, PanelType::Table, "Elastic")
            ]
        );
        let req = &d.panels[0];
        assert_eq!(req.unit, "reqps");
        assert_eq!(req.queries.len(), 1, "the hidden target is dropped");
        assert_eq!(req.queries[0].legend, "{{code}}");
        assert!(req.queries[0].exemplars, "Grafana's exemplar switch");
        assert!(!d.panels[1].queries[0].exemplars);
        assert_eq!(
            (
                d.panels[1].min,
                d.panels[1].max,
                d.panels[1].queries[0].legend.as_str()
            ),
            (Some(0.0), Some(1.0), "")
        );
        assert_eq!(d.panels[2].queries[0].lang, Lang::Logql);
        assert_eq!(
            d.panels[3].note,
            "Grafana panel type \"piechart\" is not supported"
        );
        assert_eq!(
            d.panels[3].grid,
            Grid {
                x: 0,
                y: 19,
                w: 24,
                h: 6
            },
            "clamped to the grid"
        );
        assert_eq!(
            d.panels[4].queries,
            [Query {
                lang: Lang::Logql,
                expr: "sum(count_over_time({a=\"b\"}[1m]))".into(),
                legend: String::new(),
                exemplars: false
            }]
        );
        let w = warnings.join("\n");
        for expected in [
            "\"ds\": type \"datasource\"",
            "\"q\": query \"query_result(up)\"",
            "\"piechart\"",
            "elasticsearch query was left out",
        ] {
            assert!(w.contains(expected), "{expected} in {w}");
        }
    }

    #[test]
    fn the_import_wrapper_and_missing_fields_are_handled() {
        let v = json!({"dashboard": {"title": "Ops / Main", "uid": "bad uid!", "panels": [{"type": "stat", "targets": [{"expr": "up"}]}]}, "overwrite": true});
        let d = from_grafana(&v, "k9").expect("imports").dashboard;
        assert_eq!(d.uid, "ops-main-k9");
        assert_eq!(
            (d.from.as_str(), d.panels[0].grid),
            ("now-6h", Grid::default())
        );
        assert!(from_grafana(&json!([1, 2]), "k").is_err());
        assert!(!looks_like_grafana(
            &json!({"title": "x", "panels": [{"type": "stat", "queries": []}]})
        ));
    }

    #[test]
    fn an_old_graph_panel_takes_unit_and_bounds_from_its_left_axis() {
        let v = serde_json::json!({"title": "G", "panels": [
            {"type": "graph", "title": "Latency", "targets": [{"expr": "up"}],
             "yaxes": [{"format": "ms", "min": "0", "max": null}, {"format": "short"}]}
        ]});
        let d = from_grafana(&v, "x").expect("imports").dashboard;
        let p = &d.panels[0];
        assert_eq!(
            (p.kind, p.unit.as_str(), p.min, p.max),
            (PanelType::Timeseries, "ms", Some(0.0), None)
        );
    }
}
