//! Label sets (sorted, unique names), their compact in-memory form, and label matchers.

use std::fmt;

use regex::Regex;

use crate::codec::{Dec, Enc};
use crate::error::{Result, StorageError};

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    pub name: String,
    pub value: String,
}

/// A set of labels sorted by name with unique names. Empty values are dropped,
/// as Prometheus treats an empty label value like a missing label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// Builds a label set; on duplicate names the last value wins, empty values are dropped.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Labels {
        let mut v: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label {
                name: n.into(),
                value: v.into(),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<Label> = Vec::with_capacity(v.len());
        for l in v {
            match out.last_mut() {
                Some(last) if last.name == l.name => *last = l,
                _ => out.push(l),
            }
        }
        out.retain(|l| !l.value.is_empty());
        Labels(out)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when every matcher accepts this label set.
    pub fn matches(&self, matchers: &[Matcher]) -> bool {
        matchers
            .iter()
            .all(|m| m.matches(self.get(&m.name).unwrap_or("")))
    }

    pub(crate) fn encode(&self, e: &mut Enc) {
        e.uvarint(self.0.len() as u64);
        for l in &self.0 {
            e.str(&l.name);
            e.str(&l.value);
        }
    }

    pub(crate) fn decode(d: &mut Dec<'_>) -> Result<Labels> {
        let n = d.count(2)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let name = d.string()?;
            let value = d.string()?;
            v.push(Label { name, value });
        }
        let sorted = v.windows(2).all(|w| w[0].name < w[1].name);
        if sorted {
            Ok(Labels(v))
        } else {
            Ok(Labels::from_pairs(v.into_iter().map(|l| (l.name, l.value))))
        }
    }

    pub(crate) fn compact(&self) -> CompactLabels {
        let mut e = Enc::with_capacity(
            self.0
                .iter()
                .map(|l| l.name.len() + l.value.len() + 2)
                .sum(),
        );
        self.encode(&mut e);
        CompactLabels(e.buf.into_boxed_slice())
    }

    /// A 64-bit hash of the label set, stable across processes.
    pub fn hash64(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for l in &self.0 {
            h.update(l.name.as_bytes());
            h.update(&[0xff]);
            h.update(l.value.as_bytes());
            h.update(&[0xfe]);
        }
        h.digest()
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

/// The encoded form of a label set: one allocation, used where many are held in memory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CompactLabels(Box<[u8]>);

impl CompactLabels {
    pub(crate) fn labels(&self) -> Labels {
        // Written by `Labels::compact`, so decoding cannot fail; fall back to empty anyway.
        Labels::decode(&mut Dec::new(&self.0, "labels")).unwrap_or_default()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether this is the encoding of `labels`, without decoding into new strings.
    pub(crate) fn is(&self, labels: &Labels) -> bool {
        let mut d = Dec::new(&self.0, "labels");
        if d.uvarint().ok() != Some(labels.0.len() as u64) {
            return false;
        }
        labels.0.iter().all(|l| {
            d.bytes().ok() == Some(l.name.as_bytes()) && d.bytes().ok() == Some(l.value.as_bytes())
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

/// A label matcher with Prometheus semantics: regexes are fully anchored and a
/// missing label matches as the empty string.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
}

impl Matcher {
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Matcher> {
        let name = name.into();
        let value = value.into();
        let re = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => {
                Some(Regex::new(&format!("^(?s:{value})$")).map_err(|e| {
                    StorageError::InvalidMatcher {
                        name: name.clone(),
                        pattern: value.clone(),
                        reason: e.to_string(),
                    }
                })?)
            }
            _ => None,
        };
        Ok(Matcher {
            name,
            op,
            value,
            re,
        })
    }

    pub fn eq(name: impl Into<String>, value: impl Into<String>) -> Matcher {
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            re: None,
        }
    }

    pub fn matches(&self, v: &str) -> bool {
        match (self.op, &self.re) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::RegexMatch, Some(re)) => re.is_match(v),
            (MatchOp::RegexNoMatch, Some(re)) => !re.is_match(v),
            (_, None) => false,
        }
    }

    /// True when the matcher accepts the empty string, i.e. also series without the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn from_pairs_sorts_dedups_and_drops_empty() {
        let l = Labels::from_pairs([("b", "1"), ("a", "2"), ("b", "3"), ("c", "")]);
        assert_eq!(l.to_string(), r#"{a="2", b="3"}"#);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
    }

    #[test]
    fn regex_matchers_are_anchored() {
        let m = Matcher::new(MatchOp::RegexMatch, "job", "api|web").unwrap();
        assert!(m.matches("api"));
        assert!(!m.matches("xapi"));
        let m = Matcher::new(MatchOp::RegexNoMatch, "job", ".+").unwrap();
        assert!(m.matches_empty());
        assert!(Matcher::new(MatchOp::RegexMatch, "job", "(").is_err());
    }

    proptest! {
        #[test]
        fn compact_roundtrip(pairs in proptest::collection::vec(("[a-z_]{1,8}", ".{0,12}"), 0..10)) {
            let l = Labels::from_pairs(pairs);
            prop_assert_eq!(l.compact().labels(), l.clone());
            let mut e = Enc::default();
            l.encode(&mut e);
            prop_assert_eq!(Labels::decode(&mut Dec::new(&e.buf, "t")).unwrap(), l);
        }
    }
}
