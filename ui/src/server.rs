//! Serving the UI from the `signalbox` binary: server-side rendering of every page
//! path and the embedded browser bundle under `/pkg/`.

use crate::App;
use crate::api::Api;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leptos::config::LeptosOptions;
use leptos::hydration::HydrationScripts;
use leptos::prelude::*;
use leptos_meta::MetaTags;
use std::sync::OnceLock;

/// The wasm-bindgen glue and the wasm module, built by build.rs.
const BUNDLE_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pkg/signalbox.js"));
const BUNDLE_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pkg/signalbox_bg.wasm"));
const STYLESHEET: &str = include_str!("../style/signalbox.css");
const FAVICON: &str = include_str!("../style/favicon.svg");

/// Sets the theme chosen earlier (kept in localStorage) before the first paint.
const THEME_SCRIPT: &str = "try{var t=localStorage.getItem('signalbox-theme');if(t)document.documentElement.setAttribute('data-theme',t)}catch(e){}";

/// Size of the embedded wasm module in bytes (reported by the status page and docs).
pub const WASM_BYTES: usize = BUNDLE_WASM.len();

/// Routes of the UI. `api` is the router of the HTTP APIs (without the UI): pages call
/// it in process while rendering. Merge the result after the API routes; it answers
/// every GET the APIs do not.
pub fn router(api: Router) -> Router {
    // Resources spawn their loaders on the runtime the server already runs on; a second
    // call (another router in the same process) finds it set, which is fine.
    let _ = any_spawner::Executor::init_tokio();
    let options = LeptosOptions::builder()
        .output_name("signalbox")
        .site_pkg_dir("pkg")
        .build();
    let api = Api::new(api);
    let render = leptos_axum::render_app_async_with_context(
        move || provide_context(api.clone()),
        move || shell(options.clone()),
    );
    Router::new()
        .route(
            "/pkg/signalbox.js",
            get(|h: HeaderMap| async move { JS.serve(&h) }),
        )
        .route(
            "/pkg/signalbox_bg.wasm",
            get(|h: HeaderMap| async move { WASM.serve(&h) }),
        )
        .route(
            "/pkg/signalbox.css",
            get(|h: HeaderMap| async move { CSS.serve(&h) }),
        )
        .route(
            "/pkg/favicon.svg",
            get(|h: HeaderMap| async move { ICON.serve(&h) }),
        )
        .fallback(move |req: Request<Body>| {
            let render = render.clone();
            async move {
                if req.method() != axum::http::Method::GET
                    && req.method() != axum::http::Method::HEAD
                {
                    return StatusCode::METHOD_NOT_ALLOWED.into_response();
                }
                let mut resp = render(req).await;
                resp.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                resp
            }
        })
}

static JS: Asset = Asset::new(BUNDLE_JS, "text/javascript");
static WASM: Asset = Asset::new(BUNDLE_WASM, "application/wasm");
static CSS: Asset = Asset::new(STYLESHEET.as_bytes(), "text/css");
static ICON: Asset = Asset::new(FAVICON.as_bytes(), "image/svg+xml");

/// A file embedded in the binary, served with an ETag (browsers revalidate, and get
/// `304 Not Modified` while the build is the same) and gzip-compressed when the client
/// accepts it (compressed once, on first use).
struct Asset {
    bytes: &'static [u8],
    content_type: &'static str,
    etag: OnceLock<HeaderValue>,
    gzip: OnceLock<Vec<u8>>,
}

impl Asset {
    const fn new(bytes: &'static [u8], content_type: &'static str) -> Asset {
        Asset {
            bytes,
            content_type,
            etag: OnceLock::new(),
            gzip: OnceLock::new(),
        }
    }

    fn etag(&self) -> &HeaderValue {
        self.etag.get_or_init(|| {
            // FNV-1a: a stable fingerprint of the bytes, not a security measure.
            let h = self.bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
            });
            HeaderValue::from_str(&format!("\"{h:016x}-{}\"", self.bytes.len()))
                .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
        })
    }

    fn gzip(&'static self) -> &'static [u8] {
        self.gzip.get_or_init(|| {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            // Compressing into memory does not fail; if it ever did, the empty result
            // makes `serve` send the file plain.
            enc.write_all(self.bytes)
                .and_then(|()| enc.finish())
                .unwrap_or_default()
        })
    }

    fn serve(&'static self, req: &HeaderMap) -> Response {
        let etag = self.etag().clone();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        // The bundle changes with every build; browsers revalidate each time.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        headers.insert(header::ETAG, etag.clone());
        let matches = req
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| {
                t.trim() == "*" || t.trim().trim_start_matches("W/") == etag.to_str().unwrap_or("")
            });
        if matches {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        let gzip_ok = req
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|e| {
                let mut parts = e.split(';');
                let name = parts.next().unwrap_or("").trim();
                let refused =
                    parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
                name.eq_ignore_ascii_case("gzip") && !refused
            });
        if gzip_ok && self.bytes.len() > 1024 && !self.gzip().is_empty() {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            return (headers, self.gzip()).into_response();
        }
        (headers, self.bytes).into_response()
    }
}

/// The HTML document around the app.
fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <script inner_html=THEME_SCRIPT></script>
                <link rel="stylesheet" href="/pkg/signalbox.css"/>
                <link rel="icon" type="image/svg+xml" href="/pkg/favicon.svg"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).expect("valid header"));
        }
        h
    }

    #[test]
    fn assets_are_compressed_for_clients_that_accept_it_and_revalidate_by_etag() {
        use std::io::Read;
        let plain = WASM.serve(&request(&[]));
        assert_eq!(plain.status(), StatusCode::OK);
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let etag = plain.headers()[header::ETAG]
            .to_str()
            .expect("ascii")
            .to_string();

        let gz = WASM.serve(&request(&[(header::ACCEPT_ENCODING, "br, gzip;q=0.8")]));
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(WASM.gzip())
            .read_to_end(&mut unpacked)
            .expect("valid gzip");
        assert_eq!(unpacked, BUNDLE_WASM);
        assert!(WASM.gzip().len() < BUNDLE_WASM.len() / 2);

        let refused = WASM.serve(&request(&[(header::ACCEPT_ENCODING, "gzip;q=0")]));
        assert!(refused.headers().get(header::CONTENT_ENCODING).is_none());

        let again = WASM.serve(&request(&[(
            header::IF_NONE_MATCH,
            &format!("\"other\", W/{etag}"),
        )]));
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let changed = WASM.serve(&request(&[(header::IF_NONE_MATCH, "\"other\"")]));
        assert_eq!(changed.status(), StatusCode::OK);
        assert_ne!(
            JS.serve(&request(&[])).headers()[header::ETAG],
            etag.as_str()
        );
    }

    /// A dashboard page renders its panels' data on the server, asking the API for each
    /// panel's query once (panels loading in nested resources ran them three times).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dashboard_renders_with_each_panel_query_run_once() {
        use axum::Json;
        use serde_json::json;
        use std::sync::{Arc, Mutex};
        use tower::ServiceExt;

        let asked: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = asked.clone();
        let dashboard = json!({"status": "success", "data": {
            "uid": "d", "title": "Queues", "from": "now-1h", "to": "now", "panels": [
                {"id": 1, "title": "Depth", "type": "timeseries", "queries": [{"expr": "queue_depth"}]},
                {"id": 2, "title": "Workers", "type": "stat", "queries": [{"expr": "count(up)"}]},
                {"id": 3, "title": "Pie", "type": "unsupported", "note": "piechart"}]}});
        let api = Router::new()
            .route(
                "/api/v1/dashboards/{uid}",
                get(move || async move { Json(dashboard) }),
            )
            .fallback(move |req: Request<Body>| {
                let path = req.uri().path().to_string();
                log.lock()
                    .expect("not poisoned")
                    .push(req.uri().to_string());
                async move {
                    let data = if path == "/api/v1/query_range" {
                        json!({"resultType": "matrix", "result": [
                            {"metric": {"queue": "mail"}, "values": [[1.0, "3"], [2.0, "4"], [3.0, "NaN"]]}]})
                    } else {
                        json!({"resultType": "vector", "result": [
                            {"metric": {}, "value": [2.0, "417"]}]})
                    };
                    Json(json!({"status": "success", "data": data}))
                }
            });
        let resp = router(api)
            .oneshot(
                Request::get("/dashboards/d")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        assert_eq!(resp.status(), StatusCode::OK);
        let html = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        let html = String::from_utf8_lossy(&html);
        assert!(html.contains(">417<"), "the stat's value is in the HTML");
        assert!(html.contains("class=\"line\""), "the chart is drawn");
        assert!(
            html.contains("piechart"),
            "the placeholder says what it was"
        );
        // A NaN point reaches the browser as "NaN" (JSON's null would not read back).
        assert!(html.contains("NaN") && !html.contains("null]"), "{html}");
        let mut asked = asked.lock().expect("not poisoned").clone();
        asked.sort();
        let paths: Vec<&str> = asked
            .iter()
            .map(|u| u.split('?').next().unwrap_or(""))
            .collect();
        assert_eq!(paths, ["/api/v1/query", "/api/v1/query_range"], "{asked:?}");
    }
}
