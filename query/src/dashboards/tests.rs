//! The dashboards API through `Router::oneshot`, against a real folder.

use super::*;
use axum::body::Body;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn call(app: &Router, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
    let req = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(
            body.map(|b| Body::from(b.to_string()))
                .unwrap_or_else(Body::empty),
        )
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn app(data: &Path, provision: Option<PathBuf>) -> Router {
    router(Arc::new(DashboardStore::open(data, provision).unwrap().0))
}

#[tokio::test]
async fn dashboards_are_created_saved_with_a_version_check_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), None);
    let (st, v) = call(
        &app,
        "POST",
        "/api/v1/dashboards",
        Some(json!({"title": "Checkout"})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let uid = v["data"]["uid"].as_str().unwrap().to_string();
    assert!(uid.starts_with("checkout-"), "{uid}");
    assert_eq!(v["data"]["version"], 1);

    let (_, v) = call(&app, "GET", &format!("/api/v1/dashboards/{uid}"), None).await;
    let mut d = v["data"].clone();
    d["panels"] = json!([{"title": "Rate", "type": "timeseries", "grid": {"x": 0, "y": 0, "w": 12, "h": 8},
                          "queries": [{"expr": "sum(rate(http_requests_total[5m]))"}]}]);
    let (st, v) = call(
        &app,
        "PUT",
        &format!("/api/v1/dashboards/{uid}"),
        Some(d.clone()),
    )
    .await;
    assert_eq!((st, v["data"]["version"].clone()), (200, json!(2)), "{v}");
    // The same edit again started from version 1: someone else saved meanwhile.
    let (st, v) = call(
        &app,
        "PUT",
        &format!("/api/v1/dashboards/{uid}"),
        Some(d.clone()),
    )
    .await;
    assert_eq!(
        (st, v["errorType"].clone()),
        (409, json!("conflict")),
        "{v}"
    );
    let (_, v) = call(&app, "GET", &format!("/api/v1/dashboards/{uid}"), None).await;
    assert_eq!(v["data"]["panels"][0]["id"], 1, "panels are numbered");
    assert_eq!(v["data"]["version"], 2);

    // A document that fails the checks is refused and the stored one is untouched.
    let mut bad = v["data"].clone();
    bad["panels"][0]["grid"]["w"] = json!(30);
    let (st, e) = call(&app, "PUT", &format!("/api/v1/dashboards/{uid}"), Some(bad)).await;
    assert_eq!(st, 400);
    assert!(
        e["error"].as_str().unwrap().contains("must fit 24 columns"),
        "{e}"
    );
    let (st, _) = call(
        &app,
        "PUT",
        "/api/v1/dashboards/other",
        Some(v["data"].clone()),
    )
    .await;
    assert_eq!(st, 400, "uid of the URL and of the document differ");
    let (st, _) = call(&app, "POST", "/api/v1/dashboards", Some(json!({"nope": 1}))).await;
    assert_eq!(st, 400);

    let (_, list) = call(&app, "GET", "/api/v1/dashboards", None).await;
    assert_eq!(
        list["data"],
        json!([{"uid": uid, "title": "Checkout", "tags": [], "panels": 1, "version": 2, "provisioned": false}])
    );
    let (st, _) = call(&app, "DELETE", &format!("/api/v1/dashboards/{uid}"), None).await;
    assert_eq!(st, 200);
    let (st, _) = call(&app, "GET", &format!("/api/v1/dashboards/{uid}"), None).await;
    assert_eq!(st, 404);
    let (st, _) = call(&app, "GET", "/api/v1/dashboards/..%2Fetc", None).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn grafana_exports_are_imported_and_provisioned_files_are_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let prov = dir.path().join("provisioned");
    std::fs::create_dir_all(&prov).unwrap();
    std::fs::write(
        prov.join("ops.yaml"),
        "uid: ops\ntitle: Ops\npanels:\n- title: Up\n  type: stat\n  queries:\n  - expr: up\n",
    )
    .unwrap();
    std::fs::write(
        prov.join("grafana.json"),
        json!({"uid": "gf", "title": "From Grafana", "schemaVersion": 39,
               "panels": [{"type": "graph", "title": "G", "gridPos": {"x": 0, "y": 0, "w": 24, "h": 6}, "targets": [{"expr": "up"}]}]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(prov.join("broken.json"), "{").unwrap();
    let app = app(&dir.path().join("data"), Some(prov));

    let export = json!({"dashboard": {"uid": "gf", "title": "Imported", "schemaVersion": 30,
        "panels": [{"type": "piechart", "title": "Pie", "gridPos": {"x": 0, "y": 0, "w": 8, "h": 8}}]}});
    let (st, v) = call(&app, "POST", "/api/v1/dashboards/import", Some(export)).await;
    assert_eq!(st, 200, "{v}");
    let uid = v["data"]["uid"].as_str().unwrap();
    assert_ne!(
        uid, "gf",
        "the provisioned uid is taken, so the import gets a fresh one"
    );
    assert!(
        v["data"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("piechart"),
        "{v}"
    );
    let (st, _) = call(
        &app,
        "POST",
        "/api/v1/dashboards/import",
        Some(json!({"title": "plain"})),
    )
    .await;
    assert_eq!(st, 400);

    let (_, list) = call(&app, "GET", "/api/v1/dashboards", None).await;
    let titles: Vec<(&str, bool)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["title"].as_str().unwrap(),
                d["provisioned"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        titles,
        [("From Grafana", true), ("Ops", true), ("Imported", false)]
    );
    assert!(
        list["warnings"][0]
            .as_str()
            .unwrap()
            .contains("broken.json"),
        "{list}"
    );

    let (_, ops) = call(&app, "GET", "/api/v1/dashboards/ops", None).await;
    assert_eq!(ops["data"]["provisioned"], true);
    let (st, v) = call(
        &app,
        "PUT",
        "/api/v1/dashboards/ops",
        Some(ops["data"].clone()),
    )
    .await;
    assert_eq!(st, 409);
    assert!(
        v["error"].as_str().unwrap().contains("edit the file"),
        "{v}"
    );
    let (st, _) = call(&app, "DELETE", "/api/v1/dashboards/ops", None).await;
    assert_eq!(st, 409);
}

#[test]
fn unfinished_saves_are_dropped_and_broken_files_set_aside_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("dashboards");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("good.json"),
        json!({"uid": "good", "title": "Good"}).to_string(),
    )
    .unwrap();
    std::fs::write(d.join("good.json.tmp"), "{\"uid\": \"go").unwrap();
    std::fs::write(d.join("bad.json"), "not json").unwrap();
    let (store, warnings) = DashboardStore::open(dir.path(), None).unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(!d.join("good.json.tmp").exists());
    assert!(d.join("bad.json.corrupt").exists() && !d.join("bad.json").exists());
    assert_eq!(store.get("good").unwrap().title, "Good");
    assert_eq!(store.list().unwrap().0.len(), 1);
}

#[test]
fn a_file_set_aside_twice_keeps_both_copies_and_a_later_bad_file_does_not_hide_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("dashboards");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("bad.json"), "first").unwrap();
    std::fs::write(d.join("bad.json.corrupt"), "older").unwrap();
    std::fs::write(
        d.join("good.json"),
        json!({"uid": "good", "title": "Good"}).to_string(),
    )
    .unwrap();
    let (store, _) = DashboardStore::open(dir.path(), None).unwrap();
    assert_eq!(
        std::fs::read_to_string(d.join("bad.json.corrupt")).unwrap(),
        "older"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("bad.json.corrupt.1")).unwrap(),
        "first"
    );
    // A file that turns bad while the server runs is a warning in the list.
    std::fs::write(d.join("later.json"), "{").unwrap();
    let (all, problems) = store.list().unwrap();
    assert_eq!(all.len(), 1);
    assert!(problems[0].contains("later"), "{problems:?}");
}

#[tokio::test]
async fn grafana_files_without_a_uid_keep_one_uid_and_big_documents_fit() {
    let dir = tempfile::tempdir().unwrap();
    let prov = dir.path().join("provisioned");
    std::fs::create_dir_all(&prov).unwrap();
    std::fs::write(
        prov.join("team.json"),
        json!({"title": "Team", "schemaVersion": 39,
               "panels": [{"type": "stat", "gridPos": {"x": 0, "y": 0, "w": 6, "h": 4}, "targets": [{"expr": "up"}]}]})
        .to_string(),
    )
    .unwrap();
    let app = app(&dir.path().join("data"), Some(prov));
    let (_, first) = call(&app, "GET", "/api/v1/dashboards", None).await;
    let (_, second) = call(&app, "GET", "/api/v1/dashboards", None).await;
    let uid = first["data"][0]["uid"].as_str().unwrap().to_string();
    assert_eq!(second["data"][0]["uid"], uid.as_str());
    let (st, _) = call(&app, "GET", &format!("/api/v1/dashboards/{uid}"), None).await;
    assert_eq!(st, 200, "the listed uid opens");

    // `import` names the import endpoint, never a dashboard.
    let (_, v) = call(
        &app,
        "POST",
        "/api/v1/dashboards",
        Some(json!({"uid": "import", "title": "Import"})),
    )
    .await;
    assert_ne!(v["data"]["uid"], "import");
    // A 3 MiB document (above axum's default body limit) is accepted.
    let note = "x".repeat(3 << 20);
    let (st, v) = call(
        &app,
        "POST",
        "/api/v1/dashboards",
        Some(json!({"title": "Big", "panels": [{"type": "unsupported", "note": note}]})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
}

#[test]
fn several_variable_values_make_a_query_promql_accepts() {
    use signalbox_dashboard::{Selection, interpolate};
    let vars = [Selection {
        name: "instance".into(),
        values: vec!["10.0.0.1:9100".into(), "web+1".into()],
        all: false,
    }];
    let q = interpolate(r#"up{instance=~"$instance"}"#, &vars, 15.0, 3600.0);
    promql_parser::parser::parse(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
}
