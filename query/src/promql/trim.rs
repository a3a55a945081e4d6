//! The native-histogram trim operators: `h </ x` keeps the observations at or below `x`,
//! `h >/ x` those at or above it. A bucket the threshold falls into keeps the share of
//! its count on the kept side (interpolated exponentially inside exponential buckets,
//! linearly inside custom ones and the zero bucket); count and sum are then estimated
//! again from what is left, each bucket's count at the middle of its kept part.
//!
//! `promql-parser` does not know the operators. Before parsing, `</` and `>/` become
//! `< ` and `> ` (the same length, so no offset moves), and the places of the
//! operators are remembered; after parsing, the binary nodes whose operator stands at
//! one of those places are the trims.

use signalbox_storage::{Buckets, Histogram};

use super::error::PromqlError;
use super::histogram::{custom_bound, upper_bound};
use super::position::{Kind, Rewritten, splice, tokens};

/// The trim operators of a query: the text with each replaced by the comparison of the
/// same precedence, and the byte offset and text (`</` or `>/`) of each.
pub(crate) fn mark(query: &str) -> (Rewritten<'_>, Vec<(usize, &'static str)>) {
    let toks = tokens(query);
    let mut edits = Vec::new();
    let mut trims = Vec::new();
    for w in toks.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if a.kind == Kind::Punct && b.text == "/" && b.start == a.start + 1 {
            let op = match a.text {
                "<" => "</",
                ">" => ">/",
                _ => continue,
            };
            edits.push((b.start, b.start + 1, " ".to_string()));
            trims.push((a.start, op));
        }
    }
    (splice(query, edits), trims)
}

/// Refuses what Prometheus' parser refuses about a trim.
pub(crate) fn check_modifier(return_bool: bool) -> Result<(), PromqlError> {
    if return_bool {
        return Err(PromqlError::Parse(
            "bool modifier can only be used on comparison operators".into(),
        ));
    }
    Ok(())
}

/// `h </ rhs` (`upper`) or `h >/ rhs`.
pub(crate) fn trim(h: &Histogram, rhs: f64, upper: bool) -> Histogram {
    let mut out = h.clone();
    let custom = h.uses_custom_buckets();
    let (mut count, mut sum) = (0.0, 0.0);
    let mut changed = false;
    let (mut has_positive, mut has_negative) = (false, false);
    for positive in [true, false] {
        let side = if positive {
            &mut out.positive
        } else {
            &mut out.negative
        };
        for (k, c) in side.counts.iter_mut().enumerate() {
            if *c == 0.0 {
                continue;
            }
            if positive {
                has_positive = true;
            } else {
                has_negative = true;
            }
            let idx = i64::from(side.offset) + k as i64;
            let (lo, hi) = match (custom, positive) {
                (true, _) => (custom_bound(h, idx - 1), custom_bound(h, idx)),
                (false, true) => (upper_bound(idx - 1, h.schema), upper_bound(idx, h.schema)),
                (false, false) => (-upper_bound(idx, h.schema), -upper_bound(idx - 1, h.schema)),
            };
            let whole = if upper { hi <= rhs } else { lo >= rhs };
            let partly = if upper { lo < rhs } else { hi > rhs };
            if whole {
                count += *c;
                sum += midpoint(lo, hi, positive, custom) * *c;
            } else if partly {
                let (kept, mid) = if lo.is_infinite() || hi.is_infinite() {
                    infinite_bucket(lo, hi, *c, rhs, upper)
                } else {
                    let below = *c * fraction_below(lo, hi, rhs, custom);
                    if upper {
                        (below, midpoint(lo, rhs, positive, custom))
                    } else {
                        (*c - below, midpoint(rhs, hi, positive, custom))
                    }
                };
                count += kept;
                sum += mid * kept;
                if *c != kept {
                    *c = kept;
                    changed = true;
                }
            } else {
                *c = 0.0;
                changed = true;
            }
        }
    }
    if out.zero_count > 0.0 {
        let (kept, mid) = zero_bucket(&out, rhs, has_negative, has_positive, upper);
        if out.zero_count != kept {
            out.zero_count = kept;
            changed = true;
        }
        sum += mid * kept;
        count += kept;
    }
    if !changed {
        return h.clone();
    }
    out.count = count;
    out.sum = sum;
    compact(&mut out.positive);
    compact(&mut out.negative);
    out
}

/// The middle of `[lo, hi]` a bucket's count is taken to be at: geometric inside
/// exponential buckets, arithmetic inside custom ones; towards an infinite bound the
/// finite one (or half of it, from zero).
fn midpoint(lo: f64, hi: f64, positive: bool, custom: bool) -> f64 {
    if lo.is_infinite() {
        if hi.is_infinite() {
            0.0
        } else if hi > 0.0 {
            hi / 2.0
        } else {
            hi
        }
    } else if hi.is_infinite() {
        lo
    } else if custom {
        (lo + hi) / 2.0
    } else {
        let g = (lo * hi).abs().sqrt();
        if positive { g } else { -g }
    }
}

/// The share of a bucket `[lo, hi]` below `v`: linear inside custom buckets, along the
/// logarithm inside exponential ones.
fn fraction_below(lo: f64, hi: f64, v: f64, custom: bool) -> f64 {
    if custom {
        (v - lo) / (hi - lo)
    } else if v > 0.0 {
        (v.log2() - lo.log2()) / (hi.log2() - lo.log2())
    } else {
        let (v, lo, hi) = (v.abs(), lo.abs(), hi.abs());
        1.0 - (v.log2() - hi.log2()) / (lo.log2() - hi.log2())
    }
}

/// The count kept of a bucket with an infinite bound the threshold falls into, and the
/// middle it is taken to be at (an infinite middle counts as 0, so that an empty bucket
/// adds 0 to the sum). A bucket from -Inf is taken to start at 0 when it ends above 0.
fn infinite_bucket(lo: f64, hi: f64, count: f64, rhs: f64, upper: bool) -> (f64, f64) {
    let finite = |x: f64| if x.is_infinite() { 0.0 } else { x };
    if lo.is_infinite() {
        if upper {
            if rhs >= hi {
                (count, 0.0)
            } else if rhs > 0.0 && hi > 0.0 && hi.is_finite() {
                (count * rhs / hi, rhs / 2.0)
            } else if hi <= 0.0 {
                (count, rhs)
            } else {
                (0.0, finite(hi))
            }
        } else if rhs == f64::NEG_INFINITY {
            (count, 0.0)
        } else if rhs >= 0.0 && hi > rhs && hi.is_finite() {
            (count * (1.0 - rhs / hi), (rhs + hi) / 2.0)
        } else {
            (0.0, finite(hi))
        }
    } else if upper {
        (0.0, finite(lo))
    } else if rhs >= lo {
        (count, rhs)
    } else {
        (0.0, finite(lo))
    }
}

/// The zero bucket's kept count and middle. It spans `[-threshold, threshold]`, or only
/// the half on the side of the other buckets when all of them are on one side.
fn zero_bucket(h: &Histogram, rhs: f64, neg: bool, pos: bool, upper: bool) -> (f64, f64) {
    let zc = h.zero_count;
    let mut lo = -h.zero_threshold;
    let mut hi = h.zero_threshold;
    if neg && !pos {
        hi = 0.0;
    }
    if pos && !neg {
        lo = 0.0;
    }
    if upper {
        if rhs <= lo {
            (0.0, 0.0)
        } else if rhs >= hi {
            (zc, (lo + hi) / 2.0)
        } else {
            (zc * (rhs - lo) / (hi - lo), (lo + rhs) / 2.0)
        }
    } else if rhs <= lo {
        (zc, (lo + hi) / 2.0)
    } else if rhs >= hi {
        (0.0, 0.0)
    } else {
        (zc * (hi - rhs) / (hi - lo), (rhs + hi) / 2.0)
    }
}

/// Drops empty buckets at both ends.
fn compact(b: &mut Buckets) {
    let first = b.counts.iter().position(|c| *c != 0.0);
    let Some(first) = first else {
        *b = Buckets::default();
        return;
    };
    let last = b.counts.iter().rposition(|c| *c != 0.0).unwrap_or(first);
    b.counts = b.counts[first..=last].to_vec();
    b.offset += first as i32;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(schema: i32, zc: f64, zt: f64, pos: &[f64], neg: &[f64]) -> Histogram {
        Histogram {
            schema,
            zero_threshold: zt,
            zero_count: zc,
            count: pos.iter().chain(neg).sum::<f64>() + zc,
            sum: 123.75,
            positive: Buckets {
                offset: 0,
                counts: pos.to_vec(),
            },
            negative: Buckets {
                offset: 0,
                counts: neg.to_vec(),
            },
            custom_values: vec![],
            ..Histogram::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn the_text_keeps_its_length_and_the_operators_their_places() {
        let (r, trims) = mark("h </ 2 >/ 1 < x{a=\"</\"}");
        assert_eq!(r.text, "h <  2 >  1 < x{a=\"</\"}");
        assert_eq!(trims, vec![(2, "</"), (7, ">/")]);
        let (r, trims) = mark("a < /b/");
        assert_eq!(trims, vec![]);
        assert_eq!(r.text, "a < /b/");
    }

    // 1.4142135624 is the threshold of the upstream test, not meant as √2.
    #[allow(clippy::approx_constant)]
    #[test]
    fn exponential_buckets_are_split_along_the_logarithm() {
        // {{schema:0 sum:123.75 count:34 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] n_buckets:[1 2]}}
        let h = exp(0, 1.0, 0.001, &[2.0, 4.0, 8.0, 16.0], &[1.0, 2.0]);
        let t = trim(&h, 1.4142135624, true);
        assert!(close(t.count, 8.0), "{t:?}");
        assert!(close(t.sum, 0.2570938865989847), "{t:?}");
        assert_eq!(t.positive.counts.len(), 2);
        let t = trim(&h, 1.4142135624, false);
        assert!(
            close(t.count, 26.0) && close(t.sum, 116.50067065070982),
            "{t:?}"
        );
        assert_eq!(t.positive.offset, 1);
        assert!(t.negative.counts.is_empty());
        let t = trim(&h, 0.0, false);
        assert!(
            close(t.count, 30.5) && close(t.sum, 120.20840280171308),
            "{t:?}"
        );
        // Nothing cut: the histogram as it was, sum included.
        assert_eq!(trim(&h, f64::INFINITY, true), h);
        let t = trim(&h, f64::INFINITY, false);
        assert!(t.count == 0.0 && t.sum == 0.0 && t.positive.counts.is_empty());
    }

    #[test]
    fn negative_buckets_and_finer_schemas() {
        // {{schema:2 count:28 z_bucket:1 z_bucket_w:0.001 buckets:[1 2 4 7 3] n_buckets:[1 5 3 1]}}
        let h = exp(
            2,
            1.0,
            0.001,
            &[1.0, 2.0, 4.0, 7.0, 3.0],
            &[1.0, 5.0, 3.0, 1.0],
        );
        let t = trim(&h, -1.3, true);
        assert!(close(t.count, 2.45786052095524), "{t:?}");
        assert!(close(t.sum, -3.51893079835951), "{t:?}");
        assert_eq!(t.negative.offset, 2);
    }

    #[test]
    fn custom_buckets_are_split_linearly() {
        let cbh = Histogram {
            schema: -53,
            count: 15.0,
            sum: 172.5,
            positive: Buckets {
                offset: 0,
                counts: vec![1.0, 6.0, 4.0, 3.0, 1.0],
            },
            custom_values: vec![5.0, 10.0, 15.0, 20.0],
            ..Histogram::default()
        };
        let t = trim(&cbh, 13.0, true);
        assert!(close(t.count, 9.4) && close(t.sum, 75.1), "{t:?}");
        let t = trim(&cbh, 13.0, false);
        assert!(close(t.count, 5.6) && close(t.sum, 94.9), "{t:?}");
        // The +Inf bucket is dropped by any finite upper trim.
        let t = trim(&cbh, 50.0, true);
        assert!(close(t.count, 14.0) && close(t.sum, 150.0), "{t:?}");
    }

    #[test]
    fn a_zero_bucket_on_one_side_spans_only_that_half() {
        // {{schema:0 count:12 z_bucket:2 z_bucket_w:0.5 buckets:[10]}}
        let h = exp(0, 2.0, 0.5, &[10.0], &[]);
        let t = trim(&h, 0.1, true);
        assert!(close(t.count, 0.4) && close(t.sum, 0.02), "{t:?}");
    }
}
