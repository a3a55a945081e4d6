//! Postings: label name → value → sorted ids, used to select series (metrics) and
//! streams (logs) by label matchers without scanning every label set.

use std::collections::{BTreeMap, HashMap};

use crate::model::{Labels, Matcher};

#[derive(Default, Debug)]
pub(crate) struct Postings {
    by_name: HashMap<String, BTreeMap<String, Vec<u32>>>,
    all: Vec<u32>,
}

impl Postings {
    /// Adds `id`; ids must be added in increasing order.
    pub(crate) fn add(&mut self, id: u32, labels: &Labels) {
        for l in labels.iter() {
            let values = match self.by_name.get_mut(l.name.as_str()) {
                Some(v) => v,
                None => self.by_name.entry(l.name.clone()).or_default(),
            };
            match values.get_mut(l.value.as_str()) {
                Some(ids) => ids.push(id),
                None => {
                    values.insert(l.value.clone(), vec![id]);
                }
            }
        }
        self.all.push(id);
    }

    /// Ids whose label sets may match; matchers that accept the empty string are not
    /// applied here, so the caller checks each candidate with `Labels::matches`.
    pub(crate) fn candidates(&self, matchers: &[Matcher]) -> Vec<u32> {
        let mut result: Option<Vec<u32>> = None;
        for m in matchers.iter().filter(|m| !m.matches_empty()) {
            let mut ids: Vec<u32> = Vec::new();
            if let Some(values) = self.by_name.get(&m.name) {
                if m.op == crate::model::MatchOp::Equal {
                    if let Some(v) = values.get(&m.value) {
                        ids.extend_from_slice(v);
                    }
                } else {
                    let mut lists = 0;
                    for (value, list) in values {
                        if m.matches(value) {
                            ids.extend_from_slice(list);
                            lists += 1;
                        }
                    }
                    if lists > 1 {
                        ids.sort_unstable();
                        ids.dedup();
                    }
                }
            }
            result = Some(match result {
                None => ids,
                Some(prev) => intersect(&prev, &ids),
            });
            if result.as_ref().is_some_and(Vec::is_empty) {
                break;
            }
        }
        result.unwrap_or_else(|| self.all.clone())
    }
}

fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MatchOp;
    use proptest::prelude::*;

    proptest! {
        /// Postings narrowing followed by the exact check selects exactly what a full scan selects.
        #[test]
        fn candidates_then_check_equals_scan(
            sets in proptest::collection::vec(proptest::collection::vec(("[ab]", "[xyz]{0,1}"), 0..3), 0..20),
            name in "[ab]", value in "[xyz]{0,1}", op in 0usize..4,
        ) {
            let labels: Vec<Labels> = sets.into_iter().map(Labels::from_pairs).collect();
            let mut p = Postings::default();
            for (i, l) in labels.iter().enumerate() {
                p.add(i as u32, l);
            }
            let op = [MatchOp::Equal, MatchOp::NotEqual, MatchOp::RegexMatch, MatchOp::RegexNoMatch][op];
            let ms = vec![Matcher::new(op, name, value).unwrap()];
            let got: Vec<u32> = p.candidates(&ms).into_iter().filter(|&i| labels[i as usize].matches(&ms)).collect();
            let want: Vec<u32> = (0..labels.len() as u32).filter(|&i| labels[i as usize].matches(&ms)).collect();
            prop_assert_eq!(got, want);
        }
    }
}
