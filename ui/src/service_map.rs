//! The service map: services as boxes in columns by how deep they sit in the call
//! graph (callers left of callees), calls as arrows labelled with their count.

use leptos::prelude::*;
use std::collections::BTreeMap;

/// A call edge: caller, callee, number of calls.
pub type Edge = (String, String, u64);

const COL_W: f64 = 220.0;
const ROW_H: f64 = 64.0;
const BOX_W: f64 = 160.0;
const BOX_H: f64 = 34.0;
const PAD: f64 = 12.0;

/// Column and row of each service. The column is the longest chain of callers above a
/// service (cycles are cut where they close), the row its place in that column.
pub fn layout(services: &[String], edges: &[Edge]) -> BTreeMap<String, (usize, usize)> {
    let mut callers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (p, c, _) in edges {
        if p != c {
            callers.entry(c.as_str()).or_default().push(p.as_str());
        }
    }
    let mut names: Vec<&str> = services.iter().map(String::as_str).collect();
    for (p, c, _) in edges {
        names.push(p);
        names.push(c);
    }
    names.sort_unstable();
    names.dedup();
    let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &names {
        column(n, &callers, &mut depth, &mut Vec::new());
    }
    let mut next_row: BTreeMap<usize, usize> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for n in names {
        let col = depth.get(n).copied().unwrap_or(0);
        let row = next_row.entry(col).or_default();
        out.insert(n.to_string(), (col, *row));
        *row += 1;
    }
    out
}

fn column<'a>(
    n: &'a str,
    callers: &BTreeMap<&'a str, Vec<&'a str>>,
    depth: &mut BTreeMap<&'a str, usize>,
    path: &mut Vec<&'a str>,
) -> usize {
    if let Some(d) = depth.get(n) {
        return *d;
    }
    if path.contains(&n) {
        return 0;
    }
    path.push(n);
    let mut d = 0;
    for p in callers.get(n).map(Vec::as_slice).unwrap_or_default() {
        if !path.contains(p) {
            d = d.max(column(p, callers, depth, path) + 1);
        }
    }
    path.pop();
    depth.insert(n, d);
    d
}

/// The map as SVG; each box links to `href(service)`.
#[component]
pub fn ServiceMap(
    services: Vec<String>,
    edges: Vec<Edge>,
    #[prop(into)] href: Callback<String, String>,
) -> impl IntoView {
    let pos = layout(&services, &edges);
    let cols = pos.values().map(|(c, _)| c + 1).max().unwrap_or(1);
    let rows = pos.values().map(|(_, r)| r + 1).max().unwrap_or(1);
    let w = PAD * 2.0 + (cols - 1) as f64 * COL_W + BOX_W;
    let h = PAD * 2.0 + (rows - 1) as f64 * ROW_H + BOX_H;
    let at = |name: &str| {
        pos.get(name)
            .map(|(c, r)| (PAD + *c as f64 * COL_W, PAD + *r as f64 * ROW_H))
            .unwrap_or((PAD, PAD))
    };
    let arrows = edges
        .iter()
        .filter(|(p, c, _)| p != c)
        .map(|(p, c, n)| {
            let (px, py) = at(p);
            let (cx, cy) = at(c);
            let (x1, y1) = (px + BOX_W, py + BOX_H / 2.0);
            let (x2, y2) = (cx, cy + BOX_H / 2.0);
            // Backward calls (to a column on the left) loop below the boxes.
            let d = if x2 > x1 {
                let mid = (x1 + x2) / 2.0;
                format!("M{x1:.1} {y1:.1}C{mid:.1} {y1:.1} {mid:.1} {y2:.1} {:.1} {y2:.1}", x2 - 6.0)
            } else {
                let low = y1.max(y2) + BOX_H;
                format!("M{x1:.1} {y1:.1}C{:.1} {low:.1} {:.1} {low:.1} {:.1} {y2:.1}", x1 + 40.0, x2 - 40.0, x2 - 6.0)
            };
            let (lx, ly) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0 - 4.0);
            view! {
                <g class="call">
                    <title>{format!("{p} → {c}: {n} calls")}</title>
                    <path d=d marker-end="url(#arrow)"></path>
                    <text x=format!("{lx:.1}") y=format!("{ly:.1}") text-anchor="middle">{n.to_string()}</text>
                </g>
            }
        })
        .collect_view();
    // The boxes are HTML links laid over the SVG of the arrows, placed in percent of
    // the map so that both scale together.
    let boxes = pos
        .keys()
        .map(|name| {
            let (x, y) = at(name);
            let link = href.run(name.clone());
            view! {
                <a
                    href=link
                    class="service-node"
                    title=name.clone()
                    style:left=format!("{:.3}%", x / w * 100.0)
                    style:top=format!("{:.3}%", y / h * 100.0)
                    style:width=format!("{:.3}%", BOX_W / w * 100.0)
                    style:height=format!("{:.3}%", BOX_H / h * 100.0)
                >
                    {name.clone()}
                </a>
            }
        })
        .collect_view();
    view! {
        <div class="service-map" style:max-width=format!("{w:.0}px") style:aspect-ratio=format!("{w:.0} / {h:.0}")>
            <svg viewBox=format!("0 0 {w:.0} {h:.0}") role="img" aria-label="Calls between services">
                <defs>
                    <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                        <path d="M0 0L10 5L0 10z"></path>
                    </marker>
                </defs>
                {arrows}
            </svg>
            {boxes}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(p: &str, c: &str) -> Edge {
        (p.into(), c.into(), 1)
    }

    #[test]
    fn callers_sit_left_of_callees() {
        let services: Vec<String> = ["db", "frontend", "cart", "batch"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let pos = layout(
            &services,
            &[e("frontend", "cart"), e("cart", "db"), e("frontend", "db")],
        );
        assert_eq!(pos["frontend"].0, 0);
        assert_eq!(pos["cart"].0, 1);
        assert_eq!(pos["db"].0, 2, "the longest chain decides");
        assert_eq!(pos["batch"], (0, 0));
        assert_eq!(pos["frontend"], (0, 1));
    }

    #[test]
    fn cycles_and_self_calls_do_not_loop() {
        let pos = layout(&[], &[e("a", "b"), e("b", "a"), e("a", "a"), e("b", "c")]);
        assert_eq!(pos.len(), 3);
        assert!(pos["c"].0 > pos["b"].0);
    }
}
