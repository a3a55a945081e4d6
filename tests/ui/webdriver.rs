//! A small W3C WebDriver client for ChromeDriver driving Debian's headless Chromium.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Where the browser and its driver are, if installed.
pub fn find_browser() -> Option<(PathBuf, PathBuf)> {
    let which = |names: &[&str]| {
        names.iter().find_map(|n| {
            std::env::var_os("PATH")?
                .to_str()?
                .split(':')
                .map(|d| Path::new(d).join(n))
                .find(|p| p.is_file())
        })
    };
    Some((
        which(&["chromium", "chromium-browser", "google-chrome"])?,
        which(&["chromedriver"])?,
    ))
}

pub struct Driver {
    process: Child,
    base: String,
    http: reqwest::Client,
}

impl Driver {
    pub async fn start(chromedriver: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        signalbox_query::install_tls_provider();
        let d = Driver {
            process,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = d.http.get(format!("{}/status", d.base)).send().await
                && r.status().is_success()
            {
                return d;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new headless browser session with a fresh profile in `profile`.
    pub async fn session(&self, chromium: &Path, profile: &Path) -> Session {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-quic", "--no-first-run", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let v = self.call("POST", "/session", Some(caps)).await;
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        Session {
            base: format!("{}/session/{id}", self.base),
            http: self.http.clone(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(&self.http, method, &format!("{}{path}", self.base), body).await
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

async fn call(http: &reqwest::Client, method: &str, url: &str, body: Option<Value>) -> Value {
    let req = match method {
        "GET" => http.get(url),
        "DELETE" => http.delete(url),
        _ => http.post(url).json(&body.unwrap_or_else(|| json!({}))),
    };
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {url}: {status} {v}");
    v["value"].clone()
}

/// WebDriver's code for the Enter key.
pub const ENTER: &str = "\u{E007}";
/// WebDriver's code for the Tab key.
pub const TAB: &str = "\u{E004}";
/// WebDriver's code for the down arrow.
pub const ARROW_DOWN: &str = "\u{E015}";

pub struct Session {
    base: String,
    http: reqwest::Client,
}

impl Session {
    pub async fn goto(&self, url: &str) {
        call(
            &self.http,
            "POST",
            &format!("{}/url", self.base),
            Some(json!({"url": url})),
        )
        .await;
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    pub async fn js(&self, script: &str, args: Value) -> Value {
        call(
            &self.http,
            "POST",
            &format!("{}/execute/sync", self.base),
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Waits until the page's wasm bundle has hydrated it (the app marks the root).
    pub async fn wait_hydrated(&self) {
        self.wait_for(
            "hydration",
            30,
            "return document.documentElement.dataset.hydrated === 'true'",
        )
        .await;
    }

    /// Runs `script` until it returns something truthy, for up to `secs` seconds.
    pub async fn wait_for(&self, what: &str, secs: u64, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.js(script, json!([])).await;
            if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types `keys` into the element `css` selects, as real key presses (WebDriver's
    /// key codes: [`ENTER`], [`TAB`], [`ARROW_DOWN`]).
    pub async fn type_into(&self, css: &str, keys: &str) {
        let found = call(
            &self.http,
            "POST",
            &format!("{}/element", self.base),
            Some(json!({"using": "css selector", "value": css})),
        )
        .await;
        let id = found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_string();
        call(
            &self.http,
            "POST",
            &format!("{}/element/{id}/value", self.base),
            Some(json!({"text": keys})),
        )
        .await;
    }

    /// Presses `keys` one after another on the keyboard, wherever the focus is (WebDriver
    /// key actions: the browser does what the key does, such as moving the focus on Tab).
    pub async fn press(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|k| {
                let k = k.to_string();
                [
                    json!({"type": "keyDown", "value": k}),
                    json!({"type": "keyUp", "value": k}),
                ]
            })
            .collect();
        call(
            &self.http,
            "POST",
            &format!("{}/actions", self.base),
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        )
        .await;
    }

    /// Presses `key` until the script `condition` returns true, at most `max` times
    /// (failing with `what` past that).
    pub async fn press_until(&self, key: &str, condition: &str, max: usize, what: &str) {
        let mut presses = 0;
        while self.js(condition, json!([])).await != json!(true) {
            presses += 1;
            assert!(presses <= max, "{what}");
            self.press(key).await;
        }
    }

    /// Resizes the browser window (the viewport is somewhat smaller).
    pub async fn resize(&self, width: u32, height: u32) {
        call(
            &self.http,
            "POST",
            &format!("{}/window/rect", self.base),
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    pub async fn current_url(&self) -> String {
        call(&self.http, "GET", &format!("{}/url", self.base), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Browser console entries of level SEVERE since the last call.
    pub async fn console_errors(&self) -> Vec<String> {
        let v = call(
            &self.http,
            "POST",
            &format!("{}/se/log", self.base),
            Some(json!({"type": "browser"})),
        )
        .await;
        v.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self, to: &Path) {
        use base64::Engine;
        let v = call(
            &self.http,
            "GET",
            &format!("{}/screenshot", self.base),
            None,
        )
        .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .unwrap();
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, png).unwrap();
    }

    pub async fn close(self) {
        call(&self.http, "DELETE", &self.base, None).await;
    }
}
