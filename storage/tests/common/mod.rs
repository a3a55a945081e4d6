//! Builders of batches shared by the storage integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;

use signalbox_storage::*;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn metrics(series: usize, t: i64, v: f64) -> MetricsBatch {
    MetricsBatch {
        series: (0..series)
            .map(|i| SeriesPoints {
                starts: Vec::new(),
                labels: Labels::from_pairs([
                    ("__name__", "http_requests_total".to_string()),
                    ("job", "api".to_string()),
                    ("instance", format!("host-{i}")),
                ]),
                samples: vec![Sample { t, v }],
                histograms: vec![],
                exemplars: Vec::new(),
            })
            .collect(),
        metadata: vec![MetricMetadata {
            metric: "http_requests_total".into(),
            kind: MetricKind::Counter,
            unit: String::new(),
            help: "requests".into(),
        }],
    }
}

pub fn logs(service: &str, lines: &[&str], t_ns: i64) -> LogsBatch {
    LogsBatch {
        streams: vec![LogStream {
            labels: Labels::from_pairs([("service_name", service)]),
            resource: Arc::new(Attributes(vec![(
                "service.name".into(),
                AnyValue::String(service.into()),
            )])),
            records: lines
                .iter()
                .enumerate()
                .map(|(i, l)| LogRecord {
                    time_ns: t_ns + i as i64,
                    observed_time_ns: t_ns + i as i64,
                    severity_number: 9,
                    severity_text: "INFO".into(),
                    body: AnyValue::String(l.to_string()),
                    attributes: Attributes(vec![("user.id".into(), AnyValue::Int(i as i64))]),
                    trace_id: [7; 16],
                    span_id: [8; 8],
                    flags: 1,
                    event_name: String::new(),
                    scope: Arc::new(Scope {
                        name: "app".into(),
                        ..Default::default()
                    }),
                })
                .collect(),
        }],
    }
}

pub fn trace(service: &str, trace_byte: u8, spans: usize, start_ns: i64) -> TracesBatch {
    TracesBatch {
        resources: vec![ResourceSpans {
            service_name: service.into(),
            resource: Arc::new(Attributes(vec![(
                "service.name".into(),
                AnyValue::String(service.into()),
            )])),
            spans: (0..spans)
                .map(|i| Span {
                    trace_id: [trace_byte; 16],
                    span_id: (i as u64 + 1).to_be_bytes(),
                    parent_span_id: if i == 0 { [0; 8] } else { 1u64.to_be_bytes() },
                    name: format!("op-{i}"),
                    kind: 2,
                    start_ns: start_ns + i as i64 * 1000,
                    end_ns: start_ns + i as i64 * 1000 + 500,
                    attributes: Attributes(vec![(
                        "http.route".into(),
                        AnyValue::String("/x".into()),
                    )]),
                    status_code: 1,
                    scope: Arc::new(Scope {
                        name: "lib".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
        }],
    }
}

pub fn config(dir: &std::path::Path) -> StorageConfig {
    StorageConfig::new(dir)
}

pub async fn open(cfg: StorageConfig) -> (Storage, OpenReport) {
    let mut reg = prometheus_client::registry::Registry::default();
    Storage::open(cfg, &mut reg).await.unwrap()
}

pub fn q_logs(start_ns: i64, end_ns: i64) -> LogQuery {
    LogQuery {
        matchers: vec![Matcher::eq("service_name", "api")],
        start_ns,
        end_ns,
        contains: vec![],
        trace_id: None,
        fields: LogFields::All,
        direction: Direction::Forward,
        limit: 1000,
    }
}
