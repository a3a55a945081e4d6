//! SignalBox collector: the receivers that accept telemetry and hand it to storage.
//!
//! OTLP over gRPC and HTTP (`otlp`), converted into the storage model (metrics by the
//! OpenTelemetry→Prometheus rules), and the Loki push API (`loki`). Limits at the edge — request size,
//! bytes being decoded at once — refuse work with the protocol's retryable answer
//! before it can exhaust memory.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use signalbox_collector::{Collector, CollectorConfig};
//! let sink = Arc::new(signalbox_storage::MemStore::new());
//! let mut registry = prometheus_client::registry::Registry::default();
//! let collector = Collector::new(sink, CollectorConfig::default(), &mut registry);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:4318").await?;
//! signalbox_collector::serve_otlp_http(listener, collector, std::future::pending()).await
//! # }
//! ```

mod error;
mod loki;
mod otlp;
mod telemetry;

pub use error::IngestError;
pub use loki::router as loki_push_router;
pub use otlp::Partial;
pub use otlp::grpc::serve as serve_otlp_grpc;
pub use otlp::http::{router as otlp_http_router, serve as serve_otlp_http};

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prometheus_client::registry::Registry;
use signalbox_storage::IngestSink;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use otlp::convert;
use otlp::convert::metrics::DeltaState;
use telemetry::{IngestMetrics, RefusalLabels, RequestLabels, SignalLabels};

/// Limits applied at the edge.
#[derive(Clone, Debug)]
pub struct CollectorConfig {
    /// Largest request body, before and after decompression.
    pub max_request_bytes: usize,
    /// Bytes of request bodies being decoded and converted at once; past it requests are
    /// refused with a retryable answer.
    pub max_inflight_bytes: usize,
    /// Whether the start times of cumulative points are kept with their samples.
    pub start_times: bool,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            max_request_bytes: 16 << 20,
            max_inflight_bytes: 256 << 20,
            start_times: false,
        }
    }
}

/// Accepts OTLP export requests and writes them to an [`IngestSink`].
pub struct Collector {
    sink: Arc<dyn IngestSink>,
    cfg: CollectorConfig,
    delta: tokio::sync::Mutex<DeltaState>,
    inflight: Arc<Semaphore>,
    metrics: IngestMetrics,
}

const DELTA_IDLE: Duration = Duration::from_secs(3600);
const DELTA_SWEEP_AT: usize = 100_000;

impl Collector {
    pub fn new(
        sink: Arc<dyn IngestSink>,
        cfg: CollectorConfig,
        registry: &mut Registry,
    ) -> Arc<Collector> {
        let permits = (cfg.max_inflight_bytes / 1024).clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(Collector {
            sink,
            inflight: Arc::new(Semaphore::new(permits)),
            cfg,
            delta: tokio::sync::Mutex::new(DeltaState::default()),
            metrics: IngestMetrics::new(registry),
        })
    }

    pub fn config(&self) -> &CollectorConfig {
        &self.cfg
    }

    /// Reserves room for `bytes` of request being processed, or refuses retryably.
    pub(crate) fn admit(&self, bytes: usize) -> Result<OwnedSemaphorePermit, IngestError> {
        let want = (bytes / 1024).max(1) as u32;
        self.inflight
            .clone()
            .try_acquire_many_owned(want)
            .map_err(|_| IngestError::Overloaded {
                reason: format!(
                    "more than {} bytes of requests in flight",
                    self.cfg.max_inflight_bytes
                ),
                retry_after: Duration::from_secs(1),
            })
    }

    pub async fn export_metrics(
        &self,
        req: ExportMetricsServiceRequest,
    ) -> Result<Partial, IngestError> {
        if convert::metrics::has_delta(&req) {
            // Delta totals depend on earlier requests: convert, write and commit in order.
            let mut state = self.delta.lock().await;
            let c = convert::metrics::convert(&req, &state, self.cfg.start_times);
            let out = self.sink.write_metrics(c.batch).await?;
            state.commit(c.delta_updates);
            if state.len() > DELTA_SWEEP_AT {
                state.expire(DELTA_IDLE);
            }
            Ok(Partial::new(
                c.rejected + out.rejected,
                c.reasons,
                out.reasons,
            ))
        } else {
            let c = convert::metrics::convert(&req, &DeltaState::default(), self.cfg.start_times);
            let out = self.sink.write_metrics(c.batch).await?;
            Ok(Partial::new(
                c.rejected + out.rejected,
                c.reasons,
                out.reasons,
            ))
        }
    }

    pub async fn export_logs(&self, req: ExportLogsServiceRequest) -> Result<Partial, IngestError> {
        let c = convert::logs::convert(&req);
        let out = self.sink.write_logs(c.batch).await?;
        Ok(Partial::new(
            c.rejected + out.rejected,
            c.reasons,
            out.reasons,
        ))
    }

    pub async fn export_traces(
        &self,
        req: ExportTraceServiceRequest,
    ) -> Result<Partial, IngestError> {
        let c = convert::traces::convert(&req);
        let out = self.sink.write_traces(c.batch).await?;
        Ok(Partial::new(
            c.rejected + out.rejected,
            c.reasons,
            out.reasons,
        ))
    }

    fn count_request<E: otlp::Export>(&self, protocol: &'static str, bytes: usize) {
        let rl = RequestLabels {
            signal: E::SIGNAL,
            protocol,
        };
        self.metrics.requests.get_or_create(&rl).inc();
        self.metrics
            .request_bytes
            .get_or_create(&rl)
            .inc_by(bytes as u64);
    }

    pub(crate) fn count_ok<E: otlp::Export>(
        &self,
        protocol: &'static str,
        bytes: usize,
        p: &Partial,
    ) {
        self.count_request::<E>(protocol, bytes);
        if p.rejected > 0 {
            self.metrics
                .rejected_items
                .get_or_create(&SignalLabels { signal: E::SIGNAL })
                .inc_by(p.rejected);
        }
    }

    pub(crate) fn count_refused<E: otlp::Export>(
        &self,
        protocol: &'static str,
        bytes: usize,
        e: &IngestError,
    ) {
        self.count_request::<E>(protocol, bytes);
        self.metrics
            .refused
            .get_or_create(&RefusalLabels {
                signal: E::SIGNAL,
                protocol,
                reason: e.reason(),
            })
            .inc();
        match e {
            IngestError::Overloaded { .. } | IngestError::Storage(_) => {
                tracing::warn!(signal = %E::SIGNAL, protocol, error = %e, "export refused")
            }
            _ => tracing::debug!(signal = %E::SIGNAL, protocol, error = %e, "export refused"),
        }
    }
}
