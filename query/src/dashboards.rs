//! Dashboards kept by the server: `<data_dir>/dashboards/<uid>.json`, one document
//! each, saved atomically with a version check, plus read-only dashboards provisioned
//! from a folder (SignalBox or Grafana JSON, or YAML), and the HTTP API the UI uses:
//!
//! - `GET /api/v1/dashboards`: the list (uid, title, tags, panels, provisioned)
//! - `GET /api/v1/dashboards/{uid}`: one dashboard
//! - `POST /api/v1/dashboards`: create (a new uid is chosen when none is given)
//! - `PUT /api/v1/dashboards/{uid}`: save; the body's `version` must be the stored one
//! - `DELETE /api/v1/dashboards/{uid}`
//! - `POST /api/v1/dashboards/import`: a Grafana dashboard export, converted and saved
//!
//! The on-disk format and recovery rule are in ARCHITECTURE.md ("Dashboards").

use crate::statefile;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use signalbox_dashboard::{Dashboard, from_grafana, looks_like_grafana, uid_from_title, valid_uid};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest dashboard document accepted.
const MAX_DOCUMENT_BYTES: usize = 4 << 20;

pub struct DashboardStore {
    dir: PathBuf,
    provision_dir: Option<PathBuf>,
    /// Saves and deletes one at a time, so the version check and the write agree.
    write: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
pub enum Error {
    BadData(String),
    NotFound(String),
    Conflict(String),
    Internal(String),
}

impl Error {
    /// The HTTP status, the Prometheus-style `errorType` and the message.
    fn parts(self) -> (StatusCode, &'static str, String) {
        match self {
            Error::BadData(m) => (StatusCode::BAD_REQUEST, "bad_data", m),
            Error::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m),
            Error::Conflict(m) => (StatusCode::CONFLICT, "conflict", m),
            Error::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", m),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, kind, msg) = self.parts();
        (
            status,
            axum::Json(json!({"status": "error", "errorType": kind, "error": msg})),
        )
            .into_response()
    }
}

fn io(e: std::io::Error) -> Error {
    Error::Internal(e.to_string())
}

/// Something unique enough for a generated uid: the time in base 36.
fn suffix() -> String {
    let mut n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut s = Vec::new();
    while n > 0 {
        s.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
        n /= 36;
    }
    s.reverse();
    String::from_utf8_lossy(&s[s.len().saturating_sub(8)..]).into_owned()
}

/// A document as a dashboard: SignalBox's own shape, or a Grafana export converted.
/// A Grafana export without a usable uid gets one from its title and `suffix`.
fn parse_document(v: Value, suffix: &str) -> Result<(Dashboard, Vec<String>), String> {
    if looks_like_grafana(&v) {
        let i = from_grafana(&v, suffix)?;
        Ok((i.dashboard, i.warnings))
    } else {
        let d: Dashboard = serde_json::from_value(v).map_err(|e| e.to_string())?;
        Ok((d, Vec::new()))
    }
}

/// Reads a dashboard file as the provisioning folder does: JSON or YAML, SignalBox's
/// shape or a Grafana export; a missing uid comes from the file name. Returns the
/// dashboard and what an import left out.
pub fn load_file(path: &Path) -> Result<(Dashboard, Vec<String>), String> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let v: Value = if ext == "json" {
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())?
    } else {
        serde_yaml::from_slice(&bytes).map_err(|e| e.to_string())?
    };
    // The file name keeps a generated uid the same on every read.
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let (mut d, warnings) = parse_document(v, &uid_from_title(stem, "p"))?;
    if d.uid.is_empty() {
        d.uid = uid_from_title(stem, "p");
    }
    d.number_panels();
    d.check()?;
    Ok((d, warnings))
}

impl DashboardStore {
    /// Opens `<data_dir>/dashboards`: removes unfinished saves and sets aside files that
    /// are not dashboards (returned as warnings, also logged).
    pub fn open(
        data_dir: &Path,
        provision_dir: Option<PathBuf>,
    ) -> std::io::Result<(DashboardStore, Vec<String>)> {
        let dir = data_dir.join("dashboards");
        std::fs::create_dir_all(&dir)?;
        let mut warnings = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            if name.ends_with(".tmp") {
                std::fs::remove_file(&path)?;
                warnings.push(format!("{name}: an unfinished save was removed"));
            } else if name.ends_with(".json") {
                let ok = std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| {
                        serde_json::from_slice::<Dashboard>(&b).map_err(|e| e.to_string())
                    });
                if let Err(reason) = ok {
                    let to = statefile::set_aside(&path)?;
                    warnings.push(format!(
                        "{name}: not a dashboard ({reason}); moved to {}",
                        to.display()
                    ));
                }
            }
        }
        for w in &warnings {
            tracing::warn!(dashboards = %dir.display(), "{w}");
        }
        Ok((
            DashboardStore {
                dir,
                provision_dir,
                write: tokio::sync::Mutex::new(()),
            },
            warnings,
        ))
    }

    fn path(&self, uid: &str) -> PathBuf {
        self.dir.join(format!("{uid}.json"))
    }

    /// The provisioned dashboards, read from their folder now (so edits to the files
    /// show without a restart), with the problems of the files that were skipped.
    pub fn provisioned(&self) -> (Vec<Dashboard>, Vec<String>) {
        let Some(dir) = &self.provision_dir else {
            return (Vec::new(), Vec::new());
        };
        let mut out: Vec<Dashboard> = Vec::new();
        let mut problems = Vec::new();
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => return (Vec::new(), vec![format!("{}: {e}", dir.display())]),
        };
        files.sort();
        for path in files {
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "json" | "yaml" | "yml") {
                continue;
            }
            match load_file(&path).map(|(d, _)| d) {
                Ok(mut d) if !out.iter().any(|o| o.uid == d.uid) => {
                    d.provisioned = true;
                    out.push(d);
                }
                Ok(d) => problems.push(format!(
                    "{}: uid {:?} is provisioned twice",
                    path.display(),
                    d.uid
                )),
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
        (out, problems)
    }

    fn stored(&self, uid: &str) -> Result<Option<Dashboard>, Error> {
        match std::fs::read(self.path(uid)) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::Internal(format!("dashboard {uid}: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    pub fn get(&self, uid: &str) -> Result<Dashboard, Error> {
        if !valid_uid(uid) {
            return Err(Error::NotFound(format!("dashboard {uid:?} not found")));
        }
        if let Some(d) = self.provisioned().0.into_iter().find(|d| d.uid == uid) {
            return Ok(d);
        }
        self.stored(uid)?
            .ok_or_else(|| Error::NotFound(format!("dashboard {uid:?} not found")))
    }

    /// Every dashboard, provisioned ones first, then by title.
    pub fn list(&self) -> Result<(Vec<Dashboard>, Vec<String>), Error> {
        let (mut all, mut problems) = self.provisioned();
        let mut stored = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let Some(uid) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            if all.iter().any(|d| d.uid == uid) {
                continue;
            }
            // A file that stopped being a dashboard since start-up is reported, and the
            // others are still listed.
            match self.stored(uid) {
                Ok(Some(d)) => stored.push(d),
                Ok(None) => {}
                Err(e) => problems.push(e.parts().2),
            }
        }
        stored.sort_by(|a, b| {
            a.title
                .to_lowercase()
                .cmp(&b.title.to_lowercase())
                .then_with(|| a.uid.cmp(&b.uid))
        });
        all.extend(stored);
        Ok((all, problems))
    }

    /// Saves `d` if its `version` is the stored one (0 for a new dashboard); returns
    /// the new version.
    pub async fn save(&self, mut d: Dashboard) -> Result<u64, Error> {
        d.number_panels();
        d.check().map_err(Error::BadData)?;
        let _guard = self.write.lock().await;
        if self.provisioned().0.iter().any(|p| p.uid == d.uid) {
            return Err(Error::Conflict(format!(
                "dashboard {:?} is provisioned from a file; edit the file instead",
                d.uid
            )));
        }
        let current = self.stored(&d.uid)?.map(|s| s.version).unwrap_or(0);
        if d.version != current {
            return Err(Error::Conflict(format!(
                "dashboard {:?} was saved by someone else meanwhile (version {current}, this edit started from {}); reload it and edit again",
                d.uid, d.version
            )));
        }
        d.version = current + 1;
        d.provisioned = false;
        let body = serde_json::to_vec_pretty(&d).map_err(|e| Error::Internal(e.to_string()))?;
        let path = self.path(&d.uid);
        tokio::task::spawn_blocking(move || statefile::write_plain(&path, &body))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(io)?;
        Ok(d.version)
    }

    pub async fn delete(&self, uid: &str) -> Result<(), Error> {
        let _guard = self.write.lock().await;
        if self.provisioned().0.iter().any(|p| p.uid == uid) {
            return Err(Error::Conflict(format!(
                "dashboard {uid:?} is provisioned from a file; remove the file instead"
            )));
        }
        if !valid_uid(uid) || self.stored(uid)?.is_none() {
            return Err(Error::NotFound(format!("dashboard {uid:?} not found")));
        }
        std::fs::remove_file(self.path(uid)).map_err(io)?;
        std::fs::File::open(&self.dir)
            .and_then(|f| f.sync_all())
            .map_err(io)
    }

    /// A uid no dashboard has yet, made from `title`.
    fn fresh_uid(&self, title: &str, wanted: &str) -> Result<String, Error> {
        if valid_uid(wanted) && self.get(wanted).is_err() {
            return Ok(wanted.to_string());
        }
        for _ in 0..5 {
            let uid = uid_from_title(title, &suffix());
            if self.get(&uid).is_err() {
                return Ok(uid);
            }
        }
        Err(Error::Internal(
            "could not find a free dashboard uid".into(),
        ))
    }
}

fn ok(data: Value) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

/// The request body as JSON (its size is bounded by the router's body limit).
fn body_json(body: &Bytes) -> Result<Value, Error> {
    serde_json::from_slice(body).map_err(|e| Error::BadData(format!("not JSON: {e}")))
}

fn summary(d: &Dashboard) -> Value {
    json!({
        "uid": d.uid, "title": d.title, "tags": d.tags, "panels": d.panels.len(),
        "version": d.version, "provisioned": d.provisioned,
    })
}

async fn list(State(s): State<Arc<DashboardStore>>) -> Result<Response, Error> {
    let (all, problems) = s.list()?;
    let mut body =
        json!({"status": "success", "data": all.iter().map(summary).collect::<Vec<_>>()});
    if !problems.is_empty() {
        body["warnings"] = json!(problems);
    }
    Ok(axum::Json(body).into_response())
}

async fn get_one(
    State(s): State<Arc<DashboardStore>>,
    UrlPath(uid): UrlPath<String>,
) -> Result<Response, Error> {
    let d = s.get(&uid)?;
    Ok(ok(
        serde_json::to_value(d).map_err(|e| Error::Internal(e.to_string()))?
    ))
}

async fn create(State(s): State<Arc<DashboardStore>>, body: Bytes) -> Result<Response, Error> {
    let v = body_json(&body)?;
    let mut d: Dashboard = serde_json::from_value(v).map_err(|e| Error::BadData(e.to_string()))?;
    d.uid = s.fresh_uid(&d.title, &d.uid)?;
    d.version = 0;
    let version = s.save(d.clone()).await?;
    Ok(ok(json!({"uid": d.uid, "version": version})))
}

async fn put(
    State(s): State<Arc<DashboardStore>>,
    UrlPath(uid): UrlPath<String>,
    body: Bytes,
) -> Result<Response, Error> {
    let v = body_json(&body)?;
    let d: Dashboard = serde_json::from_value(v).map_err(|e| Error::BadData(e.to_string()))?;
    if d.uid != uid {
        return Err(Error::BadData(format!(
            "the document's uid {:?} is not the {uid:?} of the URL",
            d.uid
        )));
    }
    let version = s.save(d).await?;
    Ok(ok(json!({"uid": uid, "version": version})))
}

async fn delete(
    State(s): State<Arc<DashboardStore>>,
    UrlPath(uid): UrlPath<String>,
) -> Result<Response, Error> {
    s.delete(&uid).await?;
    Ok(ok(json!({"uid": uid})))
}

async fn import(State(s): State<Arc<DashboardStore>>, body: Bytes) -> Result<Response, Error> {
    let v = body_json(&body)?;
    if !looks_like_grafana(&v) {
        return Err(Error::BadData(
            "this is not a Grafana dashboard export (no panels with gridPos or targets, no schemaVersion)".into(),
        ));
    }
    let imported = from_grafana(&v, &suffix()).map_err(Error::BadData)?;
    let mut d = imported.dashboard;
    d.uid = s.fresh_uid(&d.title, &d.uid)?;
    let version = s.save(d.clone()).await?;
    Ok(ok(
        json!({"uid": d.uid, "version": version, "warnings": imported.warnings}),
    ))
}

pub fn router(store: Arc<DashboardStore>) -> Router {
    Router::new()
        .route("/api/v1/dashboards", get(list).post(create))
        .route("/api/v1/dashboards/import", post(import))
        .route(
            "/api/v1/dashboards/{uid}",
            get(get_one).put(put).delete(delete),
        )
        // Larger than axum's default of 2 MiB: a big dashboard is a few MiB of JSON.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_DOCUMENT_BYTES))
        .with_state(store)
}

#[cfg(test)]
mod tests;
