//! Realistic OTLP traffic: many services, counters and gauges over ~100k series, log
//! lines from access-log, error and JSON templates, traces that fan out across services.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use tonic::transport::Channel;

pub(crate) struct Clients {
    pub(crate) metrics: MetricsServiceClient<Channel>,
    pub(crate) logs: LogsServiceClient<Channel>,
    pub(crate) traces: TraceServiceClient<Channel>,
}

impl Clients {
    pub(crate) async fn connect(url: &str) -> anyhow::Result<Clients> {
        let ch = Channel::from_shared(url.to_string())?.connect().await?;
        let max = 64 << 20;
        Ok(Clients {
            metrics: MetricsServiceClient::new(ch.clone()).max_encoding_message_size(max),
            logs: LogsServiceClient::new(ch.clone()).max_encoding_message_size(max),
            traces: TraceServiceClient::new(ch).max_encoding_message_size(max),
        })
    }
}

/// A small xorshift generator: deterministic and cheap.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// In [0, n), log-uniformly: the chance of `k` falls as 1/(k+1), as the popularity
    /// of items, clients and sessions does (Zipf with exponent 1).
    fn skewed(&mut self, n: u64) -> u64 {
        let k = ((n as f64 + 1.0).powf(self.unit()) - 1.0) as u64;
        k.min(n.saturating_sub(1))
    }
    /// Log-normal around `median` (sigma in natural log units), as latencies are.
    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        // Irwin-Hall: the sum of 12 uniforms less 6 is close to a standard normal.
        let z: f64 = (0..12).map(|_| self.unit()).sum::<f64>() - 6.0;
        median * (sigma * z).exp()
    }
    /// An index into `weights`, each chosen in proportion to its weight.
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let mut r = self.below(weights.iter().sum());
        for (i, w) in weights.iter().enumerate() {
            if r < *w {
                return i;
            }
            r -= w;
        }
        weights.len() - 1
    }
}

/// A fixed scramble of `x`, for values that belong to an item (its size, its price).
fn scramble(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn kv(k: &str, v: impl Into<String>) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn kvi(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

const SERVICES: [&str; 12] = [
    "checkout",
    "cart",
    "payment",
    "shipping",
    "catalog",
    "search",
    "auth",
    "users",
    "email",
    "ads",
    "frontend",
    "recommend",
];

pub(crate) fn service_name(i: usize) -> String {
    format!("{}-{}", SERVICES[i % SERVICES.len()], i / SERVICES.len())
}

pub(crate) fn resource(service: &str, instance: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", service),
            kv("service.instance.id", instance),
            kv("service.version", "1.4.2"),
            kv("deployment.environment", "production"),
            kv("host.name", format!("node-{}", instance.len() % 7)),
        ],
        ..Default::default()
    })
}

const METRICS: [(&str, bool); 10] = [
    ("http.server.requests", true),
    ("http.server.errors", true),
    ("db.client.calls", true),
    ("rpc.client.calls", true),
    ("messaging.published", true),
    ("queue.depth", false),
    ("process.memory.usage", false),
    ("process.cpu.utilization", false),
    ("pool.connections.active", false),
    ("cache.items", false),
];

/// Series `k` of `total`: metric `k % 10`, route `(k/10) % 25`, instance `(k/250) % 20`,
/// service `k / 5000`, so that consecutive series share a resource.
pub(crate) struct MetricGen {
    lo: usize,
    hi: usize,
    cursor: usize,
    values: Vec<f64>,
    rng: Rng,
    services: usize,
}

impl MetricGen {
    pub(crate) fn new(worker: usize, workers: usize, total: usize, services: usize) -> MetricGen {
        let per = total.div_ceil(workers);
        let lo = (worker * per).min(total);
        let hi = ((worker + 1) * per).min(total);
        MetricGen {
            lo,
            hi,
            cursor: lo,
            values: vec![0.0; hi - lo],
            rng: Rng::new(worker as u64 + 1),
            services,
        }
    }

    pub(crate) fn next(&mut self, batch: usize) -> ExportMetricsServiceRequest {
        let t = now_ns();
        let mut resources: Vec<ResourceMetrics> = Vec::new();
        let mut current: Option<(usize, usize)> = None;
        for _ in 0..batch.min(self.hi - self.lo).max(1) {
            if self.hi == self.lo {
                break;
            }
            let k = self.cursor;
            self.cursor = if k + 1 >= self.hi { self.lo } else { k + 1 };
            let (name, counter) = METRICS[k % 10];
            let route = (k / 10) % 25;
            let instance = (k / 250) % 20;
            let service = (k / 5000) % self.services.max(1);
            if current != Some((service, instance)) {
                current = Some((service, instance));
                let svc = service_name(service);
                resources.push(ResourceMetrics {
                    resource: resource(&svc, &format!("{svc}-{instance:02}")),
                    scope_metrics: vec![ScopeMetrics::default()],
                    ..Default::default()
                });
            }
            let v = &mut self.values[k - self.lo];
            *v = if counter {
                *v + self.rng.below(20) as f64
            } else {
                (*v + (self.rng.below(200) as f64 - 100.0) / 10.0).abs()
            };
            let dp = NumberDataPoint {
                time_unix_nano: t,
                start_time_unix_nano: t.saturating_sub(3_600_000_000_000),
                value: Some(if counter {
                    number_data_point::Value::AsInt(*v as i64)
                } else {
                    number_data_point::Value::AsDouble(*v)
                }),
                attributes: vec![
                    kv("http.route", format!("/api/v1/resource{route}")),
                    kv(
                        "http.request.method",
                        if route.is_multiple_of(3) {
                            "POST"
                        } else {
                            "GET"
                        },
                    ),
                ],
                ..Default::default()
            };
            let Some(sm) = resources
                .last_mut()
                .and_then(|r| r.scope_metrics.last_mut())
            else {
                break;
            };
            match sm.metrics.iter_mut().find(|m| m.name == name) {
                Some(m) => match &mut m.data {
                    Some(metric::Data::Sum(s)) => s.data_points.push(dp),
                    Some(metric::Data::Gauge(g)) => g.data_points.push(dp),
                    _ => {}
                },
                None => sm.metrics.push(Metric {
                    name: name.into(),
                    unit: if counter {
                        "{request}".into()
                    } else {
                        "1".into()
                    },
                    data: Some(if counter {
                        metric::Data::Sum(Sum {
                            data_points: vec![dp],
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                            is_monotonic: true,
                        })
                    } else {
                        metric::Data::Gauge(Gauge {
                            data_points: vec![dp],
                        })
                    }),
                    ..Default::default()
                }),
            }
        }
        ExportMetricsServiceRequest {
            resource_metrics: resources,
        }
    }

    pub(crate) fn points(&self, req: &ExportMetricsServiceRequest) -> u64 {
        metric_samples(req)
    }
}

/// The samples a metrics request becomes: one per sum or gauge point; per classic
/// histogram point one per bucket (with `+Inf`), plus `_sum` and `_count`.
pub(crate) fn metric_samples(req: &ExportMetricsServiceRequest) -> u64 {
    req.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            Some(metric::Data::Sum(s)) => s.data_points.len() as u64,
            Some(metric::Data::Gauge(g)) => g.data_points.len() as u64,
            Some(metric::Data::Histogram(h)) => h
                .data_points
                .iter()
                .map(|p| p.explicit_bounds.len() as u64 + 3)
                .sum(),
            _ => 0,
        })
        .sum()
}

const PATHS: [&str; 8] = [
    "/api/v1/users",
    "/api/v1/orders",
    "/api/v1/cart/items",
    "/healthz",
    "/api/v2/search",
    "/static/app.js",
    "/api/v1/payments",
    "/login",
];
const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "curl/8.5.0",
    "okhttp/4.12.0",
    "Go-http-client/1.1",
];
const ERRORS: [&str; 5] = [
    "connection refused",
    "context deadline exceeded",
    "too many open files",
    "duplicate key value violates unique constraint \"orders_pkey\"",
    "upstream returned 503",
];

/// Appended to every `RARE_EVERY`-th line of each worker.
pub(crate) const RARE_TERM: &str = "xylophone";
pub(crate) const RARE_EVERY: u64 = 100_000;

/// How the values in log lines are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogValues {
    /// As traffic has them: popular clients, items, customers and sessions recur
    /// (log-uniform), latencies are log-normal, sizes and prices belong to their item,
    /// order ids and counters grow, access lines carry their time. Request ids, trace
    /// and span ids stay random.
    Realistic,
    /// Every number uniform over its range, no time in the line: close to the most
    /// random these templates can be.
    Uniform,
}

pub(crate) struct LogGen {
    rng: Rng,
    services: usize,
    seq: u64,
    values: LogValues,
    /// The last order id, the eviction counter and the cache size of `Realistic` lines.
    order: u64,
    evictions: u64,
    cache_bytes: u64,
    /// When set, every generated line is also appended here (for the raw-file baseline).
    pub(crate) raw: Option<String>,
}

const PATH_WEIGHTS: [u64; 8] = [25, 15, 10, 20, 10, 5, 5, 10];
/// Typical response bytes per path; a response's size is fixed by its path and item.
const PATH_BYTES: [u64; 8] = [1840, 5230, 730, 2, 12800, 48213, 310, 96];
const PATH_MILLIS: [f64; 8] = [12.0, 35.0, 9.0, 0.5, 60.0, 2.0, 120.0, 25.0];
const AGENT_WEIGHTS: [u64; 4] = [60, 10, 25, 5];
const ERROR_WEIGHTS: [u64; 5] = [30, 40, 5, 10, 15];

impl LogGen {
    pub(crate) fn new(worker: usize, services: usize, values: LogValues) -> LogGen {
        LogGen {
            rng: Rng::new(1000 + worker as u64),
            services,
            seq: 0,
            values,
            order: 10_000_000 * (worker as u64 + 1),
            evictions: 0,
            cache_bytes: 1 << 19,
            raw: None,
        }
    }

    fn line(&mut self, t_ns: u64) -> (String, &'static str, i32) {
        match self.values {
            LogValues::Realistic => self.realistic_line(t_ns),
            LogValues::Uniform => self.uniform_line(),
        }
    }

    fn realistic_line(&mut self, t_ns: u64) -> (String, &'static str, i32) {
        let r = &mut self.rng;
        match r.below(10) {
            0..=5 => {
                let status = [200, 200, 200, 201, 204, 301, 404, 500][r.below(8) as usize];
                // The callers of a service: a few hundred pods and balancers, some busy.
                let client = scramble(r.skewed(2_000));
                let path = r.weighted(&PATH_WEIGHTS);
                let item = r.skewed(100_000);
                let base = PATH_BYTES[path];
                let size = if path == 5 {
                    base
                } else {
                    base + scramble(item ^ ((path as u64) << 40)) % (base / 2 + 1)
                };
                let time = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(t_ns);
                (
                    format!(
                        "10.{}.{}.{} - - [{}] \"{} {}/{} HTTP/1.1\" {} {} {}ms \"{}\"",
                        (client >> 8) & 0xff,
                        (client >> 16) & 0xff,
                        (client >> 24) & 0xff,
                        humantime::format_rfc3339_millis(time),
                        if r.below(4) == 0 { "POST" } else { "GET" },
                        PATHS[path],
                        item,
                        status,
                        size,
                        r.lognormal(PATH_MILLIS[path], 0.7) as u64,
                        AGENTS[r.weighted(&AGENT_WEIGHTS)]
                    ),
                    if status >= 500 { "ERROR" } else { "INFO" },
                    if status >= 500 { 17 } else { 9 },
                )
            }
            6 | 7 => {
                self.order += 1 + r.below(3);
                let items = 1 + r.skewed(12);
                let price = 199 + scramble(r.skewed(500)) % 20_000;
                (
                    format!(
                        "{{\"msg\":\"order processed\",\"order_id\":\"ord-{}\",\"items\":{},\"total_cents\":{},\"customer\":\"cust-{}\",\"latency_ms\":{}}}",
                        self.order,
                        items,
                        items * price,
                        r.skewed(50_000),
                        r.lognormal(40.0, 0.5) as u64
                    ),
                    "INFO",
                    9,
                )
            }
            8 => (
                format!(
                    "failed to call {} at db-{}.internal:5432: {} (attempt {} of 3, request id {:016x})",
                    ["GetUser", "ListOrders", "ChargeCard", "ReserveStock"]
                        [r.weighted(&[40, 30, 10, 20])],
                    r.below(8),
                    ERRORS[r.weighted(&ERROR_WEIGHTS)],
                    r.skewed(3) + 1,
                    r.next()
                ),
                "ERROR",
                17,
            ),
            _ => {
                self.evictions += r.below(2);
                self.cache_bytes = (self.cache_bytes + r.below(4097)).saturating_sub(2048);
                (
                    format!(
                        "cache {} for key session:{:x} in {}us; evictions={} size={}",
                        if r.below(3) == 0 { "miss" } else { "hit" },
                        scramble(r.skewed(5_000)),
                        r.lognormal(80.0, 0.8) as u64,
                        self.evictions,
                        self.cache_bytes
                    ),
                    "DEBUG",
                    5,
                )
            }
        }
    }

    fn uniform_line(&mut self) -> (String, &'static str, i32) {
        let r = &mut self.rng;
        match r.below(10) {
            0..=5 => {
                let status = [200, 200, 200, 201, 204, 301, 404, 500][r.below(8) as usize];
                (
                    format!(
                        "10.{}.{}.{} - - \"{} {}/{} HTTP/1.1\" {} {} {}ms \"{}\"",
                        r.below(255),
                        r.below(255),
                        r.below(255),
                        if r.below(4) == 0 { "POST" } else { "GET" },
                        PATHS[r.below(8) as usize],
                        r.below(100_000),
                        status,
                        r.below(50_000),
                        r.below(900),
                        AGENTS[r.below(4) as usize]
                    ),
                    if status >= 500 { "ERROR" } else { "INFO" },
                    if status >= 500 { 17 } else { 9 },
                )
            }
            6 | 7 => (
                format!(
                    "{{\"msg\":\"order processed\",\"order_id\":\"ord-{}\",\"items\":{},\"total_cents\":{},\"customer\":\"cust-{}\",\"latency_ms\":{}}}",
                    r.below(1 << 40),
                    r.below(12) + 1,
                    r.below(100_000),
                    r.below(50_000),
                    r.below(500)
                ),
                "INFO",
                9,
            ),
            8 => (
                format!(
                    "failed to call {} at db-{}.internal:5432: {} (attempt {} of 3, request id {:016x})",
                    ["GetUser", "ListOrders", "ChargeCard", "ReserveStock"][r.below(4) as usize],
                    r.below(8),
                    ERRORS[r.below(5) as usize],
                    r.below(3) + 1,
                    r.next()
                ),
                "ERROR",
                17,
            ),
            _ => (
                format!(
                    "cache {} for key session:{:x} in {}us; evictions={} size={}",
                    if r.below(3) == 0 { "miss" } else { "hit" },
                    r.next(),
                    r.below(2000),
                    r.below(100),
                    r.below(1 << 20)
                ),
                "DEBUG",
                5,
            ),
        }
    }

    /// A request with `batch` records and the bytes of their lines.
    pub(crate) fn next(&mut self, batch: usize) -> (ExportLogsServiceRequest, u64) {
        let t = now_ns();
        let mut resources: Vec<ResourceLogs> = Vec::new();
        let per_resource = 100;
        let mut bytes = 0u64;
        for i in 0..batch {
            if i % per_resource == 0 {
                let svc = service_name(self.rng.below(self.services as u64) as usize);
                let inst = format!("{svc}-{:02}", self.rng.below(5));
                resources.push(ResourceLogs {
                    resource: resource(&svc, &inst),
                    scope_logs: vec![ScopeLogs::default()],
                    ..Default::default()
                });
            }
            let (mut line, sev, num) = self.line(t + i as u64);
            self.seq += 1;
            if self.seq.is_multiple_of(RARE_EVERY) {
                // A term that occurs once in a million lines, for the rare-term query.
                line.push(' ');
                line.push_str(RARE_TERM);
            }
            bytes += line.len() as u64;
            if let Some(raw) = &mut self.raw {
                raw.push_str(&line);
                raw.push('\n');
            }
            let mut trace_id = vec![];
            let mut span_id = vec![];
            if self.rng.below(3) == 0 {
                trace_id = self
                    .rng
                    .next()
                    .to_be_bytes()
                    .iter()
                    .chain(self.rng.next().to_be_bytes().iter())
                    .copied()
                    .collect();
                span_id = self.rng.next().to_be_bytes().to_vec();
            }
            let rec = LogRecord {
                time_unix_nano: t + i as u64,
                observed_time_unix_nano: t + i as u64,
                severity_text: sev.into(),
                severity_number: num,
                body: Some(AnyValue {
                    value: Some(Value::StringValue(line)),
                }),
                attributes: vec![
                    kv("code.function", "handle_request"),
                    kvi("thread.id", self.rng.below(64) as i64),
                ],
                trace_id,
                span_id,
                ..Default::default()
            };
            if let Some(sl) = resources.last_mut().and_then(|r| r.scope_logs.last_mut()) {
                sl.log_records.push(rec);
            }
        }
        (
            ExportLogsServiceRequest {
                resource_logs: resources,
            },
            bytes,
        )
    }
}

pub(crate) struct TraceGen {
    rng: Rng,
    services: usize,
}

impl TraceGen {
    pub(crate) fn new(worker: usize, services: usize) -> TraceGen {
        TraceGen {
            rng: Rng::new(5000 + worker as u64),
            services,
        }
    }

    /// Whole traces (root plus 4–20 children across services) until `batch` spans.
    pub(crate) fn next(&mut self, batch: usize) -> ExportTraceServiceRequest {
        let now = now_ns();
        let mut by_service: Vec<(usize, Vec<Span>)> = Vec::new();
        let mut n = 0;
        while n < batch {
            let trace_id: Vec<u8> = self
                .rng
                .next()
                .to_be_bytes()
                .iter()
                .chain(self.rng.next().to_be_bytes().iter())
                .copied()
                .collect();
            let root_id = self.rng.next().to_be_bytes().to_vec();
            let children = 4 + self.rng.below(17) as usize;
            let root_svc = self.rng.below(self.services as u64) as usize;
            let dur = 1_000_000 + self.rng.below(300_000_000);
            let start = now - dur;
            let error = self.rng.below(20) == 0;
            let mut spans = vec![(
                root_svc,
                Span {
                    trace_id: trace_id.clone(),
                    span_id: root_id.clone(),
                    name: format!(
                        "{} {}",
                        ["GET", "POST"][self.rng.below(2) as usize],
                        PATHS[self.rng.below(8) as usize]
                    ),
                    kind: span::SpanKind::Server as i32,
                    start_time_unix_nano: start,
                    end_time_unix_nano: start + dur,
                    attributes: vec![
                        kv("http.request.method", "GET"),
                        kv("url.path", PATHS[self.rng.below(8) as usize]),
                        kvi("http.response.status_code", if error { 500 } else { 200 }),
                    ],
                    status: Some(Status {
                        code: if error { 2 } else { 0 },
                        message: if error {
                            "internal error".into()
                        } else {
                            String::new()
                        },
                    }),
                    ..Default::default()
                },
            )];
            for c in 0..children {
                let svc = self.rng.below(self.services as u64) as usize;
                let cstart = start + self.rng.below(dur / 2);
                let cdur = 1 + self.rng.below(dur / 2);
                let db = c % 3 == 0;
                spans.push((
                    svc,
                    Span {
                        trace_id: trace_id.clone(),
                        span_id: self.rng.next().to_be_bytes().to_vec(),
                        parent_span_id: root_id.clone(),
                        name: if db {
                            "SELECT orders".into()
                        } else {
                            format!("grpc.{}/Call", SERVICES[svc % SERVICES.len()])
                        },
                        kind: if db {
                            span::SpanKind::Client as i32
                        } else {
                            span::SpanKind::Internal as i32
                        },
                        start_time_unix_nano: cstart,
                        end_time_unix_nano: cstart + cdur,
                        attributes: if db {
                            vec![
                                kv("db.system", "postgresql"),
                                kv(
                                    "db.statement",
                                    "SELECT id, total FROM orders WHERE customer_id = $1 LIMIT 50",
                                ),
                            ]
                        } else {
                            vec![kv("rpc.system", "grpc"), kvi("rpc.grpc.status_code", 0)]
                        },
                        ..Default::default()
                    },
                ));
            }
            n += spans.len();
            for (svc, s) in spans {
                match by_service.iter_mut().find(|(x, _)| *x == svc) {
                    Some((_, v)) => v.push(s),
                    None => by_service.push((svc, vec![s])),
                }
            }
        }
        ExportTraceServiceRequest {
            resource_spans: by_service
                .into_iter()
                .map(|(svc, spans)| {
                    let name = service_name(svc);
                    ResourceSpans {
                        resource: resource(&name, &format!("{name}-00")),
                        scope_spans: vec![ScopeSpans {
                            spans,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }
                })
                .collect(),
        }
    }

    /// The trace id of the request's first span, as hex.
    pub(crate) fn first_trace_id(&self, req: &ExportTraceServiceRequest) -> Option<String> {
        let span = req
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .next()?;
        Some(span.trace_id.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub(crate) fn spans(&self, req: &ExportTraceServiceRequest) -> u64 {
        req.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len() as u64)
            .sum()
    }
}
