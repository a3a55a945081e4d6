//! Why an export request was refused, and how each protocol says so: one mapping to HTTP
//! status codes and one to gRPC status codes.

use std::time::Duration;

use signalbox_storage::{ErrorKind, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot decode {what} request: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error("request body of {size} bytes is over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("unsupported content type {0:?}: use application/x-protobuf or application/json")]
    UnsupportedMediaType(String),
    #[error("unsupported content encoding {0:?}: use gzip or none")]
    UnsupportedEncoding(String),
    #[error("server is busy: {reason}; retry after {retry_after:?}")]
    Overloaded {
        reason: String,
        retry_after: Duration,
    },
    #[error("storage failed: {0}")]
    Storage(StorageError),
}

impl From<StorageError> for IngestError {
    fn from(e: StorageError) -> Self {
        match e.kind() {
            ErrorKind::Overloaded => IngestError::Overloaded {
                retry_after: e.retry_after().unwrap_or(Duration::from_secs(5)),
                reason: e.to_string(),
            },
            _ => IngestError::Storage(e),
        }
    }
}

impl IngestError {
    /// A short reason for the server's own metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::Decode { .. } => "decode_error",
            IngestError::TooLarge { .. } => "too_large",
            IngestError::UnsupportedMediaType(_) => "unsupported_media_type",
            IngestError::UnsupportedEncoding(_) => "unsupported_encoding",
            IngestError::Overloaded { .. } => "overloaded",
            IngestError::Storage(_) => "storage_error",
        }
    }

    /// How long the client should wait before retrying; `None` when retrying will not help.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            IngestError::Overloaded { retry_after, .. } => Some(*retry_after),
            IngestError::Storage(e) => Some(e.retry_after().unwrap_or(Duration::from_secs(5))),
            _ => None,
        }
    }

    pub fn http_status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            IngestError::Decode { .. } => S::BAD_REQUEST,
            IngestError::TooLarge { .. } => S::PAYLOAD_TOO_LARGE,
            IngestError::UnsupportedMediaType(_) | IngestError::UnsupportedEncoding(_) => {
                S::UNSUPPORTED_MEDIA_TYPE
            }
            IngestError::Overloaded { .. } => S::TOO_MANY_REQUESTS,
            IngestError::Storage(_) => S::SERVICE_UNAVAILABLE,
        }
    }

    pub fn grpc_code(&self) -> tonic::Code {
        use tonic::Code as C;
        match self {
            IngestError::Decode { .. } => C::InvalidArgument,
            IngestError::TooLarge { .. } => C::ResourceExhausted,
            IngestError::UnsupportedMediaType(_) | IngestError::UnsupportedEncoding(_) => {
                C::InvalidArgument
            }
            // OTLP clients retry UNAVAILABLE, and RESOURCE_EXHAUSTED only with RetryInfo.
            IngestError::Overloaded { .. } | IngestError::Storage(_) => C::Unavailable,
        }
    }
}
