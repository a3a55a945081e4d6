//! PromQL: queries are parsed by the `promql-parser` crate and evaluated here over the
//! storage's `MetricsReader`, with Prometheus semantics (5m lookback, staleness markers,
//! `offset`, `@`, subqueries, vector matching, aggregations, functions).
//!
//! Evaluation first fetches, for every selector, the samples of the whole time range it
//! can touch, then evaluates the expression step by step (an instant query is a range
//! query with one step).

pub(crate) mod aggregate;
pub(crate) mod binary;
mod durations;
mod error;
pub(crate) mod escapes;
mod eval;
mod extended;
mod fetch;
pub(crate) mod functions;
mod hist_functions;
pub mod histogram;
pub(crate) mod info;
pub mod notation;
mod position;
mod quantiles;
mod starts;
mod trim;
pub(crate) mod types;

pub use error::PromqlError;
pub use eval::{Engine, EngineOptions, check, selector_matchers};
pub use types::{QueryResult, QueryValue, Value};

pub(crate) use fetch::storage_matchers;
