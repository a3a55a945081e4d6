//! Logs: the in-memory head of streams and records, its WAL record, and the part
//! format (Parquet columns plus a tantivy full-text index over lines and attributes).

pub(crate) mod fts;
pub(crate) mod head;
pub(crate) mod merge;
pub(crate) mod part;
pub(crate) mod wal;
