//! Where parts live: an `object_store` (the local filesystem with fsync, or memory in
//! tests), plus a local staging directory for files built by libraries that want a path.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{
    FORMAT_VERSION, FileMeta, Group, META_FILE, MergeSource, PartData, PartMeta, decode_meta,
    encode_meta, part_id,
};
use crate::error::{Result, StorageError};
use crate::telemetry::Signal;

pub(crate) struct PartStore {
    store: Arc<dyn ObjectStore>,
    /// Root directory when the store is the local filesystem (full-text indexes are opened from it).
    local_root: Option<PathBuf>,
    staging: PathBuf,
    next_seq: AtomicU64,
}

fn os_err<'a>(
    path: &'a ObjPath,
    op: &'static str,
) -> impl FnOnce(object_store::Error) -> StorageError + 'a {
    move |source| StorageError::ObjectStore {
        path: path.to_string(),
        op,
        source,
    }
}

impl PartStore {
    /// Parts under `<data_dir>/parts`, staging under `<data_dir>/staging`.
    pub(crate) fn local(data_dir: &Path) -> Result<PartStore> {
        let dd = |op| {
            move |source| StorageError::DataDir {
                path: data_dir.to_path_buf(),
                op,
                source,
            }
        };
        std::fs::create_dir_all(data_dir.join("parts")).map_err(dd("create parts directory"))?;
        let staging = data_dir.join("staging");
        // Anything left in staging belongs to a build that never finished.
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).map_err(dd("create staging directory"))?;
        let store = LocalFileSystem::new_with_prefix(data_dir)
            .map_err(|e| StorageError::ObjectStore {
                path: data_dir.display().to_string(),
                op: "open",
                source: e,
            })?
            .with_fsync(true)
            .with_automatic_cleanup(true);
        Ok(PartStore {
            store: Arc::new(store),
            local_root: Some(data_dir.to_path_buf()),
            staging,
            next_seq: AtomicU64::new(1),
        })
    }

    /// Parts in memory; `staging` must be a writable scratch directory.
    #[cfg(test)]
    pub(crate) fn in_memory(staging: PathBuf) -> PartStore {
        PartStore {
            store: Arc::new(object_store::memory::InMemory::new()),
            local_root: None,
            staging,
            next_seq: AtomicU64::new(1),
        }
    }

    pub(crate) fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    pub(crate) fn staging_dir(&self) -> &Path {
        &self.staging
    }

    pub(crate) fn path(signal: Signal, id: &str, file: &str) -> ObjPath {
        ObjPath::from(format!("parts/{}/{id}/{file}", signal.as_str()))
    }

    /// Local path of a part file, when parts are on the local filesystem.
    pub(crate) fn local_path(&self, signal: Signal, id: &str, file: &str) -> Option<PathBuf> {
        self.local_root
            .as_ref()
            .map(|r| r.join("parts").join(signal.as_str()).join(id).join(file))
    }

    pub(crate) fn note_seq(&self, seq: u64) {
        self.next_seq.fetch_max(seq + 1, Ordering::Relaxed);
    }

    /// A fresh id for a merge group.
    pub(crate) fn next_group_id(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Writes the files of a part, then its meta; the part exists once the meta is durable.
    pub(crate) async fn publish(
        &self,
        signal: Signal,
        data: PartData,
        opts: Publish,
    ) -> Result<PartMeta> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let id = part_id(data.window_start_ms, seq);
        let mut files = Vec::with_capacity(data.files.len());
        for (name, bytes) in data.files {
            let path = Self::path(signal, &id, &name);
            files.push(FileMeta {
                name,
                size: bytes.len() as u64,
                crc32: crc32fast::hash(&bytes),
            });
            self.store
                .put(&path, PutPayload::from_bytes(bytes))
                .await
                .map_err(os_err(&path, "write part file"))?;
        }
        let meta = PartMeta {
            format: FORMAT_VERSION,
            signal: signal.as_str().to_string(),
            id: id.clone(),
            seq,
            level: opts.level,
            window_start_ms: data.window_start_ms,
            window_end_ms: data.window_end_ms,
            min_time_ms: data.min_time_ms,
            max_time_ms: data.max_time_ms,
            rows: data.rows,
            files,
            replaces: opts.replaces,
            group: opts.group,
            wal_boundary: opts.wal_boundary,
            order: opts.order.unwrap_or(seq),
            created_ms: now_ms(),
            extra: data.extra,
        };
        let path = Self::path(signal, &id, META_FILE);
        self.store
            .put(&path, PutPayload::from(encode_meta(&meta)?))
            .await
            .map_err(os_err(&path, "write part meta"))?;
        Ok(meta)
    }

    /// Where a merge reads a part file: the file itself on the local disk, or its bytes.
    pub(crate) async fn merge_source(
        &self,
        signal: Signal,
        meta: &PartMeta,
        file: &str,
    ) -> Result<MergeSource> {
        Ok(match self.local_path(signal, &meta.id, file) {
            Some(path) => MergeSource::Path(path),
            None => MergeSource::Bytes(self.get(signal, meta, file).await?),
        })
    }

    pub(crate) async fn get(&self, signal: Signal, meta: &PartMeta, file: &str) -> Result<Bytes> {
        let path = Self::path(signal, &meta.id, file);
        let res = self
            .store
            .get(&path)
            .await
            .map_err(os_err(&path, "read part file"))?;
        res.bytes().await.map_err(os_err(&path, "read part file"))
    }

    /// Lists the complete parts of a signal. Incomplete parts (no meta: a crash during a
    /// flush or merge) are deleted; parts replaced by a merge that completed are deleted;
    /// parts with an unreadable meta are set aside and reported.
    pub(crate) async fn list(&self, signal: Signal) -> Result<(Vec<PartMeta>, Vec<String>)> {
        let prefix = ObjPath::from(format!("parts/{}", signal.as_str()));
        let listing = self
            .store
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(os_err(&prefix, "list parts"))?;
        let mut metas = Vec::new();
        let mut problems = Vec::new();
        for dir in listing.common_prefixes {
            let Some(id) = dir.filename().map(str::to_owned) else {
                continue;
            };
            let meta_path = Self::path(signal, &id, META_FILE);
            match self.store.get(&meta_path).await {
                Ok(r) => {
                    let data = r
                        .bytes()
                        .await
                        .map_err(os_err(&meta_path, "read part meta"))?;
                    match decode_meta(&id, &data) {
                        Ok(m) => metas.push(m),
                        Err(e) => {
                            tracing::error!(signal = %signal, part = %id, error = %e, "part set aside: unreadable meta");
                            problems.push(id.clone());
                            self.set_aside(signal, &id).await;
                        }
                    }
                }
                Err(object_store::Error::NotFound { .. }) => {
                    if let Some(seq) = id.rsplit('-').next().and_then(|s| s.parse::<u64>().ok()) {
                        self.note_seq(seq);
                    }
                    let aside = Self::path(signal, &id, "meta.json.corrupt");
                    if self.store.head(&aside).await.is_ok() {
                        // Set aside earlier: kept for inspection, not loaded.
                        problems.push(id.clone());
                        continue;
                    }
                    tracing::warn!(signal = %signal, part = %id, "deleting incomplete part");
                    self.delete_prefix(signal, &id).await?;
                }
                Err(e) => return Err(os_err(&meta_path, "read part meta")(e)),
            }
        }
        for m in &metas {
            self.note_seq(m.seq);
            if let Some(g) = &m.group {
                self.note_seq(g.id);
            }
        }
        // A merge is unfinished while some of the parts it wrote are missing and some of its
        // inputs are still there; its outputs are then removed and the inputs kept. Once
        // its inputs are gone it finished (later deletions of outputs by retention or
        // another merge do not make it unfinished again).
        let mut group_counts: std::collections::HashMap<u64, u32> =
            std::collections::HashMap::new();
        for g in metas.iter().filter_map(|m| m.group.as_ref()) {
            *group_counts.entry(g.id).or_default() += 1;
        }
        let present: std::collections::HashSet<&str> =
            metas.iter().map(|m| m.id.as_str()).collect();
        let unfinished: std::collections::HashSet<u64> = metas
            .iter()
            .filter_map(|m| {
                let g = m.group.as_ref()?;
                let missing_outputs = group_counts.get(&g.id).copied().unwrap_or(0) < g.size;
                let inputs_left = m.replaces.iter().any(|r| present.contains(r.as_str()));
                (missing_outputs && inputs_left).then_some(g.id)
            })
            .collect();
        let complete = |m: &PartMeta| m.group.as_ref().is_none_or(|g| !unfinished.contains(&g.id));
        let replaced: std::collections::HashSet<String> = metas
            .iter()
            .filter(|m| complete(m))
            .flat_map(|m| m.replaces.iter().cloned())
            .collect();
        let mut kept = Vec::new();
        for m in metas {
            if !complete(&m) {
                tracing::warn!(signal = %signal, part = %m.id, "deleting part of an unfinished merge");
                self.delete(signal, &m).await?;
            } else if replaced.contains(&m.id) {
                tracing::info!(signal = %signal, part = %m.id, "deleting part replaced by a finished merge");
                self.delete(signal, &m).await?;
            } else {
                kept.push(m);
            }
        }
        kept.sort_by_key(PartMeta::rank);
        Ok((kept, problems))
    }

    /// Deletes a part: meta first, so a crash half-way leaves an incomplete part that the
    /// next start-up removes.
    pub(crate) async fn delete(&self, signal: Signal, meta: &PartMeta) -> Result<()> {
        let mp = Self::path(signal, &meta.id, META_FILE);
        match self.store.delete(&mp).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(os_err(&mp, "delete part meta")(e)),
        }
        self.delete_prefix(signal, &meta.id).await
    }

    async fn delete_prefix(&self, signal: Signal, id: &str) -> Result<()> {
        let prefix = ObjPath::from(format!("parts/{}/{id}", signal.as_str()));
        let objects: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(os_err(&prefix, "list part files"))?;
        for o in objects {
            match self.store.delete(&o.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(os_err(&o.location, "delete part file")(e)),
            }
        }
        if let Some(local) = self.local_path(signal, id, "") {
            let _ = std::fs::remove_dir_all(local);
        }
        Ok(())
    }

    /// Renames the meta so the part is skipped from now on, keeping its data for inspection.
    pub(crate) async fn set_aside(&self, signal: Signal, id: &str) {
        let from = Self::path(signal, id, META_FILE);
        let to = Self::path(signal, id, "meta.json.corrupt");
        if let Err(e) = self.store.rename(&from, &to).await {
            tracing::error!(signal = %signal, part = %id, error = %e, "could not set corrupt part aside");
        }
    }

    /// Checks every file of a part against the sizes and checksums in its meta.
    pub(crate) async fn verify(&self, signal: Signal, meta: &PartMeta) -> Result<()> {
        for f in &meta.files {
            let data = self.get(signal, meta, &f.name).await?;
            if data.len() as u64 != f.size {
                return Err(StorageError::part(
                    &meta.id,
                    "verify",
                    format!("{}: size {} but meta says {}", f.name, data.len(), f.size),
                ));
            }
            if crc32fast::hash(&data) != f.crc32 {
                return Err(StorageError::part(
                    &meta.id,
                    "verify",
                    format!("{}: checksum mismatch", f.name),
                ));
            }
        }
        Ok(())
    }
}

/// How a part is published: its level, what it replaces, its merge group, its WAL boundary.
#[derive(Default)]
pub(crate) struct Publish {
    pub(crate) level: u32,
    pub(crate) replaces: Vec<String>,
    pub(crate) group: Option<Group>,
    pub(crate) wal_boundary: u64,
    /// Where the part's data stands among parts when equal timestamps conflict; a merge
    /// takes the highest of its inputs. `None`: the part's sequence number.
    pub(crate) order: Option<u64>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(t: i64) -> PartData {
        PartData {
            window_start_ms: t,
            window_end_ms: t + 1,
            min_time_ms: t,
            max_time_ms: t,
            rows: 1,
            files: vec![("a.bin".into(), Bytes::from_static(b"hello"))],
            extra: serde_json::Value::Null,
        }
    }

    #[tokio::test]
    async fn merges_replace_inputs_only_when_complete() {
        let dir = tempfile::tempdir().unwrap();
        let store = PartStore::local(dir.path()).unwrap();
        let input = store
            .publish(Signal::Logs, data(1), Publish::default())
            .await
            .unwrap();
        // A merge that wrote one of its two outputs before a crash.
        let half = store
            .publish(
                Signal::Logs,
                data(1),
                Publish {
                    level: 1,
                    replaces: vec![input.id.clone()],
                    group: Some(Group { id: 99, size: 2 }),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let (kept, _) = store.list(Signal::Logs).await.unwrap();
        assert_eq!(
            kept.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
            vec![input.id.clone()]
        );
        assert!(!dir.path().join("parts/logs").join(&half.id).exists());
        // A finished merge replaces its input.
        let done = store
            .publish(
                Signal::Logs,
                data(1),
                Publish {
                    level: 1,
                    replaces: vec![input.id.clone()],
                    group: Some(Group { id: 100, size: 1 }),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let (kept, _) = store.list(Signal::Logs).await.unwrap();
        assert_eq!(
            kept.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
            vec![done.id.clone()]
        );
    }

    /// Regression: a finished merge whose output was later deleted (by retention) must not
    /// count as unfinished at the next start-up, which would delete its other outputs.
    #[tokio::test]
    async fn finished_merge_stays_finished_after_an_output_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = PartStore::local(dir.path()).unwrap();
        let input = store
            .publish(Signal::Logs, data(1), Publish::default())
            .await
            .unwrap();
        let opts = || Publish {
            level: 1,
            replaces: vec![input.id.clone()],
            group: Some(Group { id: 7, size: 2 }),
            ..Default::default()
        };
        let a = store.publish(Signal::Logs, data(1), opts()).await.unwrap();
        let b = store.publish(Signal::Logs, data(2), opts()).await.unwrap();
        store.delete(Signal::Logs, &input).await.unwrap();
        store.delete(Signal::Logs, &a).await.unwrap();
        let (kept, _) = store.list(Signal::Logs).await.unwrap();
        assert_eq!(
            kept.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
            vec![b.id.clone()]
        );
    }

    #[tokio::test]
    async fn parts_without_meta_are_removed_and_bad_meta_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = PartStore::local(dir.path()).unwrap();
        let good = store
            .publish(Signal::Traces, data(5), Publish::default())
            .await
            .unwrap();
        let incomplete = dir.path().join("parts/traces/0000000000001-000000000777");
        std::fs::create_dir_all(&incomplete).unwrap();
        std::fs::write(incomplete.join("spans.parquet"), b"partial").unwrap();
        let bad = store
            .publish(Signal::Traces, data(6), Publish::default())
            .await
            .unwrap();
        let meta_path = dir
            .path()
            .join("parts/traces")
            .join(&bad.id)
            .join(META_FILE);
        let mut m = std::fs::read(&meta_path).unwrap();
        m.truncate(m.len() / 2);
        std::fs::write(&meta_path, m).unwrap();
        let (kept, aside) = store.list(Signal::Traces).await.unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].id, good.id);
        assert_eq!(aside, vec![bad.id.clone()]);
        assert!(!incomplete.exists());
        assert!(
            dir.path()
                .join("parts/traces")
                .join(&bad.id)
                .join("meta.json.corrupt")
                .exists()
        );
        store.verify(Signal::Traces, &kept[0]).await.unwrap();
        let f = dir.path().join("parts/traces").join(&good.id).join("a.bin");
        std::fs::write(&f, b"hellO").unwrap();
        assert!(store.verify(Signal::Traces, &kept[0]).await.is_err());
    }
}
