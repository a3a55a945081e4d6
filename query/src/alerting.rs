//! Notifications the way Alertmanager does them, built in: its configuration format
//! (`config`, `matchers`), dispatching with routing, grouping, waits, repeats,
//! silences and inhibition (`dispatch`, `silence`), delivery to webhooks, Slack and
//! email with retries and status (`notify`, `message`, `slack`, `email`, `tls`), and
//! its API v2 subset (`api`).

use std::path::PathBuf;
use std::sync::Arc;

pub mod api;
pub mod config;
pub mod dispatch;
pub(crate) mod email;
pub mod matchers;
pub(crate) mod message;
pub mod notify;
pub mod silence;
pub(crate) mod slack;
pub mod tls;

pub use config::{AmConfig, parse as parse_config};
pub use dispatch::{AmAlert, Dispatcher};
pub use notify::{ForwardTarget, Notifier, NotifierOptions};

use crate::rules::manager::AlertSink;

impl AlertSink for Arc<Notifier> {
    fn send(&self, alerts: Vec<AmAlert>, now_ms: i64) {
        self.put(alerts, now_ms);
    }
}

/// Reads and checks an Alertmanager configuration file; secrets may use `${ENV}`.
pub fn load_config(path: &std::path::Path) -> Result<AmConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    config::parse(&text, &|k| std::env::var(k).ok()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Re-reads the notification configuration; on error the running one stays.
pub fn reload_config(n: &Notifier, path: &Option<PathBuf>) -> Result<(), Vec<String>> {
    let Some(p) = path else { return Ok(()) };
    match load_config(p) {
        Ok(c) => {
            for w in &c.warnings {
                tracing::warn!(warning = %w, "notification configuration");
            }
            n.set_config(Arc::new(c));
            tracing::info!(file = %p.display(), "notification configuration loaded");
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "notification configuration rejected; the previous one stays");
            Err(vec![e])
        }
    }
}
