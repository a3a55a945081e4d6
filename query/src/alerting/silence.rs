//! Silences: matchers with a start and an end, a creator and a comment. An active
//! silence mutes every alert whose labels it matches. Expired silences are kept for
//! five days (so they can be looked up and re-created), then dropped.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use signalbox_storage::{MatchOp, Matcher};

use super::dispatch::LabelMap;

const EXPIRED_RETENTION_MS: i64 = 5 * 24 * 3600 * 1000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    #[serde(rename = "isRegex")]
    pub is_regex: bool,
    #[serde(rename = "isEqual", default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl SilenceMatcher {
    fn matcher(&self) -> Result<Matcher, String> {
        let op = match (self.is_regex, self.is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::RegexMatch,
            (true, false) => MatchOp::RegexNoMatch,
        };
        Matcher::new(op, self.name.clone(), self.value.clone()).map_err(|e| e.to_string())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub updated_at_ms: i64,
    pub created_by: String,
    pub comment: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    pub fn state(&self, now: i64) -> SilenceState {
        if now >= self.ends_at_ms {
            SilenceState::Expired
        } else if now < self.starts_at_ms {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }

    pub fn matches(&self, labels: &LabelMap) -> bool {
        self.matchers.iter().all(|m| match m.matcher() {
            Ok(m) => m.matches(labels.get(&m.name).map_or("", String::as_str)),
            Err(_) => false,
        })
    }
}

/// A new or changed silence as the API receives it.
#[derive(Clone, Debug)]
pub struct SilenceInput {
    pub id: Option<String>,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub created_by: String,
    pub comment: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Silences {
    by_id: BTreeMap<String, Silence>,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Silences {
    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.by_id.get(id)
    }

    pub fn all(&self) -> impl Iterator<Item = &Silence> {
        self.by_id.values()
    }

    /// IDs of the active silences that match `labels`.
    pub fn silencing(&self, labels: &LabelMap, now: i64) -> Vec<String> {
        self.by_id
            .values()
            .filter(|s| s.state(now) == SilenceState::Active && s.matches(labels))
            .map(|s| s.id.clone())
            .collect()
    }

    /// Creates a silence, or changes one: an unexpired silence whose matchers and
    /// start stay the same is updated in place; otherwise it is expired and a new one
    /// (with a new ID) takes its place, as in Alertmanager. Returns the ID.
    pub fn set(&mut self, s: SilenceInput, now: i64) -> Result<String, String> {
        if s.matchers.is_empty() {
            return Err("at least one matcher required".into());
        }
        let mut any_nonempty = false;
        for m in &s.matchers {
            if m.name.is_empty() {
                return Err("invalid label matcher: empty label name".into());
            }
            let mm = m
                .matcher()
                .map_err(|e| format!("invalid label matcher: {e}"))?;
            any_nonempty |= !mm.matches_empty();
        }
        if !any_nonempty {
            return Err("at least one matcher must not match the empty string".into());
        }
        if s.ends_at_ms <= 0 || s.starts_at_ms <= 0 {
            return Err("start and end time must be set".into());
        }
        if s.ends_at_ms < s.starts_at_ms {
            return Err("end time must not be before start time".into());
        }
        if s.ends_at_ms < now {
            return Err("end time can't be in the past".into());
        }
        if s.created_by.trim().is_empty() {
            return Err("creator information missing".into());
        }
        if s.comment.trim().is_empty() {
            return Err("comment missing".into());
        }
        // A start in the past means now.
        let start = s.starts_at_ms.max(now);
        if let Some(id) = &s.id {
            let Some(old) = self.by_id.get_mut(id) else {
                return Err(format!("silence {id} not found"));
            };
            let same_start = old.starts_at_ms == start || (old.starts_at_ms <= now && start <= now);
            if old.state(now) != SilenceState::Expired && old.matchers == s.matchers && same_start {
                old.ends_at_ms = s.ends_at_ms;
                old.comment = s.comment;
                old.created_by = s.created_by;
                old.updated_at_ms = now;
                return Ok(id.clone());
            }
            if old.state(now) != SilenceState::Expired {
                old.ends_at_ms = now.max(old.starts_at_ms);
                old.updated_at_ms = now;
            }
        }
        let id = new_id();
        self.by_id.insert(
            id.clone(),
            Silence {
                id: id.clone(),
                matchers: s.matchers,
                starts_at_ms: start,
                ends_at_ms: s.ends_at_ms,
                updated_at_ms: now,
                created_by: s.created_by,
                comment: s.comment,
            },
        );
        Ok(id)
    }

    /// Expires a silence now. Expiring an expired silence is an error, as in Alertmanager.
    pub fn expire(&mut self, id: &str, now: i64) -> Result<(), String> {
        let s = self
            .by_id
            .get_mut(id)
            .ok_or_else(|| format!("silence {id} not found"))?;
        match s.state(now) {
            SilenceState::Expired => Err(format!("silence {id} already expired")),
            SilenceState::Pending => {
                s.starts_at_ms = now;
                s.ends_at_ms = now;
                s.updated_at_ms = now;
                Ok(())
            }
            SilenceState::Active => {
                s.ends_at_ms = now;
                s.updated_at_ms = now;
                Ok(())
            }
        }
    }

    pub fn gc(&mut self, now: i64) {
        self.by_id
            .retain(|_, s| now - s.ends_at_ms < EXPIRED_RETENTION_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, value: &str, regex: bool) -> SilenceMatcher {
        SilenceMatcher {
            name: name.into(),
            value: value.into(),
            is_regex: regex,
            is_equal: true,
        }
    }

    fn input(ms: Vec<SilenceMatcher>, start: i64, end: i64) -> SilenceInput {
        SilenceInput {
            id: None,
            matchers: ms,
            starts_at_ms: start,
            ends_at_ms: end,
            created_by: "ops".into(),
            comment: "maintenance".into(),
        }
    }

    #[test]
    fn lifecycle() {
        let mut s = Silences::default();
        let labels: LabelMap = [
            ("alertname".to_string(), "Down".to_string()),
            ("job".to_string(), "api".to_string()),
        ]
        .into();
        let id = s
            .set(input(vec![m("job", "api|web", true)], 1_000, 10_000), 500)
            .unwrap();
        assert!(s.silencing(&labels, 500).is_empty(), "pending");
        assert_eq!(s.silencing(&labels, 1_000), vec![id.clone()]);
        assert_eq!(s.get(&id).unwrap().state(5_000), SilenceState::Active);
        // Changing only the end keeps the ID.
        let mut change = input(vec![m("job", "api|web", true)], 1_000, 20_000);
        change.id = Some(id.clone());
        assert_eq!(s.set(change, 2_000).unwrap(), id);
        // Changing matchers expires the old one and makes a new one.
        let mut change = input(vec![m("job", "api", false)], 1_000, 20_000);
        change.id = Some(id.clone());
        let id2 = s.set(change, 3_000).unwrap();
        assert_ne!(id2, id);
        assert_eq!(s.get(&id).unwrap().state(3_000), SilenceState::Expired);
        s.expire(&id2, 4_000).unwrap();
        assert!(s.expire(&id2, 4_000).is_err());
        assert!(s.silencing(&labels, 4_000).is_empty());
        s.gc(4_000 + EXPIRED_RETENTION_MS);
        assert!(s.get(&id2).is_none());
    }

    #[test]
    fn bad_silences_are_refused() {
        let mut s = Silences::default();
        let e = |s: &mut Silences, i: SilenceInput| s.set(i, 100).unwrap_err();
        assert!(e(&mut s, input(vec![], 100, 200)).contains("at least one matcher"));
        assert!(
            e(&mut s, input(vec![m("job", ".*", true)], 100, 200))
                .contains("must not match the empty string")
        );
        assert!(
            e(&mut s, input(vec![m("job", "(", true)], 100, 200)).contains("invalid label matcher")
        );
        assert!(e(&mut s, input(vec![m("job", "a", false)], 300, 200)).contains("before start"));
        assert!(e(&mut s, input(vec![m("job", "a", false)], 10, 50)).contains("in the past"));
        let mut i = input(vec![m("job", "a", false)], 100, 200);
        i.comment = String::new();
        assert!(e(&mut s, i).contains("comment"));
    }
}
