//! Errors of the storage crate, each named after the operation that failed.

use std::path::PathBuf;
use std::time::Duration;

/// What the caller should do about an error: the HTTP/gRPC layers map this in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input was wrong; retrying the same input will fail again.
    InvalidInput,
    /// The server is over a bound; the same request can succeed later.
    Overloaded,
    /// Something failed inside the server (disk, corrupt file); may succeed later.
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("write-ahead log {path}: {op}: {source}")]
    Wal {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("write-ahead log is closed")]
    WalClosed,
    #[error("head of {signal} is full ({used} of {limit} bytes); retry after {retry_after:?}")]
    HeadFull {
        signal: &'static str,
        used: u64,
        limit: u64,
        retry_after: Duration,
    },
    #[error("active series limit of {limit} reached; retry after {retry_after:?}")]
    SeriesLimit { limit: usize, retry_after: Duration },
    #[error("part {part}: {op}: {reason}")]
    Part {
        part: String,
        op: &'static str,
        reason: String,
    },
    #[error("data directory {path}: {op}: {source}")]
    DataDir {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("object store {path}: {op}: {source}")]
    ObjectStore {
        path: String,
        op: &'static str,
        #[source]
        source: object_store::Error,
    },
    #[error("full-text index of part {part}: {op}: {source}")]
    FullText {
        part: String,
        op: &'static str,
        #[source]
        source: tantivy::TantivyError,
    },
    #[error("invalid matcher {name}=~{pattern:?}: {reason}")]
    InvalidMatcher {
        name: String,
        pattern: String,
        reason: String,
    },
    #[error("decode {what}: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error("storage is shutting down")]
    ShuttingDown,
}

impl StorageError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StorageError::HeadFull { .. } | StorageError::SeriesLimit { .. } => {
                ErrorKind::Overloaded
            }
            StorageError::InvalidMatcher { .. } => ErrorKind::InvalidInput,
            StorageError::Wal { .. }
            | StorageError::WalClosed
            | StorageError::ShuttingDown
            | StorageError::Part { .. }
            | StorageError::DataDir { .. }
            | StorageError::ObjectStore { .. }
            | StorageError::FullText { .. }
            | StorageError::Decode { .. } => ErrorKind::Internal,
        }
    }

    /// How long a client should wait before retrying, when the error is retryable.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            StorageError::HeadFull { retry_after, .. }
            | StorageError::SeriesLimit { retry_after, .. } => Some(*retry_after),
            StorageError::Wal { .. } | StorageError::WalClosed | StorageError::ShuttingDown => {
                Some(Duration::from_secs(5))
            }
            _ => None,
        }
    }

    pub(crate) fn part(part: impl Into<String>, op: &'static str, reason: impl ToString) -> Self {
        StorageError::Part {
            part: part.into(),
            op,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn decode(what: &'static str, reason: impl ToString) -> Self {
        StorageError::Decode {
            what,
            reason: reason.to_string(),
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
