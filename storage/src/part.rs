//! Immutable parts: a directory of files per signal and time window, described by a
//! `meta.json` written last. Part I/O goes through the `object_store` interface.
//!
//! Layout: `parts/<signal>/<id>/{<data files>…, meta.json}` where
//! `id = <window start ms, 13 digits>-<sequence, 12 digits>`.

mod merge;
mod parquet_io;
mod store;

pub(crate) use merge::{KWay, MergeOutput, MergeSource};
pub(crate) use parquet_io::{
    ParquetFile, Writer, any_row_in, column, decode_all, encode as encode_parquet, may_hold,
    optional_column, push_range, writer_props,
};
pub(crate) use store::{PartStore, Publish, now_ms};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StorageError};

pub(crate) const FORMAT_VERSION: u32 = 1;
pub(crate) const META_FILE: &str = "meta.json";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct FileMeta {
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) crc32: u32,
}

/// What `meta.json` says about a part.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct PartMeta {
    pub(crate) format: u32,
    pub(crate) signal: String,
    pub(crate) id: String,
    pub(crate) seq: u64,
    /// Compaction level: 0 for a flushed head, +1 per merge.
    pub(crate) level: u32,
    pub(crate) window_start_ms: i64,
    pub(crate) window_end_ms: i64,
    /// Earliest and latest item time in the part, milliseconds (inclusive).
    pub(crate) min_time_ms: i64,
    pub(crate) max_time_ms: i64,
    pub(crate) rows: u64,
    pub(crate) files: Vec<FileMeta>,
    /// Parts this one was merged from; they are deleted at start-up once every part of
    /// the merge's group is present.
    #[serde(default)]
    pub(crate) replaces: Vec<String>,
    /// The merge that wrote this part, when it wrote several.
    #[serde(default)]
    pub(crate) group: Option<Group>,
    /// Every WAL segment numbered below this is contained in parts.
    #[serde(default)]
    pub(crate) wal_boundary: u64,
    /// Rank among parts for "later wins" on equal timestamps (0: use `seq`).
    #[serde(default)]
    pub(crate) order: u64,
    pub(crate) created_ms: i64,
    /// Signal-specific summary (e.g. services and operations of a traces part).
    #[serde(default)]
    pub(crate) extra: serde_json::Value,
}

impl PartMeta {
    pub(crate) fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    pub(crate) fn file(&self, name: &str) -> Result<&FileMeta> {
        self.files
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| StorageError::part(&self.id, "open", format!("no file {name}")))
    }

    /// Sort key of parts, oldest data first.
    pub(crate) fn rank(&self) -> (u64, u64) {
        (
            if self.order == 0 {
                self.seq
            } else {
                self.order
            },
            self.seq,
        )
    }

    pub(crate) fn overlaps(&self, start_ms: i64, end_ms: i64) -> bool {
        self.min_time_ms <= end_ms && self.max_time_ms >= start_ms
    }
}

/// The parts written by one merge: they replace its inputs only all together.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Group {
    pub(crate) id: u64,
    pub(crate) size: u32,
}

/// `meta.json` holds the meta and a CRC of its canonical JSON, so a torn or edited file is detected.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaEnvelope {
    meta: PartMeta,
    crc32: u32,
}

pub(crate) fn encode_meta(meta: &PartMeta) -> Result<Vec<u8>> {
    let body =
        serde_json::to_vec(meta).map_err(|e| StorageError::part(&meta.id, "encode meta", e))?;
    let env = MetaEnvelope {
        meta: meta.clone(),
        crc32: crc32fast::hash(&body),
    };
    serde_json::to_vec_pretty(&env).map_err(|e| StorageError::part(&meta.id, "encode meta", e))
}

pub(crate) fn decode_meta(id: &str, data: &[u8]) -> Result<PartMeta> {
    let env: MetaEnvelope =
        serde_json::from_slice(data).map_err(|e| StorageError::part(id, "decode meta", e))?;
    let body =
        serde_json::to_vec(&env.meta).map_err(|e| StorageError::part(id, "decode meta", e))?;
    if crc32fast::hash(&body) != env.crc32 {
        return Err(StorageError::part(id, "decode meta", "checksum mismatch"));
    }
    if env.meta.format != FORMAT_VERSION {
        return Err(StorageError::part(
            id,
            "decode meta",
            format!("unsupported format version {}", env.meta.format),
        ));
    }
    Ok(env.meta)
}

/// A part ready to be published: its encoded files and what goes into its meta.
pub(crate) struct PartData {
    pub(crate) window_start_ms: i64,
    pub(crate) window_end_ms: i64,
    pub(crate) min_time_ms: i64,
    pub(crate) max_time_ms: i64,
    pub(crate) rows: u64,
    pub(crate) files: Vec<(String, Bytes)>,
    pub(crate) extra: serde_json::Value,
}

/// Start of the window of length `window_ms` that contains `t_ms`.
pub(crate) fn window_start(t_ms: i64, window_ms: i64) -> i64 {
    t_ms.div_euclid(window_ms) * window_ms
}

pub(crate) fn part_id(window_start_ms: i64, seq: u64) -> String {
    format!("{:013}-{seq:012}", window_start_ms.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> PartMeta {
        PartMeta {
            format: FORMAT_VERSION,
            signal: "metrics".into(),
            id: part_id(7200000, 3),
            seq: 3,
            level: 0,
            window_start_ms: 7200000,
            window_end_ms: 14400000,
            min_time_ms: 7200001,
            max_time_ms: 7300000,
            rows: 10,
            files: vec![FileMeta {
                name: "samples.parquet".into(),
                size: 100,
                crc32: 42,
            }],
            replaces: vec![],
            group: None,
            wal_boundary: 5,
            order: 0,
            created_ms: 1,
            extra: serde_json::json!({"k": 1}),
        }
    }

    #[test]
    fn meta_roundtrip_and_tamper_detection() {
        let m = meta();
        let enc = encode_meta(&m).unwrap();
        assert_eq!(decode_meta(&m.id, &enc).unwrap(), m);
        let tampered = String::from_utf8(enc.clone())
            .unwrap()
            .replace("\"rows\": 10", "\"rows\": 11");
        assert!(decode_meta(&m.id, tampered.as_bytes()).is_err());
        assert!(decode_meta(&m.id, &enc[..enc.len() / 2]).is_err());
    }

    #[test]
    fn windows_align_for_negative_and_positive_times() {
        assert_eq!(window_start(7_199_999, 3_600_000), 3_600_000);
        assert_eq!(window_start(-1, 3_600_000), -3_600_000);
    }
}
