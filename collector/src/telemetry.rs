//! The collector's own metrics: requests, bytes, rejected items, refused requests.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use signalbox_storage::Signal;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) signal: Signal,
    pub(crate) protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RefusalLabels {
    pub(crate) signal: Signal,
    pub(crate) protocol: &'static str,
    pub(crate) reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SignalLabels {
    pub(crate) signal: Signal,
}

#[derive(Clone, Default)]
pub(crate) struct IngestMetrics {
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) request_bytes: Family<RequestLabels, Counter>,
    pub(crate) refused: Family<RefusalLabels, Counter>,
    pub(crate) rejected_items: Family<SignalLabels, Counter>,
}

impl IngestMetrics {
    pub(crate) fn new(registry: &mut Registry) -> IngestMetrics {
        let m = IngestMetrics::default();
        registry.register(
            "ingest_requests",
            "Export requests received",
            m.requests.clone(),
        );
        registry.register(
            "ingest_request_bytes",
            "Bytes of export request bodies received (as sent, before decompression)",
            m.request_bytes.clone(),
        );
        registry.register(
            "ingest_refused_requests",
            "Export requests refused as a whole, by reason (retryable: overloaded, storage_error)",
            m.refused.clone(),
        );
        registry.register(
            "ingest_rejected_items",
            "Items rejected as invalid and reported to the client as a partial success",
            m.rejected_items.clone(),
        );
        m
    }
}
