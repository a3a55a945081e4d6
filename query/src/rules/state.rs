//! The alert state file (`rules/alerts.state`): pending and firing alerts with their
//! `activeAt`, so that a restart does not reset `for` clocks. Format and recovery rule
//! are in ARCHITECTURE.md ("Alert state file").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::group::{Alert, GroupState};

const MAGIC: &str = "signalbox-alert-state 1";

/// Saved alerts by (file, group name), each rule's as (alert name, alerts).
pub type AlertsByGroup = BTreeMap<(String, String), Vec<(String, Vec<Alert>)>>;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SavedState {
    pub saved_at_ms: i64,
    pub groups: Vec<SavedGroup>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SavedGroup {
    pub file: String,
    pub group: String,
    pub rules: Vec<SavedRule>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SavedRule {
    pub alert: String,
    pub alerts: Vec<Alert>,
}

impl SavedState {
    /// The alerts of every alerting rule that has any.
    pub fn of(groups: &[GroupState], now_ms: i64) -> SavedState {
        SavedState {
            saved_at_ms: now_ms,
            groups: groups
                .iter()
                .map(|g| SavedGroup {
                    file: g.spec.file.clone(),
                    group: g.spec.name.clone(),
                    rules: g
                        .rules
                        .iter()
                        .filter(|r| r.spec.is_alert() && !r.alerts.is_empty())
                        .map(|r| SavedRule {
                            alert: r.spec.name.clone(),
                            alerts: r.alerts.values().cloned().collect(),
                        })
                        .collect(),
                })
                .filter(|g| !g.rules.is_empty())
                .collect(),
        }
    }

    /// Saved alerts by (file, group) → [(alert name, alerts)].
    pub fn into_map(self) -> AlertsByGroup {
        self.groups
            .into_iter()
            .map(|g| {
                (
                    (g.file, g.group),
                    g.rules.into_iter().map(|r| (r.alert, r.alerts)).collect(),
                )
            })
            .collect()
    }
}

/// Writes the state atomically (see `crate::statefile`).
pub fn save(path: &Path, s: &SavedState) -> std::io::Result<()> {
    let body = serde_json::to_vec(s).map_err(std::io::Error::other)?;
    crate::statefile::write(path, MAGIC, &body)
}

/// What loading found.
#[derive(Debug)]
pub enum Loaded {
    Missing,
    /// Saved longer ago than the outage tolerance: not used.
    TooOld {
        saved_at_ms: i64,
    },
    /// Unreadable: set aside under this name.
    Corrupt {
        reason: String,
        moved_to: PathBuf,
    },
    Ok(SavedState),
}

/// Reads the state file, applying the recovery rule.
pub fn load(path: &Path, now_ms: i64, tolerance_ms: i64) -> std::io::Result<Loaded> {
    let parsed = crate::statefile::read(path, MAGIC, |body| {
        serde_json::from_slice::<SavedState>(body).map_err(|e| format!("bad JSON: {e}"))
    })?;
    Ok(match parsed {
        Ok(None) => Loaded::Missing,
        Ok(Some(s)) if now_ms - s.saved_at_ms > tolerance_ms => Loaded::TooOld {
            saved_at_ms: s.saved_at_ms,
        },
        Ok(Some(s)) => Loaded::Ok(s),
        Err((reason, moved_to)) => Loaded::Corrupt { reason, moved_to },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::group::AlertState;

    fn sample() -> SavedState {
        SavedState {
            saved_at_ms: 1_000,
            groups: vec![SavedGroup {
                file: "r.yml".into(),
                group: "g".into(),
                rules: vec![SavedRule {
                    alert: "Down".into(),
                    alerts: vec![Alert {
                        labels: [("alertname".to_string(), "Down".to_string())].into(),
                        annotations: BTreeMap::new(),
                        state: AlertState::Firing,
                        active_at_ms: 500,
                        fired_at_ms: Some(800),
                        resolved_at_ms: None,
                        keep_firing_since_ms: None,
                        last_sent_ms: None,
                        value: f64::NAN,
                    }],
                }],
            }],
        }
    }

    #[test]
    fn round_trip_and_recovery_rule() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rules/alerts.state");
        assert!(matches!(load(&p, 0, 1).unwrap(), Loaded::Missing));
        save(&p, &sample()).unwrap();
        let Loaded::Ok(s) = load(&p, 2_000, 3_600_000).unwrap() else {
            panic!("not loaded")
        };
        let a = &s.groups[0].rules[0].alerts[0];
        assert_eq!(a.active_at_ms, 500);
        assert_eq!(a.state, AlertState::Firing);
        assert!(a.value.is_nan());
        assert!(matches!(
            load(&p, 10_000_000, 3_600_000).unwrap(),
            Loaded::TooOld { .. }
        ));

        // One flipped byte: set aside, not trusted.
        let mut bytes = std::fs::read(&p).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        let Loaded::Corrupt { reason, moved_to } = load(&p, 2_000, 3_600_000).unwrap() else {
            panic!("corruption not seen")
        };
        assert_eq!(reason, "checksum mismatch");
        assert!(moved_to.exists() && !p.exists());
    }
}
