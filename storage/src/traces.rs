//! Traces: the in-memory head of spans with a trace-id index, its WAL record, and the
//! part format (spans sorted by trace id with a bloom filter, for lookups by id).

pub(crate) mod head;
pub(crate) mod part;
pub(crate) mod wal;
