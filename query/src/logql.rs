//! LogQL over the storage's `LogsReader`: log queries (stream selector + pipeline) return
//! streams of lines, metric queries (range aggregations over log lines, vector
//! aggregations, binary operations) return series. Parsing is the `logql-parser` crate.
//!
//! Each log entry is seen with its stream labels plus, as structured metadata, its
//! severity (`level`, `severity_text`), its trace context (`trace_id`, `span_id`) and its
//! attributes (names with `.` → `_`). Stream selectors match stream labels only; label
//! filters and parsers see all of them.

mod eval;
mod metric;
mod pipeline;
mod template;

#[cfg(test)]
mod tests;

pub use eval::{IndexStats, LogqlEngine, LogqlError, LogqlResult, ScanStats, StreamResult};
pub(crate) use eval::{Span, Tail};

/// Checks that `q` is a LogQL metric query, what an alerting or recording rule needs.
pub(crate) fn check(q: &str) -> Result<(), String> {
    match eval::parse(q).map_err(|e| e.to_string())? {
        logql::Expr::Metric(_) => Ok(()),
        _ => Err("a rule needs a metric query (log queries return lines)".into()),
    }
}
