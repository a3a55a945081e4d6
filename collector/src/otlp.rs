//! The OTLP receiver: export requests of the three signals over gRPC and HTTP
//! (protobuf or JSON, gzip), converted and handed to the storage sink.

pub(crate) mod convert;
pub(crate) mod grpc;
pub(crate) mod http;
mod json;

#[cfg(test)]
mod tests;

use std::future::Future;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use signalbox_storage::Signal;

use crate::Collector;
use crate::error::IngestError;

/// What was refused inside an accepted request, for `partial_success`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Partial {
    pub rejected: u64,
    pub message: String,
}

impl Partial {
    pub(crate) fn new(rejected: u64, mut reasons: Vec<String>, more: Vec<String>) -> Partial {
        for r in more {
            if !reasons.contains(&r) {
                reasons.push(r);
            }
        }
        Partial {
            rejected,
            message: reasons.join("; "),
        }
    }
}

/// One OTLP signal: its messages, its gRPC service name, and how it is exported.
pub(crate) trait Export: Send + Sync + 'static {
    const SIGNAL: Signal;
    const GRPC_SERVICE: &'static str;
    type Request: prost::Message + Default + serde::de::DeserializeOwned + Send + 'static;
    type Response: prost::Message + serde::Serialize + Default + Send + 'static;

    fn export(
        c: &Collector,
        req: Self::Request,
    ) -> impl Future<Output = Result<Partial, IngestError>> + Send;
    fn response(p: Partial) -> Self::Response;
}

pub(crate) struct Traces;
pub(crate) struct Metrics;
pub(crate) struct Logs;

impl Export for Traces {
    const SIGNAL: Signal = Signal::Traces;
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    type Request = ExportTraceServiceRequest;
    type Response = ExportTraceServiceResponse;

    fn export(
        c: &Collector,
        req: Self::Request,
    ) -> impl Future<Output = Result<Partial, IngestError>> + Send {
        c.export_traces(req)
    }

    fn response(p: Partial) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: (p.rejected > 0 || !p.message.is_empty()).then_some(
                ExportTracePartialSuccess {
                    rejected_spans: p.rejected as i64,
                    error_message: p.message,
                },
            ),
        }
    }
}

impl Export for Metrics {
    const SIGNAL: Signal = Signal::Metrics;
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    type Request = ExportMetricsServiceRequest;
    type Response = ExportMetricsServiceResponse;

    fn export(
        c: &Collector,
        req: Self::Request,
    ) -> impl Future<Output = Result<Partial, IngestError>> + Send {
        c.export_metrics(req)
    }

    fn response(p: Partial) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: (p.rejected > 0 || !p.message.is_empty()).then_some(
                ExportMetricsPartialSuccess {
                    rejected_data_points: p.rejected as i64,
                    error_message: p.message,
                },
            ),
        }
    }
}

impl Export for Logs {
    const SIGNAL: Signal = Signal::Logs;
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    type Request = ExportLogsServiceRequest;
    type Response = ExportLogsServiceResponse;

    fn export(
        c: &Collector,
        req: Self::Request,
    ) -> impl Future<Output = Result<Partial, IngestError>> + Send {
        c.export_logs(req)
    }

    fn response(p: Partial) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: (p.rejected > 0 || !p.message.is_empty()).then_some(
                ExportLogsPartialSuccess {
                    rejected_log_records: p.rejected as i64,
                    error_message: p.message,
                },
            ),
        }
    }
}

/// Decodes a protobuf request body.
pub(crate) fn decode_protobuf<E: Export>(body: &[u8]) -> Result<E::Request, IngestError> {
    <E::Request as prost::Message>::decode(body).map_err(|e| IngestError::Decode {
        what: E::SIGNAL.as_str(),
        reason: e.to_string(),
    })
}

/// Decodes an OTLP/JSON request body.
pub(crate) fn decode_json<E: Export>(body: &[u8]) -> Result<E::Request, IngestError> {
    json::decode::<E::Request>(body).map_err(|reason| IngestError::Decode {
        what: E::SIGNAL.as_str(),
        reason,
    })
}
