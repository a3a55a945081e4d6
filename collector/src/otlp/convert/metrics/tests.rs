use super::*;
use opentelemetry_proto::tonic::common::v1::{AnyValue as PAny, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, Gauge, Histogram as PHist, Metric, ResourceMetrics, ScopeMetrics, Sum,
    exponential_histogram_data_point,
};

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(PAny {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn request(metrics: Vec<Metric>, resource: Vec<KeyValue>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn sum_metric(
    name: &str,
    unit: &str,
    temporality: AggregationTemporality,
    monotonic: bool,
    v: f64,
    t: u64,
) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(metric::Data::Sum(Sum {
            aggregation_temporality: temporality as i32,
            is_monotonic: monotonic,
            data_points: vec![NumberDataPoint {
                time_unix_nano: t,
                value: Some(number_data_point::Value::AsDouble(v)),
                attributes: vec![kv("http.method", "GET")],
                ..Default::default()
            }],
        })),
        ..Default::default()
    }
}

fn find<'a>(b: &'a MetricsBatch, name: &str) -> Vec<&'a SeriesPoints> {
    b.series
        .iter()
        .filter(|s| s.labels.get("__name__") == Some(name))
        .collect()
}

#[test]
fn names_get_unit_and_type_suffixes() {
    assert_eq!(
        metric_name("http.server.duration", "ms", NameKind::Other),
        "http_server_duration_milliseconds"
    );
    assert_eq!(
        metric_name("my.counter", "1", NameKind::Counter),
        "my_counter_total"
    );
    assert_eq!(
        metric_name("requests_total", "{requests}", NameKind::Counter),
        "requests_total"
    );
    assert_eq!(
        metric_name("cpu.utilization", "1", NameKind::Gauge),
        "cpu_utilization_ratio"
    );
    assert_eq!(
        metric_name("net.io", "By/s", NameKind::Gauge),
        "net_io_bytes_per_second"
    );
    assert_eq!(
        metric_name("process.memory_bytes", "By", NameKind::Gauge),
        "process_memory_bytes"
    );
    assert_eq!(metric_name("2xx.count", "", NameKind::Gauge), "_2xx_count");
    assert_eq!(metric_name("temp", "Cel", NameKind::Gauge), "temp_celsius");
    assert_eq!(prom_unit("By/s"), "bytes_per_second");
    assert_eq!(prom_unit("{packets}"), "");
}

#[test]
fn job_instance_and_target_info_come_from_the_resource() {
    let req = request(
        vec![sum_metric(
            "req",
            "",
            AggregationTemporality::Cumulative,
            true,
            5.0,
            2_000_000,
        )],
        vec![
            kv("service.name", "cart"),
            kv("service.namespace", "shop"),
            kv("service.instance.id", "i-1"),
            kv("host.name", "h1"),
        ],
    );
    let c = convert(&req, &DeltaState::default(), false);
    let s = find(&c.batch, "req_total");
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].labels.get("job"), Some("shop/cart"));
    assert_eq!(s[0].labels.get("instance"), Some("i-1"));
    assert_eq!(s[0].labels.get("http_method"), Some("GET"));
    assert_eq!(s[0].samples, vec![Sample { t: 2, v: 5.0 }]);
    let info = find(&c.batch, "target_info");
    assert_eq!(info[0].labels.get("host_name"), Some("h1"));
    assert_eq!(info[0].labels.get("job"), Some("shop/cart"));
    assert_eq!(info[0].labels.get("service_name"), None);
    assert!(
        c.batch
            .metadata
            .iter()
            .any(|m| m.metric == "req_total" && m.kind == MetricKind::Counter)
    );
}

#[test]
fn delta_sums_accumulate_only_once_committed() {
    let mut state = DeltaState::default();
    let req = |v| {
        request(
            vec![sum_metric(
                "hits",
                "",
                AggregationTemporality::Delta,
                true,
                v,
                1_000_000_000,
            )],
            vec![kv("service.name", "a")],
        )
    };
    let c = convert(&req(3.0), &state, false);
    assert_eq!(find(&c.batch, "hits_total")[0].samples[0].v, 3.0);
    // Not committed (say storage refused it): the retry starts from the same total.
    let c = convert(&req(3.0), &state, false);
    assert_eq!(find(&c.batch, "hits_total")[0].samples[0].v, 3.0);
    state.commit(c.delta_updates);
    let c = convert(&req(4.0), &state, false);
    assert_eq!(find(&c.batch, "hits_total")[0].samples[0].v, 7.0);
    assert!(has_delta(&req(1.0)));
}

#[test]
fn cumulative_points_keep_their_start_time() {
    let with_start = |mut m: Metric, st: u64| {
        match &mut m.data {
            Some(metric::Data::Sum(s)) => s.data_points[0].start_time_unix_nano = st,
            Some(metric::Data::Histogram(h)) => h.data_points[0].start_time_unix_nano = st,
            _ => unreachable!(),
        }
        m
    };
    let cum = |monotonic| {
        sum_metric(
            "hits",
            "",
            AggregationTemporality::Cumulative,
            monotonic,
            5.0,
            9_000_000_000,
        )
    };
    let delta = sum_metric(
        "d",
        "",
        AggregationTemporality::Delta,
        true,
        1.0,
        9_000_000_000,
    );
    let req = request(
        vec![
            with_start(cum(true), 4_000_000_000),
            with_start(cum(false), 4_000_000_000),
            with_start(delta, 8_000_000_000),
            with_start(latency_histogram(vec![]), 1_000_000),
        ],
        vec![kv("service.name", "a"), kv("host.name", "h")],
    );
    // Off (the default), no start times are kept.
    let off = convert(&req, &DeltaState::default(), false);
    assert!(off.batch.series.iter().all(|s| s.starts.is_empty()));
    let c = convert(&req, &DeltaState::default(), true);
    let starts = |name: &str| {
        let s = find(&c.batch, name);
        assert!(!s.is_empty(), "{name}");
        // Every series of the point (each bucket of a histogram) has the same.
        assert!(s.iter().all(|x| x.starts == s[0].starts), "{name}");
        s[0].starts.clone()
    };
    assert_eq!(starts("hits_total"), vec![StartTime { t: 9000, st: 4000 }]);
    // A gauge (non-monotonic sum) and an accumulated delta have no start time.
    assert!(starts("hits").is_empty());
    assert!(starts("d_total").is_empty());
    for name in [
        "latency_seconds_bucket",
        "latency_seconds_count",
        "latency_seconds_sum",
    ] {
        assert_eq!(starts(name), vec![StartTime { t: 5, st: 1 }], "{name}");
    }
    // target_info is a gauge.
    assert!(starts("target_info").is_empty());
}

/// A cumulative `latency` histogram point: buckets (…, 0.1] 1, (0.1, 0.5] 2, (0.5, +Inf] 3.
fn latency_histogram(exemplars: Vec<opentelemetry_proto::tonic::metrics::v1::Exemplar>) -> Metric {
    Metric {
        name: "latency".into(),
        unit: "s".into(),
        data: Some(metric::Data::Histogram(PHist {
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            data_points: vec![HistogramDataPoint {
                time_unix_nano: 5_000_000,
                count: 6,
                sum: Some(2.5),
                bucket_counts: vec![1, 2, 3],
                explicit_bounds: vec![0.1, 0.5],
                exemplars,
                ..Default::default()
            }],
        })),
        ..Default::default()
    }
}

#[test]
fn classic_histograms_become_cumulative_buckets() {
    let m = latency_histogram(vec![]);
    let c = convert(&request(vec![m], vec![]), &DeltaState::default(), false);
    let buckets = find(&c.batch, "latency_seconds_bucket");
    let mut got: Vec<(String, f64)> = buckets
        .iter()
        .map(|s| (s.labels.get("le").unwrap().to_string(), s.samples[0].v))
        .collect();
    got.sort_by(|a, b| a.1.total_cmp(&b.1));
    assert_eq!(
        got,
        vec![
            ("0.1".into(), 1.0),
            ("0.5".into(), 3.0),
            ("+Inf".into(), 6.0)
        ]
    );
    assert_eq!(find(&c.batch, "latency_seconds_sum")[0].samples[0].v, 2.5);
    assert_eq!(find(&c.batch, "latency_seconds_count")[0].samples[0].v, 6.0);
}

#[test]
fn mismatched_bucket_counts_are_rejected_not_stored() {
    let m = Metric {
        name: "bad".into(),
        data: Some(metric::Data::Histogram(PHist {
            aggregation_temporality: 2,
            data_points: vec![HistogramDataPoint {
                time_unix_nano: 5_000_000,
                count: 1,
                bucket_counts: vec![1],
                explicit_bounds: vec![0.1, 0.5],
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    let g = Metric {
        name: "g".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                time_unix_nano: 0,
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    let c = convert(&request(vec![m, g], vec![]), &DeltaState::default(), false);
    assert_eq!(c.rejected, 2);
    assert!(c.batch.series.is_empty());
    assert_eq!(c.reasons.len(), 2);
}

#[test]
fn exponential_histograms_map_to_native_histograms() {
    let m = Metric {
        name: "size".into(),
        unit: "By".into(),
        data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            data_points: vec![ExponentialHistogramDataPoint {
                time_unix_nano: 1_000_000,
                count: 3,
                sum: Some(10.0),
                scale: 0,
                zero_count: 1,
                positive: Some(exponential_histogram_data_point::Buckets {
                    offset: 1,
                    bucket_counts: vec![0, 2],
                }),
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    let c = convert(&request(vec![m], vec![]), &DeltaState::default(), false);
    let s = find(&c.batch, "size_bytes");
    let h = &s[0].histograms[0].h;
    assert_eq!(h.schema, 0);
    assert_eq!(
        h.positive,
        Buckets {
            offset: 2,
            counts: vec![0.0, 2.0]
        }
    );
    assert_eq!((h.count, h.sum, h.zero_count), (3.0, 10.0, 1.0));
}

#[test]
fn exponential_histograms_with_buckets_past_any_float_are_rejected() {
    let point = |scale: i32, offset: i32, t_ms: u64| ExponentialHistogramDataPoint {
        time_unix_nano: t_ms * 1_000_000,
        count: 2,
        scale,
        positive: Some(exponential_histogram_data_point::Buckets {
            offset,
            bucket_counts: vec![1, 1],
        }),
        ..Default::default()
    };
    let m = Metric {
        name: "far".into(),
        data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            // At the i32 limit (scale 20 is reduced by merging), far past 2^1024 at
            // scale 0, and one that is fine.
            data_points: vec![
                point(20, i32::MAX, 1),
                point(0, 5_000_000, 2),
                point(0, 3, 3),
            ],
        })),
        ..Default::default()
    };
    let c = convert(&request(vec![m], vec![]), &DeltaState::default(), false);
    assert_eq!(c.rejected, 2);
    assert!(
        c.reasons.iter().all(|r| r.contains("beyond any float")),
        "{:?}",
        c.reasons
    );
    assert_eq!(find(&c.batch, "far")[0].histograms.len(), 1);
}

#[test]
fn high_scales_are_reduced_by_merging_buckets() {
    // Scale 10 → 8 merges four neighbouring buckets.
    let b = downscale(-3, &[1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 2);
    // OTLP indexes -3..=2 at scale 10 fall into -1 (−3..−1 → −1) and 0 (0..=2 → 0) at scale 8.
    assert_eq!(
        b,
        Buckets {
            offset: 0,
            counts: vec![3.0, 3.0]
        }
    );
}

#[test]
fn no_recorded_value_becomes_a_staleness_marker() {
    let m = Metric {
        name: "g".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                time_unix_nano: 9_000_000,
                flags: 1,
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    let c = convert(&request(vec![m], vec![]), &DeltaState::default(), false);
    assert!(signalbox_storage::is_stale_nan(
        find(&c.batch, "g")[0].samples[0].v
    ));
}

fn otlp_exemplar(v: f64, trace: u8) -> opentelemetry_proto::tonic::metrics::v1::Exemplar {
    opentelemetry_proto::tonic::metrics::v1::Exemplar {
        filtered_attributes: vec![kv("user.id", "7")],
        time_unix_nano: 4_000_000,
        span_id: vec![trace; 8],
        trace_id: vec![trace; 16],
        value: Some(opentelemetry_proto::tonic::metrics::v1::exemplar::Value::AsDouble(v)),
    }
}

#[test]
fn exemplars_go_to_their_series_and_histogram_buckets_by_value() {
    let mut sum = sum_metric(
        "requests",
        "",
        AggregationTemporality::Cumulative,
        true,
        3.0,
        5_000_000,
    );
    if let Some(metric::Data::Sum(s)) = &mut sum.data {
        s.data_points[0].exemplars = vec![otlp_exemplar(1.0, 0xab)];
    }
    let hist = latency_histogram(vec![
        otlp_exemplar(0.3, 1),
        otlp_exemplar(0.5, 2),
        otlp_exemplar(9.0, 3),
    ]);
    let c = convert(
        &request(vec![sum, hist], vec![]),
        &DeltaState::default(),
        false,
    );
    let s = &find(&c.batch, "requests_total")[0];
    assert_eq!(s.exemplars.len(), 1);
    let e = &s.exemplars[0];
    assert_eq!((e.t, e.value), (4, 1.0));
    assert_eq!(
        e.labels.get("trace_id"),
        Some("abababababababababababababababab")
    );
    assert_eq!(e.labels.get("span_id"), Some("abababababababab"));
    assert_eq!(e.labels.get("user_id"), Some("7"));
    let by_le = |le: &str| -> Vec<f64> {
        find(&c.batch, "latency_seconds_bucket")
            .iter()
            .find(|s| s.labels.get("le") == Some(le))
            .map(|s| s.exemplars.iter().map(|e| e.value).collect())
            .unwrap_or_default()
    };
    assert_eq!(by_le("0.1"), Vec::<f64>::new());
    assert_eq!(by_le("0.5"), vec![0.3, 0.5]);
    assert_eq!(by_le("+Inf"), vec![9.0]);
}
