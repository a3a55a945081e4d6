//! Starting and stopping the server under test.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Server {
    child: Child,
    pub(crate) pid: u32,
    pub(crate) grpc: SocketAddr,
    pub(crate) http: SocketAddr,
}

fn free() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Heads small enough to flush during a run and windows short enough to merge soon after.
const BENCH_CONFIG: &str = "storage:
  metrics: {retention: 2d, head_size: 2GiB, flush_size: 512MiB, flush_interval: 30s, part_window: 1m, max_parts_per_window: 8, max_merge_size: 2GiB}
  logs: {retention: 2d, head_size: 2GiB, flush_size: 512MiB, flush_interval: 30s, part_window: 1m, max_parts_per_window: 8, max_merge_size: 2GiB}
  traces: {retention: 2d, head_size: 2GiB, flush_size: 512MiB, flush_interval: 30s, part_window: 1m, max_parts_per_window: 8, max_merge_size: 2GiB}
";

impl Server {
    pub(crate) async fn start(bin: &str, dir: &Path) -> anyhow::Result<Server> {
        Server::start_with_config(bin, dir, BENCH_CONFIG).await
    }

    /// Starts the server on `dir` with the configuration file `config` (YAML; empty for
    /// the defaults).
    pub(crate) async fn start_with_config(
        bin: &str,
        dir: &Path,
        config: &str,
    ) -> anyhow::Result<Server> {
        let (grpc, otlp_http, http) = (free()?, free()?, free()?);
        let cfg = dir.join("bench.yaml");
        std::fs::write(&cfg, config)?;
        let child = Command::new(bin)
            .arg("--config")
            .arg(&cfg)
            .arg("--data-dir")
            .arg(dir)
            .args([
                "--otlp-grpc-addr",
                &grpc.to_string(),
                "--otlp-http-addr",
                &otlp_http.to_string(),
                "--http-addr",
                &http.to_string(),
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let pid = child.id();
        let s = Server {
            child,
            pid,
            grpc,
            http,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if get(format!("http://{}/readyz", s.http))
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return Ok(s);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("server did not become ready")
    }

    pub(crate) async fn metrics_text(&self) -> anyhow::Result<String> {
        Ok(get(format!("http://{}/metrics", self.http))
            .await?
            .text()
            .await?)
    }

    /// SIGTERM, then wait: the server flushes its heads before exiting.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait()? {
                anyhow::ensure!(st.success(), "server exited with {st}");
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("server did not stop")
    }
}

/// A benchmark that fails part-way does not leave its server running.
impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `reqwest::get` with the TLS provider chosen (the workspace's `reqwest` needs one).
async fn get(url: String) -> reqwest::Result<reqwest::Response> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::get(url).await
}
