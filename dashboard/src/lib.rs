//! Dashboards: the document the server stores and the UI draws, the checks a save
//! must pass, variable interpolation in queries, and the import of Grafana dashboards.
//! Plain serde, so the server and the browser bundle share it.

mod grafana;
mod interpolate;

pub use grafana::{Imported, from_grafana, looks_like_grafana};
pub use interpolate::{Selection, interpolate, legend, parse_label_values};

use serde::{Deserialize, Serialize};

/// Columns of the panel grid (as Grafana's `gridPos`).
pub const GRID_COLUMNS: u32 = 24;
/// Most panels and variables in one dashboard.
pub const MAX_PANELS: usize = 200;
pub const MAX_VARIABLES: usize = 50;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    #[serde(default)]
    pub uid: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Incremented by every save; a save must carry the version it started from.
    #[serde(default)]
    pub version: u64,
    #[serde(default = "default_from")]
    pub from: String,
    #[serde(default = "default_to")]
    pub to: String,
    /// Auto-refresh period (`30s`, `1m`), empty for none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub refresh: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<Variable>,
    #[serde(default)]
    pub panels: Vec<Panel>,
    /// Set by the server on dashboards read from the provisioning folder.
    #[serde(default, skip_serializing_if = "is_false")]
    pub provisioned: bool,
}

fn default_from() -> String {
    "now-6h".into()
}

fn default_to() -> String {
    "now".into()
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variable {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// `label_values(label)` or `label_values(selector, label)`; empty for a fixed list.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    /// The values of a fixed list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub multi: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub include_all: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PanelType {
    #[default]
    Timeseries,
    Stat,
    Gauge,
    Bar,
    Table,
    Logs,
    Traces,
    /// A panel kind SignalBox does not draw (kept from an import; `note` says what).
    Unsupported,
}

impl PanelType {
    pub const ALL: [PanelType; 7] = [
        PanelType::Timeseries,
        PanelType::Stat,
        PanelType::Gauge,
        PanelType::Bar,
        PanelType::Table,
        PanelType::Logs,
        PanelType::Traces,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PanelType::Timeseries => "timeseries",
            PanelType::Stat => "stat",
            PanelType::Gauge => "gauge",
            PanelType::Bar => "bar",
            PanelType::Table => "table",
            PanelType::Logs => "logs",
            PanelType::Traces => "traces",
            PanelType::Unsupported => "unsupported",
        }
    }

    pub fn parse(s: &str) -> Option<PanelType> {
        PanelType::ALL.into_iter().find(|t| t.name() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Promql,
    Logql,
    /// A trace search as `key=value` pairs: `service`, `operation`, `tags`,
    /// `minDuration`, `maxDuration`, `limit`.
    Traces,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Query {
    #[serde(default)]
    pub lang: Lang,
    pub expr: String,
    /// Legend template: `{{label}}` is replaced by the series' label value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub legend: String,
    /// A PromQL query of a time-series panel also draws the exemplars of the series it
    /// selects (Grafana's `exemplar` switch).
    #[serde(default, skip_serializing_if = "is_false")]
    pub exemplars: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Default for Grid {
    fn default() -> Self {
        Grid {
            x: 0,
            y: 0,
            w: 12,
            h: 8,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Panel {
    #[serde(default)]
    pub id: u32,
    #[serde(default)]
    pub title: String,
    #[serde(rename = "type", default)]
    pub kind: PanelType,
    #[serde(default)]
    pub grid: Grid,
    #[serde(default)]
    pub queries: Vec<Query>,
    /// Unit of the values (Grafana's names: `s`, `ms`, `bytes`, `percent`, `percentunit`, `reqps`, …).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// Where a panel comes in reading order: top to bottom, then left to right.
fn reading_order(p: &Panel) -> (u32, u32) {
    (p.grid.y, p.grid.x)
}

/// Whether `uid` can name a dashboard (and its file).
/// (`import` is taken by the import endpoint next to the dashboards' URLs.)
pub fn valid_uid(uid: &str) -> bool {
    uid != "import"
        && (1..=40).contains(&uid.len())
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A uid made from a title: lower-case letters and digits joined by `-`, with `suffix`
/// (something unique, e.g. a time) to keep it apart from others.
pub fn uid_from_title(title: &str, suffix: &str) -> String {
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug: String = slug
        .trim_end_matches('-')
        .chars()
        .take(40 - suffix.len().min(39) - 1)
        .collect();
    let slug = slug.trim_end_matches('-');
    let uid = if slug.is_empty() {
        format!("d-{suffix}")
    } else {
        format!("{slug}-{suffix}")
    };
    uid.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(40)
        .collect()
}

impl Dashboard {
    /// An empty dashboard.
    pub fn new(uid: &str, title: &str) -> Dashboard {
        Dashboard {
            uid: uid.into(),
            title: title.into(),
            tags: Vec::new(),
            version: 0,
            from: default_from(),
            to: default_to(),
            refresh: String::new(),
            variables: Vec::new(),
            panels: Vec::new(),
            provisioned: false,
        }
    }

    /// The checks a dashboard must pass to be saved; each problem names its place.
    pub fn check(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if !valid_uid(&self.uid) {
            problems.push(format!(
                "uid {:?}: use 1 to 40 letters, digits, '-' or '_'",
                self.uid
            ));
        }
        if self.title.trim().is_empty() {
            problems.push("title: a dashboard needs a title".to_string());
        }
        if self.panels.len() > MAX_PANELS {
            problems.push(format!("panels: at most {MAX_PANELS}"));
        }
        if self.variables.len() > MAX_VARIABLES {
            problems.push(format!("variables: at most {MAX_VARIABLES}"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, v) in self.variables.iter().enumerate() {
            let ok = !v.name.is_empty()
                && v.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !v.name.starts_with("__");
            if !ok {
                problems.push(format!("variables[{i}]: name {:?} must be letters, digits and '_' (not starting with '__')", v.name));
            }
            if !names.insert(v.name.as_str()) {
                problems.push(format!("variables[{i}]: {:?} is defined twice", v.name));
            }
            if !v.query.is_empty()
                && let Err(e) = parse_label_values(&v.query)
            {
                problems.push(format!("variables[{i}] ({}): {e}", v.name));
            }
        }
        let mut ids = std::collections::HashSet::new();
        for (i, p) in self.panels.iter().enumerate() {
            let g = p.grid;
            if g.w == 0
                || g.h == 0
                || g.x.saturating_add(g.w) > GRID_COLUMNS
                || g.h > 100
                || g.y > 10_000
            {
                problems.push(format!(
                    "panels[{i}] ({}): grid x={} w={} h={} must fit {GRID_COLUMNS} columns, with w and h at least 1",
                    p.title, g.x, g.w, g.h
                ));
            }
            if !ids.insert(p.id) {
                problems.push(format!(
                    "panels[{i}] ({}): id {} is used twice",
                    p.title, p.id
                ));
            }
            for (j, q) in p.queries.iter().enumerate() {
                if q.expr.trim().is_empty() {
                    problems.push(format!("panels[{i}] ({}): queries[{j}] is empty", p.title));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Gives panels without an id (0) a fresh one.
    pub fn number_panels(&mut self) {
        let mut next = self
            .panels
            .iter()
            .map(|p| p.id)
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        let mut seen = std::collections::HashSet::new();
        for p in &mut self.panels {
            if p.id == 0 || !seen.insert(p.id) {
                p.id = next;
                seen.insert(next);
                next = next.saturating_add(1);
            }
        }
    }

    /// Moves panel `index` (in the list) one place earlier (`by` = -1) or later (+1) in
    /// reading order (top to bottom, then left to right) and lays all panels out again
    /// in that order with [`Dashboard::flow`]; `false` if there is no such place.
    pub fn move_panel(&mut self, index: usize, by: isize) -> bool {
        if index >= self.panels.len() {
            return false;
        }
        let mut order: Vec<usize> = (0..self.panels.len()).collect();
        order.sort_by_key(|&k| reading_order(&self.panels[k]));
        let Some(from) = order.iter().position(|&k| k == index) else {
            return false;
        };
        let Some(to) = from
            .checked_add_signed(by)
            .filter(|t| *t < self.panels.len())
        else {
            return false;
        };
        order.swap(from, to);
        let mut panels: Vec<Option<Panel>> = self.panels.drain(..).map(Some).collect();
        self.panels = order.iter().filter_map(|&k| panels[k].take()).collect();
        self.flow();
        true
    }

    /// Puts the panels in reading order (top to bottom, then left to right) and lays
    /// them out again with [`Dashboard::flow`]: after a panel changed its size, so that
    /// none overlaps another.
    pub fn reflow(&mut self) {
        self.sort_panels();
        self.flow();
    }

    /// Puts the panels in reading order without moving them on the grid.
    pub fn sort_panels(&mut self) {
        self.panels.sort_by_key(reading_order);
    }

    /// Lays the panels out in their order, keeping their sizes: left to right, a panel
    /// that does not fit its row's remaining columns starting the next row, which begins
    /// below the tallest panel of the row before.
    pub fn flow(&mut self) {
        let (mut x, mut y, mut row_h) = (0u32, 0u32, 0u32);
        for p in &mut self.panels {
            let w = p.grid.w.clamp(1, GRID_COLUMNS);
            if x > 0 && x.saturating_add(w) > GRID_COLUMNS {
                y = y.saturating_add(row_h);
                (x, row_h) = (0, 0);
            }
            p.grid.x = x;
            p.grid.y = y;
            p.grid.w = w;
            x = x.saturating_add(w);
            row_h = row_h.max(p.grid.h);
        }
    }

    /// Where a new panel of width `w` goes: below everything else.
    pub fn next_row(&self) -> u32 {
        self.panels
            .iter()
            .map(|p| p.grid.y.saturating_add(p.grid.h))
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panel(id: u32, x: u32, w: u32) -> Panel {
        Panel {
            id,
            title: format!("p{id}"),
            kind: PanelType::Stat,
            grid: Grid { x, y: 0, w, h: 4 },
            queries: vec![Query {
                lang: Lang::Promql,
                expr: "up".into(),
                legend: String::new(),
                exemplars: false,
            }],
            unit: String::new(),
            min: None,
            max: None,
            note: String::new(),
        }
    }

    #[test]
    fn a_dashboard_round_trips_and_fills_defaults() {
        let d: Dashboard = serde_json::from_str(r#"{"uid":"a","title":"A","panels":[{"type":"logs","queries":[{"lang":"logql","expr":"{a=\"b\"}"}]}]}"#).expect("valid");
        assert_eq!((d.from.as_str(), d.to.as_str()), ("now-6h", "now"));
        assert_eq!(d.panels[0].kind, PanelType::Logs);
        assert_eq!(d.panels[0].grid, Grid::default());
        let back: Dashboard =
            serde_json::from_str(&serde_json::to_string(&d).expect("json")).expect("again");
        assert_eq!(back, d);
    }

    #[test]
    fn huge_grid_positions_and_ids_are_problems_not_overflows() {
        let mut d = Dashboard::new("u", "T");
        d.panels = vec![panel(u32::MAX, u32::MAX, 1), panel(0, 0, 1)];
        assert!(
            d.check()
                .expect_err("off the grid")
                .contains("must fit 24 columns")
        );
        d.number_panels();
        assert_eq!(d.panels[1].id, u32::MAX, "no wrap-around to a small id");
        assert!(!valid_uid("import"));
    }

    #[test]
    fn checks_name_every_problem() {
        let mut d = Dashboard::new("ok_uid-1", "T");
        d.panels = vec![panel(1, 0, 12), panel(1, 20, 8)];
        d.variables = vec![
            Variable {
                name: "job".into(),
                label: String::new(),
                query: "label_values(job)".into(),
                options: vec![],
                multi: false,
                include_all: false,
            },
            Variable {
                name: "job".into(),
                label: String::new(),
                query: "query_result(up)".into(),
                options: vec![],
                multi: false,
                include_all: false,
            },
        ];
        let e = d.check().expect_err("problems");
        assert!(e.contains("panels[1] (p1): grid"), "{e}");
        assert!(e.contains("id 1 is used twice"), "{e}");
        assert!(e.contains("\"job\" is defined twice"), "{e}");
        assert!(e.contains("variables[1] (job)"), "{e}");
        assert!(Dashboard::new("bad/uid", "T").check().is_err());
        assert!(Dashboard::new("u", " ").check().is_err());
        d.panels[1] = panel(2, 12, 12);
        d.variables.pop();
        assert_eq!(d.check(), Ok(()));
    }

    #[test]
    fn uids_come_from_titles() {
        assert_eq!(
            uid_from_title("HTTP Overview — prod!", "k3x"),
            "http-overview-prod-k3x"
        );
        assert_eq!(uid_from_title("???", "k3x"), "d-k3x");
        assert!(valid_uid(&uid_from_title(
            &"long title ".repeat(20),
            "abcdef"
        )));
        assert!(!valid_uid("") && !valid_uid("a b") && !valid_uid(&"a".repeat(41)));
    }

    #[test]
    fn panels_without_ids_are_numbered_after_the_largest() {
        let mut d = Dashboard::new("u", "T");
        d.panels = vec![panel(0, 0, 6), panel(7, 6, 6), panel(7, 12, 6)];
        d.number_panels();
        let ids: Vec<u32> = d.panels.iter().map(|p| p.id).collect();
        assert_eq!(ids, [8, 7, 9]);
        assert_eq!(d.next_row(), 4);
    }

    #[test]
    fn moving_a_panel_swaps_it_with_its_neighbour_and_lays_all_out_again() {
        let mut d = Dashboard::new("u", "T");
        d.panels = vec![panel(1, 0, 12), panel(2, 12, 12), panel(3, 0, 24)];
        d.panels[2].grid.y = 4;
        // Reading order is by position, not by place in the list.
        d.panels.swap(0, 2);
        assert!(d.move_panel(0, -1), "panel 3 moves before panel 2");
        let layout = |d: &Dashboard| -> Vec<(u32, u32, u32)> {
            d.panels
                .iter()
                .map(|p| (p.id, p.grid.x, p.grid.y))
                .collect()
        };
        assert_eq!(layout(&d), [(1, 0, 0), (3, 0, 4), (2, 0, 8)]);
        assert!(d.move_panel(0, 1));
        assert_eq!(layout(&d), [(3, 0, 0), (1, 0, 4), (2, 12, 4)]);
        assert!(!d.move_panel(0, -1), "the first cannot move earlier");
        assert!(!d.move_panel(2, 1), "the last cannot move later");
        assert!(!d.move_panel(7, 1), "no such panel");
        assert_eq!(d.check(), Ok(()));
    }
}
