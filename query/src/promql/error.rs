//! Query errors with the Prometheus error type each maps to.

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum PromqlError {
    /// The query does not parse or is not valid (`bad_data`).
    #[error("{0}")]
    Parse(String),
    /// Evaluation failed (`execution`).
    #[error("{0}")]
    Execution(String),
    /// A limit was hit (`execution` in Prometheus too).
    #[error("{0}")]
    Limit(String),
    /// The query ran longer than allowed (`timeout`).
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// Whoever asked went away (the client disconnected or its own timeout passed)
    /// while the query ran (`canceled`).
    #[error("query was canceled in {0}")]
    Canceled(&'static str),
    /// Reading storage failed (`internal`).
    #[error("{0}")]
    Storage(String),
}

impl PromqlError {
    /// The `errorType` of the Prometheus HTTP API.
    pub fn error_type(&self) -> &'static str {
        match self {
            PromqlError::Parse(_) => "bad_data",
            PromqlError::Execution(_) | PromqlError::Limit(_) => "execution",
            PromqlError::Timeout(_) => "timeout",
            PromqlError::Canceled(_) => "canceled",
            PromqlError::Storage(_) => "internal",
        }
    }
}

pub(crate) fn exec(msg: impl Into<String>) -> PromqlError {
    PromqlError::Execution(msg.into())
}
