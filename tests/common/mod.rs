//! Starting the real `signalbox` binary on free loopback ports, and OTLP requests to send it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, exemplar,
    exponential_histogram_data_point, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

pub struct Server {
    pub child: Child,
    pub data: PathBuf,
    pub grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    pub http: SocketAddr,
    pub log: PathBuf,
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

impl Server {
    pub fn start(data: &Path) -> Server {
        Self::start_with(data, &[])
    }

    /// Starts the server on free ports. A port found free can be taken by another test
    /// before the server binds it; the start is then tried again on other ports.
    pub fn start_with(data: &Path, extra: &[&str]) -> Server {
        let mut attempt = 0;
        loop {
            let mut s = Self::spawn(data, extra);
            match s.wait_ready() {
                Ok(()) => return s,
                Err(logs) if attempt < 4 && logs.contains("Address already in use") => {
                    attempt += 1;
                }
                Err(logs) => panic!("server exited early: {logs}"),
            }
        }
    }

    fn spawn(data: &Path, extra: &[&str]) -> Server {
        let (grpc, otlp_http, http) = (free_port(), free_port(), free_port());
        let log = data.with_extension(format!("{}.log", http.port()));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_signalbox"))
            .arg("--data-dir")
            .arg(data)
            .args(["--otlp-grpc-addr", &grpc.to_string()])
            .args(["--otlp-http-addr", &otlp_http.to_string()])
            .args(["--http-addr", &http.to_string()])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap();
        Server {
            child,
            data: data.to_path_buf(),
            grpc,
            otlp_http,
            http,
            log,
        }
    }

    /// Waits until the server answers `/readyz`; `Err` with its log when it exited.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("{status}: {}", self.logs()));
            }
            if http_get(self.http, "/readyz").is_some_and(|(code, _)| code == 200) {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "server not ready: {}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `req` over OTLP/gRPC and waits for it to be accepted.
    pub async fn export_metrics(&self, req: ExportMetricsServiceRequest) {
        MetricsServiceClient::connect(format!("http://{}", self.grpc))
            .await
            .unwrap()
            .export(req)
            .await
            .unwrap();
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and returns the exit code.
    pub fn terminate(mut self) -> i32 {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop: {}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal blocking HTTP GET: status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", service)],
        ..Default::default()
    })
}

pub fn logs_request(service: &str, lines: &[String], t_ns: u64) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(service),
            scope_logs: vec![ScopeLogs {
                log_records: lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| LogRecord {
                        time_unix_nano: t_ns + i as u64,
                        severity_text: "INFO".into(),
                        severity_number: 9,
                        body: Some(AnyValue {
                            value: Some(Value::StringValue(l.clone())),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A request carrying one metric from `service`.
fn metric_request(service: &str, metric: Metric) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(service),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![metric],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub fn gauge_request(
    service: &str,
    name: &str,
    series: &[String],
    t_ns: u64,
    v: f64,
) -> ExportMetricsServiceRequest {
    metric_request(
        service,
        Metric {
            name: name.into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: series
                    .iter()
                    .map(|s| NumberDataPoint {
                        time_unix_nano: t_ns,
                        value: Some(number_data_point::Value::AsDouble(v)),
                        attributes: vec![kv("series", s)],
                        ..Default::default()
                    })
                    .collect(),
            })),
            ..Default::default()
        },
    )
}

/// A cumulative monotonic sum `name` of `service` with one point per `(start, time,
/// value)`, times in nanoseconds.
pub fn counter_request(
    service: &str,
    name: &str,
    points: &[(u64, u64, f64)],
) -> ExportMetricsServiceRequest {
    metric_request(
        service,
        Metric {
            name: name.into(),
            data: Some(metric::Data::Sum(Sum {
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
                data_points: points
                    .iter()
                    .map(|&(start, t, v)| NumberDataPoint {
                        start_time_unix_nano: start,
                        time_unix_nano: t,
                        value: Some(number_data_point::Value::AsDouble(v)),
                        ..Default::default()
                    })
                    .collect(),
            })),
            ..Default::default()
        },
    )
}

/// `req` (a [`gauge_request`]) with an exemplar on its first point: `value` at `t_ns`,
/// pointing at the span `span_id` of the trace `trace_id`.
pub fn with_exemplar(
    mut req: ExportMetricsServiceRequest,
    t_ns: u64,
    value: f64,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
) -> ExportMetricsServiceRequest {
    let Some(metric::Data::Gauge(g)) =
        &mut req.resource_metrics[0].scope_metrics[0].metrics[0].data
    else {
        panic!("not a gauge");
    };
    g.data_points[0].exemplars = vec![Exemplar {
        time_unix_nano: t_ns,
        value: Some(exemplar::Value::AsDouble(value)),
        trace_id,
        span_id,
        ..Default::default()
    }];
    req
}

/// One cumulative exponential histogram point: scale 0, 1 observation in the zero
/// bucket, then `counts` in the positive buckets (1, 2], (2, 4], ….
pub fn exp_histogram_request(
    service: &str,
    name: &str,
    t_ns: u64,
    counts: &[u64],
    sum: f64,
) -> ExportMetricsServiceRequest {
    let point = ExponentialHistogramDataPoint {
        start_time_unix_nano: t_ns - 60_000_000_000,
        time_unix_nano: t_ns,
        count: 1 + counts.iter().sum::<u64>(),
        sum: Some(sum),
        scale: 0,
        zero_count: 1,
        zero_threshold: 0.001,
        positive: Some(exponential_histogram_data_point::Buckets {
            offset: 0,
            bucket_counts: counts.to_vec(),
        }),
        ..Default::default()
    };
    metric_request(
        service,
        Metric {
            name: name.into(),
            data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                data_points: vec![point],
            })),
            ..Default::default()
        },
    )
}

pub fn trace_request(
    service: &str,
    trace_id: [u8; 16],
    spans: u8,
    t_ns: u64,
) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(service),
            scope_spans: vec![ScopeSpans {
                spans: (0..spans)
                    .map(|i| Span {
                        trace_id: trace_id.to_vec(),
                        span_id: vec![i + 1; 8],
                        parent_span_id: if i == 0 { vec![] } else { vec![1; 8] },
                        name: format!("op-{i}"),
                        kind: 2,
                        start_time_unix_nano: t_ns,
                        end_time_unix_nano: t_ns + 1000,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Opens the data directory with the storage crate (the server must be stopped).
pub async fn open_storage(data: &Path) -> signalbox_storage::Storage {
    let mut reg = prometheus_client::registry::Registry::default();
    signalbox_storage::Storage::open(signalbox_storage::StorageConfig::new(data), &mut reg)
        .await
        .unwrap()
        .0
}
