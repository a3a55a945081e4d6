//! Binary operators: arithmetic, comparison (with or without `bool`), set operators,
//! and vector matching (`on`, `ignoring`, `group_left`, `group_right`, fill values).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use promql_parser::label::Labels as PLabels;
use promql_parser::parser::{BinModifier, LabelModifier, VectorMatchCardinality};
use signalbox_storage::{Histogram, Labels, ResetHint};

use super::error::{PromqlError, exec};
use super::histogram;
use super::trim::trim;
use super::types::{Instant, METRIC_NAME, Sample, keep_only, remove, with_label, without_name};

fn names(l: &PLabels) -> Vec<String> {
    l.labels.clone()
}

fn is_comparison(op: &str) -> bool {
    matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=")
}

/// The histogram trim operators, which keep the metric name.
pub(crate) fn is_trim(op: &str) -> bool {
    matches!(op, "</" | ">/")
}

/// `lhs op rhs` for two floats: the value, and for comparisons whether it holds.
pub(crate) fn apply(op: &str, l: f64, r: f64) -> Result<(f64, bool), PromqlError> {
    Ok(match op {
        "+" => (l + r, true),
        "-" => (l - r, true),
        "*" => (l * r, true),
        "/" => (l / r, true),
        "%" => (l % r, true),
        "^" => (l.powf(r), true),
        "atan2" => (l.atan2(r), true),
        "==" => (l, l == r),
        "!=" => (l, l != r),
        ">" => (l, l > r),
        "<" => (l, l < r),
        ">=" => (l, l >= r),
        "<=" => (l, l <= r),
        other => return Err(exec(format!("operator {other:?} not allowed here"))),
    })
}

fn bool_of(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// A sample's value as an operand: the float, or the histogram when there is one.
type Operand<'a> = (f64, Option<&'a Arc<Histogram>>);

/// The result of `lhs op rhs`: float, histogram (if the result is one), and for
/// comparisons whether it holds.
type Applied = (f64, Option<Arc<Histogram>>, bool);

/// `lhs op rhs` for floats or native histograms. `None` when the operator does not
/// apply to these sample types; the info annotation saying so is added to `notes`.
fn apply_operands(
    op: &str,
    (lf, lh): Operand<'_>,
    (rf, rh): Operand<'_>,
    notes: &mut Vec<String>,
) -> Result<Option<Applied>, PromqlError> {
    let new = |h: Histogram| Some(Arc::new(h));
    let r = match (lh, rh) {
        // A trim needs a histogram on the left and a float on the right.
        (None, None) if is_trim(op) => None,
        (None, None) => {
            let (v, keep) = apply(op, lf, rf)?;
            Some((v, None, keep))
        }
        (None, Some(h)) if op == "*" => Some((0.0, new(histogram::scale(h, lf)), true)),
        (Some(h), None) if op == "*" => Some((0.0, new(histogram::scale(h, rf)), true)),
        (Some(h), None) if op == "/" => Some((0.0, new(histogram::divide(h, rf)), true)),
        (Some(h), None) if is_trim(op) => Some((0.0, new(trim(h, rf, op == "</")), true)),
        (Some(a), Some(b)) if op == "+" || op == "-" => {
            let Some((mut h, reconciled)) = histogram::combine(a, b, op == "-") else {
                notes.push(format!(
                    "PromQL warning: incompatible bucket layout encountered for binary operator {op}"
                ));
                return Ok(None);
            };
            let during = if op == "+" { "addition" } else { "subtraction" };
            if a.hint.added(b.hint).1 {
                notes.push(histogram::reset_collision_warning(during));
            }
            if reconciled {
                notes.push(histogram::reconciled_info(during));
            }
            // A difference may go down: it is a gauge.
            if op == "-" {
                h.hint = ResetHint::Gauge;
            }
            Some((0.0, new(h), true))
        }
        (Some(a), Some(b)) if op == "==" || op == "!=" => Some((
            0.0,
            Some(a.clone()),
            histogram::equals(a, b) == (op == "=="),
        )),
        _ => None,
    };
    if r.is_none() {
        let kind = |h: Option<&Arc<Histogram>>| if h.is_some() { "histogram" } else { "float" };
        notes.push(format!(
            "PromQL info: incompatible sample types encountered for binary operator {op:?}: {} {op} {}",
            kind(lh),
            kind(rh)
        ));
    }
    Ok(r)
}

/// `lhs op rhs` at one step. Annotations (full messages) are added to `notes`.
pub(crate) fn eval(
    op: &str,
    m: Option<&BinModifier>,
    lhs: Instant,
    rhs: Instant,
    notes: &mut Vec<String>,
) -> Result<Instant, PromqlError> {
    let return_bool = m.is_some_and(|m| m.return_bool);
    match (lhs, rhs) {
        (Instant::Scalar(_), Instant::Scalar(_)) if is_trim(op) => Err(exec(format!(
            "operator {op:?} not allowed for Scalar operations"
        ))),
        (Instant::Scalar(l), Instant::Scalar(r)) => {
            let (v, keep) = apply(op, l, r)?;
            Ok(Instant::Scalar(if is_comparison(op) {
                bool_of(keep)
            } else {
                v
            }))
        }
        (Instant::Vector(v), Instant::Scalar(s)) => Ok(Instant::Vector(vector_scalar(
            op,
            return_bool,
            v,
            s,
            false,
            notes,
        )?)),
        (Instant::Scalar(s), Instant::Vector(v)) => Ok(Instant::Vector(vector_scalar(
            op,
            return_bool,
            v,
            s,
            true,
            notes,
        )?)),
        (Instant::Vector(l), Instant::Vector(r)) => {
            Ok(Instant::Vector(vector_vector(op, m, l, r, notes)?))
        }
        _ => Err(exec("binary operation on strings is not allowed")),
    }
}

fn vector_scalar(
    op: &str,
    return_bool: bool,
    v: Vec<Sample>,
    s: f64,
    scalar_left: bool,
    notes: &mut Vec<String>,
) -> Result<Vec<Sample>, PromqlError> {
    let cmp = is_comparison(op);
    let mut out = Vec::with_capacity(v.len());
    for x in v {
        let xv = (x.f, x.h.as_ref());
        let (l, r) = if scalar_left {
            ((s, None), xv)
        } else {
            (xv, (s, None))
        };
        let Some((val, h, keep)) = apply_operands(op, l, r, notes)? else {
            continue;
        };
        if cmp && !return_bool {
            if keep {
                // The vector's value is kept, whichever side it is on.
                out.push(x);
            }
            continue;
        }
        out.push(Sample {
            f: if cmp { bool_of(keep) } else { val },
            h: if cmp { None } else { h },
            drop_name: x.drop_name || !is_trim(op),
            ..x
        });
    }
    Ok(out)
}

/// The label set two samples are matched on.
fn signature(l: &Labels, on: bool, names: &[String]) -> Labels {
    if on {
        keep_only(l, names)
    } else {
        // Only the metric name is left out: series of another type or unit
        // (`__type__`, `__unit__`) do not match.
        let mut n = names.to_vec();
        n.push(METRIC_NAME.to_string());
        remove(l, &n)
    }
}

fn vector_vector(
    op: &str,
    m: Option<&BinModifier>,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    notes: &mut Vec<String>,
) -> Result<Vec<Sample>, PromqlError> {
    let (on, match_names) = match m.and_then(|m| m.matching.as_ref()) {
        Some(LabelModifier::Include(l)) => (true, names(l)),
        Some(LabelModifier::Exclude(l)) => (false, names(l)),
        None => (false, Vec::new()),
    };
    let card = m
        .map(|m| m.card.clone())
        .unwrap_or(VectorMatchCardinality::OneToOne);
    let return_bool = m.is_some_and(|m| m.return_bool);
    match op {
        "and" | "or" | "unless" => return Ok(set_op(op, on, &match_names, lhs, rhs)),
        _ => {}
    }
    let fill = m.map(|m| m.fill_values.clone()).unwrap_or_default();
    let cmp = is_comparison(op);
    let drop_name = (!cmp && !is_trim(op)) || return_bool;
    // The "one" side is looked up by signature; group_right swaps the roles.
    let (many, one, swapped, include) = match &card {
        VectorMatchCardinality::OneToMany(l) => (rhs, lhs, true, names(l)),
        VectorMatchCardinality::ManyToOne(l) => (lhs, rhs, false, names(l)),
        _ => (lhs, rhs, false, Vec::new()),
    };
    let grouping = matches!(
        card,
        VectorMatchCardinality::OneToMany(_) | VectorMatchCardinality::ManyToOne(_)
    );
    let one_side_name = if swapped { "left" } else { "right" };
    let mut one_by_sig: HashMap<Labels, usize> = HashMap::with_capacity(one.len());
    for (i, s) in one.iter().enumerate() {
        let sig = signature(&s.labels, on, &match_names);
        if let Some(&j) = one_by_sig.get(&sig) {
            return Err(exec(format!(
                "found duplicate series for the match group {sig} on the {one_side_name} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                one[j].labels, s.labels
            )));
        }
        one_by_sig.insert(sig, i);
    }
    let mut out: Vec<Sample> = Vec::new();
    let mut matched_one: HashSet<usize> = HashSet::new();
    let mut one_to_one_seen: HashSet<Labels> = HashSet::new();
    let mut result_seen: HashSet<Labels> = HashSet::new();
    // `base` gives the result its labels, `one_labels` the `group_x` labels. A fill value
    // stands in for a missing sample with the other sample's matching labels, as
    // Prometheus does.
    let mut emit = |base: &Labels,
                    base_drop: bool,
                    one_labels: &Labels,
                    vm: Operand<'_>,
                    vo: Operand<'_>,
                    out: &mut Vec<Sample>|
     -> Result<(), PromqlError> {
        let (l, r) = if swapped { (vo, vm) } else { (vm, vo) };
        let Some((val, h, keep)) = apply_operands(op, l, r, notes)? else {
            return Ok(());
        };
        if cmp && !return_bool && !keep {
            return Ok(());
        }
        let (value, h) = if cmp {
            if return_bool {
                (bool_of(keep), None)
            } else {
                (l.0, l.1.cloned())
            }
        } else {
            (val, h)
        };
        let mut labels = if grouping {
            let mut lb = base.clone();
            for n in &include {
                lb = match one_labels.get(n) {
                    Some(v) => with_label(&lb, n, v),
                    None => remove(&lb, std::slice::from_ref(n)),
                };
            }
            lb
        } else if on {
            keep_only(base, &match_names)
        } else {
            remove(base, &match_names)
        };
        if drop_name && !grouping && on {
            labels = without_name(&labels);
        }
        if grouping
            && !result_seen.insert(if drop_name {
                without_name(&labels)
            } else {
                labels.clone()
            })
        {
            return Err(exec(
                "multiple matches for labels: grouping labels must ensure unique matches",
            ));
        }
        out.push(Sample {
            labels: Arc::new(labels),
            f: value,
            h,
            drop_name: drop_name || base_drop,
        });
        Ok(())
    };
    for ms in &many {
        let sig = signature(&ms.labels, on, &match_names);
        match one_by_sig.get(&sig) {
            Some(&j) => {
                if !grouping && !one_to_one_seen.insert(sig.clone()) {
                    return Err(exec(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    ));
                }
                matched_one.insert(j);
                let o = &one[j];
                emit(
                    &ms.labels,
                    ms.drop_name,
                    &o.labels,
                    (ms.f, ms.h.as_ref()),
                    (o.f, o.h.as_ref()),
                    &mut out,
                )?;
            }
            // A missing "one" side takes the right fill value, also with group_right
            // (Prometheus swaps the sides, not the fill values).
            None => {
                if let Some(fv) = fill.rhs {
                    if !grouping && !one_to_one_seen.insert(sig.clone()) {
                        return Err(exec(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                        ));
                    }
                    emit(
                        &ms.labels,
                        ms.drop_name,
                        &sig,
                        (ms.f, ms.h.as_ref()),
                        (fv, None),
                        &mut out,
                    )?;
                }
            }
        }
    }
    // An unmatched "one" side sample meets the left fill value.
    if let Some(fv) = fill.lhs {
        for (j, os) in one.iter().enumerate() {
            if matched_one.contains(&j) {
                continue;
            }
            emit(
                &signature(&os.labels, on, &match_names),
                false,
                &os.labels,
                (fv, None),
                (os.f, os.h.as_ref()),
                &mut out,
            )?;
        }
    }
    Ok(out)
}

fn set_op(op: &str, on: bool, names: &[String], lhs: Vec<Sample>, rhs: Vec<Sample>) -> Vec<Sample> {
    let rsigs: HashSet<Labels> = rhs
        .iter()
        .map(|s| signature(&s.labels, on, names))
        .collect();
    match op {
        "and" => lhs
            .into_iter()
            .filter(|s| rsigs.contains(&signature(&s.labels, on, names)))
            .collect(),
        "unless" => lhs
            .into_iter()
            .filter(|s| !rsigs.contains(&signature(&s.labels, on, names)))
            .collect(),
        _ => {
            let lsigs: HashSet<Labels> = lhs
                .iter()
                .map(|s| signature(&s.labels, on, names))
                .collect();
            let mut out = lhs;
            out.extend(
                rhs.into_iter()
                    .filter(|s| !lsigs.contains(&signature(&s.labels, on, names))),
            );
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promql_parser::parser::Expr;

    fn vector(series: &[(&str, &str, f64)]) -> Instant {
        Instant::Vector(
            series
                .iter()
                .map(|(job, instance, f)| Sample {
                    labels: Arc::new(Labels::from_pairs([("job", *job), ("instance", *instance)])),
                    f: *f,
                    h: None,
                    drop_name: false,
                })
                .collect(),
        )
    }

    fn binary(q: &str, lhs: Instant, rhs: Instant) -> Result<Instant, PromqlError> {
        let Expr::Binary(b) = promql_parser::parser::parse(q).unwrap() else {
            panic!("not a binary operation: {q}");
        };
        eval(
            &b.op.to_string(),
            b.modifier.as_ref(),
            lhs,
            rhs,
            &mut Vec::new(),
        )
    }

    /// Two left series that meet the same (filled) right side are a many-to-one match
    /// that one-to-one matching refuses, with or without a right series present.
    #[test]
    fn a_fill_value_is_matched_once_in_one_to_one_matching() {
        let left = || vector(&[("a", "1", 1.0), ("a", "2", 2.0)]);
        for right in [vector(&[]), vector(&[("a", "9", 5.0)])] {
            let err = binary("x + on(job) fill_right(0) y", left(), right).unwrap_err();
            assert!(
                err.to_string().contains("multiple matches for labels"),
                "{err}"
            );
        }
        let Instant::Vector(out) = binary(
            "x + on(job) group_left fill_right(7) y",
            left(),
            vector(&[]),
        )
        .unwrap() else {
            panic!("not a vector");
        };
        assert_eq!(out.iter().map(|s| s.f).collect::<Vec<_>>(), [8.0, 9.0]);
    }
}
