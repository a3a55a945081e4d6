//! The Prometheus HTTP API (`/api/v1/...`): queries, series and label metadata, metric
//! metadata, status, with Prometheus' response and error shapes.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use signalbox_storage::{Histogram, Labels, MetricsReader};

use crate::promql::types::{Layout, NumText};
use crate::promql::{Engine, PromqlError, QueryValue, Value as PValue, histogram};

/// What the Prometheus API needs: the metrics reader and the engine.
#[derive(Clone)]
pub struct PromApi {
    reader: Arc<dyn MetricsReader>,
    engine: Arc<Engine>,
    started: SystemTime,
    retention: String,
}

impl PromApi {
    pub fn new(reader: Arc<dyn MetricsReader>, engine: Engine, retention: Duration) -> PromApi {
        PromApi {
            reader,
            engine: Arc::new(engine),
            started: SystemTime::now(),
            retention: humantime::format_duration(retention).to_string(),
        }
    }
}

/// An API error: Prometheus' `errorType` and the HTTP status that goes with it.
pub(crate) struct ApiError {
    kind: &'static str,
    msg: String,
}

impl ApiError {
    fn bad_data(msg: impl Into<String>) -> ApiError {
        ApiError {
            kind: "bad_data",
            msg: msg.into(),
        }
    }

    fn param(name: &str, msg: impl std::fmt::Display) -> ApiError {
        ApiError::bad_data(format!("invalid parameter {name:?}: {msg}"))
    }
}

impl From<PromqlError> for ApiError {
    fn from(e: PromqlError) -> Self {
        ApiError {
            kind: e.error_type(),
            msg: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self.kind {
            "bad_data" => StatusCode::BAD_REQUEST,
            "execution" => StatusCode::UNPROCESSABLE_ENTITY,
            "canceled" => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            "timeout" => StatusCode::SERVICE_UNAVAILABLE,
            "not_found" => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (
            status,
            axum::Json(json!({"status": "error", "errorType": self.kind, "error": self.msg})),
        )
            .into_response()
    }
}

/// The body of a successful answer: `status`, `data`, and the annotations if any.
#[derive(serde::Serialize)]
struct Success<'a, T> {
    status: &'static str,
    data: T,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    infos: &'a [String],
}

fn success<T: serde::Serialize>(data: T, warnings: &[String], infos: &[String]) -> Response {
    success_sized(data, warnings, infos, 128)
}

/// `success` with the body written into a buffer of `capacity` bytes to start with (a
/// large result then is not copied over and over as the buffer grows).
fn success_sized<T: serde::Serialize>(
    data: T,
    warnings: &[String],
    infos: &[String],
    capacity: usize,
) -> Response {
    let body = Success {
        status: "success",
        data,
        warnings,
        infos,
    };
    let mut buf = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut buf, &body) {
        Ok(()) => ([(header::CONTENT_TYPE, "application/json")], buf).into_response(),
        Err(e) => ApiError {
            kind: "internal",
            msg: format!("cannot write the answer: {e}"),
        }
        .into_response(),
    }
}

/// A starting size for a result's JSON body: about 32 bytes per point and 200 per series.
fn size_hint(v: &QueryValue) -> usize {
    match v {
        QueryValue::Matrix(m) => m.iter().map(|(_, p)| 200 + 32 * p.len()).sum(),
        QueryValue::Vector(v) => 256 * v.len(),
        _ => 128,
    }
    .clamp(128, 64 << 20)
}

/// Parameters from the query string and, for form POSTs, the body.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn new(query: Option<String>, headers: &HeaderMap, body: &Bytes) -> Params {
        let mut v: Vec<(String, String)> =
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            v.extend(form_urlencoded::parse(body).into_owned());
        }
        Params(v)
    }

    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A timestamp: Unix seconds (with fraction) or RFC 3339.
fn parse_time(name: &str, s: Option<&str>) -> Result<i64, ApiError> {
    let s = s.unwrap_or("");
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        return Ok((f * 1000.0).round() as i64);
    }
    match humantime::parse_rfc3339_weak(s) {
        Ok(t) => Ok(match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_millis() as i64,
            Err(e) => -(e.duration().as_millis() as i64),
        }),
        Err(_) => Err(ApiError::param(
            name,
            format!("cannot parse {s:?} to a valid timestamp"),
        )),
    }
}

fn parse_time_or(name: &str, s: Option<&str>, default: i64) -> Result<i64, ApiError> {
    match s {
        None | Some("") => Ok(default),
        Some(_) => parse_time(name, s),
    }
}

/// A duration: seconds (with fraction) or a Prometheus duration like `30s`.
fn parse_duration_ms(name: &str, s: Option<&str>) -> Result<i64, ApiError> {
    let s = s.unwrap_or("");
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        return Ok((f * 1000.0).round() as i64);
    }
    promql_duration(s)
        .ok_or_else(|| ApiError::param(name, format!("cannot parse {s:?} to a valid duration")))
}

pub(crate) fn promql_duration(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let mut total = 0i64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mult)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// A timestamp as `TsJson` writes it.
pub(crate) fn ts_json(t_ms: i64) -> Value {
    serde_json::to_value(TsJson(t_ms)).unwrap_or(Value::Null)
}

/// A sample value as Prometheus writes it in JSON: shortest round-trip digits, in
/// exponent form below 1e-6 and from 1e21.
pub(crate) fn value_string(v: f64) -> String {
    value_text(v).as_str().to_string()
}

fn value_text(v: f64) -> NumText {
    let layout = if v.is_finite() && v != 0.0 && (v.abs() < 1e-6 || v.abs() >= 1e21) {
        Layout::Exponent
    } else {
        Layout::Decimal
    };
    NumText::new(v, layout)
}

/// A sample value as `value_string` writes it, serialized without a `String`.
struct ValueJson(f64);

impl serde::Serialize for ValueJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value_text(self.0).as_str())
    }
}

/// A label set as `LabelsJson` writes it.
pub(crate) fn labels_json(l: &Labels) -> Value {
    serde_json::to_value(LabelsJson(l)).unwrap_or(Value::Null)
}

/// A query's `data`, written straight from the result (a range query's answer can hold
/// millions of points) rather than through `serde_json::Value`.
struct ResultJson<'a>(&'a QueryValue);

impl serde::Serialize for ResultJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(2))?;
        match self.0 {
            QueryValue::Matrix(m) => {
                map.serialize_entry("resultType", "matrix")?;
                map.serialize_entry("result", &MatrixJson(m))?;
            }
            QueryValue::Vector(v) => {
                map.serialize_entry("resultType", "vector")?;
                map.serialize_entry("result", &VectorJson(v))?;
            }
            QueryValue::Scalar { t, v } => {
                map.serialize_entry("resultType", "scalar")?;
                map.serialize_entry("result", &(TsJson(*t), ValueJson(*v)))?;
            }
            QueryValue::String { t, v } => {
                map.serialize_entry("resultType", "string")?;
                map.serialize_entry("result", &(TsJson(*t), v))?;
            }
        }
        map.end()
    }
}

struct VectorJson<'a>(&'a [(Labels, i64, PValue)]);

impl serde::Serialize for VectorJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct One<'a>(&'a (Labels, i64, PValue));
        impl serde::Serialize for One<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let (l, t, v) = self.0;
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("metric", &LabelsJson(l))?;
                match v {
                    PValue::Float(f) => m.serialize_entry("value", &(TsJson(*t), ValueJson(*f)))?,
                    PValue::Histogram(h) => {
                        m.serialize_entry("histogram", &(TsJson(*t), histogram_json(h)))?
                    }
                }
                m.end()
            }
        }
        s.collect_seq(self.0.iter().map(One))
    }
}

struct MatrixJson<'a>(&'a [(Labels, Vec<(i64, PValue)>)]);

impl serde::Serialize for MatrixJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        struct Floats<'a>(&'a [(i64, PValue)]);
        impl serde::Serialize for Floats<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(
                    self.0
                        .iter()
                        .filter_map(|(t, v)| v.float().map(|f| (TsJson(*t), ValueJson(f)))),
                )
            }
        }
        struct Hists<'a>(&'a [(i64, PValue)]);
        impl serde::Serialize for Hists<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().filter_map(|(t, v)| match v {
                    PValue::Histogram(h) => Some((TsJson(*t), histogram_json(h))),
                    PValue::Float(_) => None,
                }))
            }
        }
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (l, pts) in self.0 {
            let has_hists = pts.iter().any(|(_, v)| matches!(v, PValue::Histogram(_)));
            let has_floats = pts.iter().any(|(_, v)| matches!(v, PValue::Float(_)));
            struct Series<'a> {
                labels: &'a Labels,
                pts: &'a [(i64, PValue)],
                floats: bool,
                hists: bool,
            }
            impl serde::Serialize for Series<'_> {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    let mut m = s.serialize_map(None)?;
                    m.serialize_entry("metric", &LabelsJson(self.labels))?;
                    if self.floats || !self.hists {
                        m.serialize_entry("values", &Floats(self.pts))?;
                    }
                    if self.hists {
                        m.serialize_entry("histograms", &Hists(self.pts))?;
                    }
                    m.end()
                }
            }
            seq.serialize_element(&Series {
                labels: l,
                pts,
                floats: has_floats,
                hists: has_hists,
            })?;
        }
        seq.end()
    }
}

/// A label set as a JSON object (labels sorted by name).
struct LabelsJson<'a>(&'a Labels);

impl serde::Serialize for LabelsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|x| (x.name.as_str(), x.value.as_str())))
    }
}

/// A timestamp in seconds: a whole number when it is one, else with its milliseconds.
struct TsJson(i64);

impl serde::Serialize for TsJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 % 1000 == 0 {
            s.serialize_i64(self.0 / 1000)
        } else {
            s.serialize_f64(self.0 as f64 / 1000.0)
        }
    }
}

/// A native histogram as Prometheus encodes it: count, sum, and the non-empty buckets
/// as `[boundary rule, lower, upper, count]` (left out when there are none).
fn histogram_json(h: &Histogram) -> Value {
    let buckets: Vec<Value> = histogram::all_buckets(h)
        .iter()
        .filter(|b| b.count != 0.0)
        .map(|b| {
            json!([
                b.boundary_rule(),
                value_string(b.lower),
                value_string(b.upper),
                value_string(b.count)
            ])
        })
        .collect();
    let mut o = json!({"count": value_string(h.count), "sum": value_string(h.sum)});
    if !buckets.is_empty() {
        o["buckets"] = Value::Array(buckets);
    }
    o
}

async fn with_timeout<T>(
    p: &Params,
    fut: impl std::future::Future<Output = Result<T, PromqlError>>,
) -> Result<T, ApiError> {
    let limit = match p.get("timeout") {
        Some(t) if !t.is_empty() => {
            Duration::from_millis(parse_duration_ms("timeout", Some(t))?.max(1) as u64)
        }
        _ => Duration::from_secs(120),
    };
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(_) => Err(ApiError {
            kind: "timeout",
            msg: "query timed out in query execution".into(),
        }),
    }
}

async fn query(
    State(api): State<PromApi>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &headers, &body);
    let expr = p.get("query").unwrap_or("");
    let t = parse_time_or("time", p.get("time"), now_ms())?;
    let r = with_timeout(&p, api.engine.instant(api.reader.as_ref(), expr, t))
        .await
        .map_err(|e| {
            if e.kind == "bad_data" {
                ApiError::param("query", e.msg)
            } else {
                e
            }
        })?;
    Ok(success_sized(
        ResultJson(&r.value),
        &r.warnings,
        &r.infos,
        size_hint(&r.value),
    ))
}

async fn query_range(
    State(api): State<PromApi>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &headers, &body);
    let start = parse_time("start", p.get("start"))?;
    let end = parse_time("end", p.get("end"))?;
    if end < start {
        return Err(ApiError::param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step = parse_duration_ms("step", p.get("step"))?;
    if step <= 0 {
        return Err(ApiError::param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step + 1 > api.engine.options().max_points_per_series as i64 {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let expr = p.get("query").unwrap_or("");
    let r = with_timeout(
        &p,
        api.engine
            .range(api.reader.as_ref(), expr, start, end, step),
    )
    .await
    .map_err(|e| {
        if e.kind == "bad_data" {
            ApiError::param("query", e.msg)
        } else {
            e
        }
    })?;
    Ok(success_sized(
        ResultJson(&r.value),
        &r.warnings,
        &r.infos,
        size_hint(&r.value),
    ))
}

/// `match[]` selectors as storage matchers (each selector is one set of matchers).
fn selectors(p: &Params) -> Result<Vec<Vec<signalbox_storage::Matcher>>, ApiError> {
    let mut out = Vec::new();
    for s in p.all("match[]") {
        let expr = crate::promql::escapes::parse(s).map_err(|e| ApiError::param("match[]", e))?;
        let promql_parser::parser::Expr::VectorSelector(vs) = expr else {
            return Err(ApiError::param(
                "match[]",
                format!("{s:?} is not a series selector"),
            ));
        };
        let groups = if vs.matchers.or_matchers.is_empty() {
            vec![crate::promql::storage_matchers(&vs.matchers, &vs.name).map_err(ApiError::from)?]
        } else {
            let mut g = Vec::new();
            for or in &vs.matchers.or_matchers {
                g.push(
                    crate::promql::storage_matchers(
                        &promql_parser::label::Matchers::new(or.clone()),
                        &vs.name,
                    )
                    .map_err(ApiError::from)?,
                );
            }
            g
        };
        out.extend(groups);
    }
    Ok(out)
}

fn time_range(p: &Params) -> Result<(i64, i64), ApiError> {
    Ok((
        parse_time_or("start", p.get("start"), i64::MIN / 2)?,
        parse_time_or("end", p.get("end"), i64::MAX / 2)?,
    ))
}

fn limit(p: &Params) -> Result<usize, ApiError> {
    match p.get("limit") {
        None | Some("") => Ok(0),
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| ApiError::param("limit", format!("cannot parse {s:?} to a valid limit"))),
    }
}

fn truncate<T>(mut v: Vec<T>, n: usize) -> (Vec<T>, Vec<String>) {
    if n > 0 && v.len() > n {
        v.truncate(n);
        return (v, vec!["results truncated due to limit".into()]);
    }
    (v, Vec::new())
}

async fn series(
    State(api): State<PromApi>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &headers, &body);
    let sels = selectors(&p)?;
    if sels.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = time_range(&p)?;
    let mut all = std::collections::BTreeSet::new();
    for m in &sels {
        all.extend(
            api.reader
                .series_labels(m, start, end)
                .await
                .map_err(storage_err)?,
        );
    }
    let (v, w) = truncate(all.into_iter().collect::<Vec<_>>(), limit(&p)?);
    Ok(success(
        Value::Array(v.iter().map(labels_json).collect()),
        &w,
        &[],
    ))
}

fn storage_err(e: signalbox_storage::StorageError) -> ApiError {
    ApiError {
        kind: "internal",
        msg: e.to_string(),
    }
}

async fn labels(
    State(api): State<PromApi>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &headers, &body);
    let (start, end) = time_range(&p)?;
    let mut sels = selectors(&p)?;
    if sels.is_empty() {
        sels.push(Vec::new());
    }
    let mut names = std::collections::BTreeSet::new();
    for m in &sels {
        names.extend(
            api.reader
                .label_names(m, start, end)
                .await
                .map_err(storage_err)?,
        );
    }
    let (v, w) = truncate(names.into_iter().collect::<Vec<_>>(), limit(&p)?);
    Ok(success(json!(v), &w, &[]))
}

async fn label_values(
    State(api): State<PromApi>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &headers, &body);
    let name = match name.strip_prefix("U__") {
        Some(_) => {
            return Err(ApiError::param(
                "label",
                "escaped UTF-8 label names are not supported",
            ));
        }
        None => name,
    };
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(ApiError::param(
            "label",
            format!("invalid label name: {name:?}"),
        ));
    }
    let (start, end) = time_range(&p)?;
    let mut sels = selectors(&p)?;
    if sels.is_empty() {
        sels.push(Vec::new());
    }
    let mut values = std::collections::BTreeSet::new();
    for m in &sels {
        values.extend(
            api.reader
                .label_values(&name, m, start, end)
                .await
                .map_err(storage_err)?,
        );
    }
    let (v, w) = truncate(values.into_iter().collect::<Vec<_>>(), limit(&p)?);
    Ok(success(json!(v), &w, &[]))
}

async fn metadata(State(api): State<PromApi>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::new(q, &HeaderMap::new(), &Bytes::new());
    let lim = match p.get("limit") {
        None | Some("") => -1,
        Some(s) => s
            .parse::<i64>()
            .map_err(|_| ApiError::param("limit", format!("cannot parse {s:?}")))?,
    };
    let metric = p.get("metric").filter(|m| !m.is_empty());
    let mut out = serde_json::Map::new();
    for m in api.reader.metadata().await.map_err(storage_err)? {
        if metric.is_some_and(|x| x != m.metric) {
            continue;
        }
        if lim >= 0 && out.len() as i64 >= lim {
            break;
        }
        out.insert(
            m.metric.clone(),
            json!([{"type": m.kind.as_str(), "help": m.help, "unit": m.unit}]),
        );
    }
    Ok(success(Value::Object(out), &[], &[]))
}

async fn buildinfo() -> Response {
    success(
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
            "application": "signalbox",
        }),
        &[],
        &[],
    )
}

async fn runtimeinfo(State(api): State<PromApi>) -> Response {
    let started: chrono_like::Rfc3339 = api.started.into();
    success(
        json!({
            "startTime": started.0,
            "CWD": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default(),
            "reloadConfigSuccess": true,
            "lastConfigTime": started.0,
            "corruptionCount": 0,
            "goroutineCount": 0,
            "GOMAXPROCS": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "GOMEMLIMIT": 0,
            "GOGC": "",
            "GODEBUG": "",
            "storageRetention": api.retention,
        }),
        &[],
        &[],
    )
}

mod chrono_like {
    /// A time as RFC 3339 text.
    pub(super) struct Rfc3339(pub(super) String);

    impl From<std::time::SystemTime> for Rfc3339 {
        fn from(t: std::time::SystemTime) -> Self {
            Rfc3339(humantime::format_rfc3339_millis(t).to_string())
        }
    }
}

async fn format_query(
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &headers, &body);
    let expr = crate::promql::escapes::parse(p.get("query").unwrap_or(""))
        .map_err(|e| ApiError::param("query", e))?;
    Ok(success(json!(expr.to_string()), &[], &[]))
}

/// `/api/v1/query_exemplars`: the exemplars of the series the query's selectors select,
/// in `[start, end]` (all kept ones by default), by series.
async fn exemplars(
    State(api): State<PromApi>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &headers, &body);
    let start = parse_time_or("start", p.get("start"), i64::MIN)?;
    let end = parse_time_or("end", p.get("end"), i64::MAX)?;
    if end < start {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start timestamp",
        ));
    }
    let sets = crate::promql::selector_matchers(p.get("query").unwrap_or(""))
        .map_err(|e| ApiError::bad_data(e.to_string()))?;
    let found = api
        .reader
        .select_exemplars(&sets, start, end)
        .await
        .map_err(storage_err)?;
    let data: Vec<Value> = found
        .iter()
        .map(|s| (&s.labels, &s.exemplars))
        .map(|(labels, es)| {
            json!({
                "seriesLabels": labels_json(labels),
                "exemplars": es.iter().map(|e| json!({
                    "labels": labels_json(&e.labels),
                    "value": value_string(e.value),
                    "timestamp": ts_json(e.t),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(success(json!(data), &[], &[]))
}

/// The `/api/v1` routes.
pub fn router(api: PromApi) -> Router {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/status/runtimeinfo", get(runtimeinfo))
        .route("/api/v1/format_query", get(format_query).post(format_query))
        .route("/api/v1/query_exemplars", get(exemplars).post(exemplars))
        .with_state(api)
}

#[cfg(test)]
pub(crate) mod tests;
