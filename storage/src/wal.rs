//! The write-ahead log of one signal: checksummed records in numbered segment
//! files, group-committed fsyncs, replay with torn-tail truncation.
//!
//! Segment file `NNNNNNNNNNNNNNNNNNNN.wal` = 8-byte header `SBWAL\0\0\x01`, then frames
//! `len: u32 LE | crc32: u32 LE | kind: u8 | payload[len]`, the CRC (IEEE) over kind and payload.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{Result, StorageError};
use crate::telemetry::{Signal, StorageMetrics};

#[cfg(test)]
mod tests;

pub(crate) const HEADER: &[u8; 8] = b"SBWAL\0\0\x01";
const FRAME_HEADER: usize = 9;
/// A frame larger than this is treated as corruption during replay.
const MAX_FRAME: usize = 512 << 20;

/// When an appended record is acknowledged as durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Every write waits for an fsync that covers it; concurrent writers share one fsync
    /// (group commit). Survives power loss.
    Batch,
    /// Writes are acknowledged once in the OS page cache and fsynced every interval.
    /// Survives a process crash; a power loss may lose up to one interval.
    Interval(Duration),
}

#[derive(Clone, Debug)]
pub struct WalOptions {
    pub fsync: FsyncPolicy,
    pub segment_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            fsync: FsyncPolicy::Batch,
            segment_bytes: 64 << 20,
        }
    }
}

/// A position in the log: segment number and byte offset after a record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Lsn {
    pub(crate) seg: u64,
    pub(crate) off: u64,
}

struct Writer {
    seg: u64,
    file: Arc<File>,
    offset: u64,
    /// Set when an fsync failed: the file's state is unknown, so nothing more is acknowledged.
    failed: Option<String>,
}

/// What replay found, for the start-up report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub segments: usize,
    pub records: u64,
    pub bytes: u64,
    /// Segments whose tail was torn (partial frame or bad checksum at the end) and truncated.
    pub torn_tails: Vec<(PathBuf, u64)>,
    /// Records skipped because they were corrupt before the end of a segment, or undecodable.
    pub corrupt_records: u64,
}

pub(crate) struct Wal {
    dir: PathBuf,
    signal: Signal,
    opts: WalOptions,
    writer: Mutex<Writer>,
    durable: Mutex<Lsn>,
    sync_lock: tokio::sync::Mutex<()>,
    metrics: StorageMetrics,
}

fn segment_path(dir: &Path, seg: u64) -> PathBuf {
    dir.join(format!("{seg:020}.wal"))
}

fn wal_err<'a>(
    path: &'a Path,
    op: &'static str,
) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |source| StorageError::Wal {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Segment numbers present in `dir`, ascending.
fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut segs = Vec::new();
    for entry in fs::read_dir(dir).map_err(wal_err(dir, "list segments"))? {
        let entry = entry.map_err(wal_err(dir, "list segments"))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(num) = name.strip_suffix(".wal")
            && let Ok(n) = num.parse::<u64>()
        {
            segs.push(n);
        }
    }
    segs.sort_unstable();
    Ok(segs)
}

pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Wal {
    /// Opens the log in `dir`, replaying every record through `replay(segment, kind, payload)`
    /// in order. A replay callback error counts the record as corrupt and goes on.
    /// Segments numbered below `skip_before` are already contained in parts: they are
    /// deleted without replay.
    pub(crate) fn open(
        dir: &Path,
        signal: Signal,
        opts: WalOptions,
        metrics: StorageMetrics,
        skip_before: u64,
        mut replay: impl FnMut(u64, u8, &[u8]) -> Result<()>,
    ) -> Result<(Wal, ReplayReport)> {
        fs::create_dir_all(dir).map_err(wal_err(dir, "create directory"))?;
        let all = list_segments(dir)?;
        let mut segs = Vec::with_capacity(all.len());
        for seg in all {
            if seg < skip_before {
                let p = segment_path(dir, seg);
                fs::remove_file(&p).map_err(wal_err(&p, "remove flushed segment"))?;
            } else {
                segs.push(seg);
            }
        }
        let mut report = ReplayReport::default();
        let last = segs.last().copied();
        for &seg in &segs {
            let path = segment_path(dir, seg);
            let data = fs::read(&path).map_err(wal_err(&path, "read segment"))?;
            report.segments += 1;
            report.bytes += data.len() as u64;
            let (good_end, frames_ok) = scan_segment(&data, |kind, payload| {
                report.records += 1;
                if let Err(e) = replay(seg, kind, payload) {
                    tracing::error!(signal = %signal, segment = seg, error = %e, "undecodable wal record skipped");
                    report.corrupt_records += 1;
                }
            });
            if !frames_ok {
                if Some(seg) == last {
                    tracing::warn!(
                        signal = %signal, path = %path.display(), valid_bytes = good_end, file_bytes = data.len(),
                        "torn wal tail truncated"
                    );
                    truncate(&path, good_end as u64)?;
                    report.torn_tails.push((path.clone(), good_end as u64));
                } else {
                    tracing::error!(
                        signal = %signal, path = %path.display(), valid_bytes = good_end, file_bytes = data.len(),
                        "corrupt wal segment: records after the corruption are skipped"
                    );
                    report.corrupt_records += 1;
                }
            }
        }
        let sig = StorageMetrics::sig(signal);
        metrics
            .wal_replayed_records
            .get_or_create(&sig)
            .inc_by(report.records);
        metrics
            .wal_torn_tails
            .get_or_create(&sig)
            .inc_by(report.torn_tails.len() as u64);
        metrics
            .wal_corrupt_records
            .get_or_create(&sig)
            .inc_by(report.corrupt_records);

        let seg = last.map_or(1, |l| l + 1).max(skip_before);
        let file = create_segment(dir, seg)?;
        metrics
            .wal_segments
            .get_or_create(&sig)
            .set(segs.len() as i64 + 1);
        let wal = Wal {
            dir: dir.to_path_buf(),
            signal,
            opts,
            writer: Mutex::new(Writer {
                seg,
                file: Arc::new(file),
                offset: HEADER.len() as u64,
                failed: None,
            }),
            durable: Mutex::new(Lsn {
                seg,
                off: HEADER.len() as u64,
            }),
            sync_lock: tokio::sync::Mutex::new(()),
            metrics,
        };
        Ok((wal, report))
    }

    /// Appends the frames the closure writes for the current segment number; the closure
    /// runs under the writer lock, so it sees segment changes consistently.
    pub(crate) fn append_with(&self, build: impl FnOnce(u64, &mut FrameBuf)) -> Result<Lsn> {
        let mut w = self.writer.lock();
        if let Some(reason) = &w.failed {
            return Err(StorageError::Wal {
                path: self.dir.clone(),
                op: "append",
                source: std::io::Error::other(format!("log failed earlier: {reason}")),
            });
        }
        if w.offset >= self.opts.segment_bytes {
            self.roll_locked(&mut w)?;
        }
        let mut buf = FrameBuf::default();
        build(w.seg, &mut buf);
        if buf.bytes.is_empty() {
            return Ok(Lsn {
                seg: w.seg,
                off: w.offset,
            });
        }
        let path = segment_path(&self.dir, w.seg);
        if buf.bytes.len() > MAX_FRAME {
            return Err(wal_err(&path, "append")(std::io::Error::other(format!(
                "record of {} bytes is larger than the {MAX_FRAME} bytes a frame may hold",
                buf.bytes.len()
            ))));
        }
        if let Err(e) = (&*w.file).write_all(&buf.bytes) {
            // Cut off whatever part of the frames reached the file and write the next
            // record where this one started, so that later records stay readable.
            let offset = w.offset;
            let restored = w.file.set_len(offset).and_then(|()| {
                (&*w.file)
                    .seek(std::io::SeekFrom::Start(offset))
                    .map(|_| ())
            });
            if let Err(e2) = restored {
                w.failed = Some(format!("could not undo a failed append: {e2}"));
            }
            return Err(wal_err(&path, "append")(e));
        }
        w.offset += buf.bytes.len() as u64;
        let sig = StorageMetrics::sig(self.signal);
        self.metrics
            .wal_bytes
            .get_or_create(&sig)
            .inc_by(buf.bytes.len() as u64);
        self.metrics
            .wal_records
            .get_or_create(&sig)
            .inc_by(buf.frames);
        Ok(Lsn {
            seg: w.seg,
            off: w.offset,
        })
    }

    /// Waits until `lsn` is durable under the fsync policy.
    pub(crate) async fn sync(&self, lsn: Lsn) -> Result<()> {
        if matches!(self.opts.fsync, FsyncPolicy::Interval(_)) || *self.durable.lock() >= lsn {
            return Ok(());
        }
        let _leader = self.sync_lock.lock().await;
        if *self.durable.lock() >= lsn {
            return Ok(());
        }
        self.sync_now().await
    }

    /// Fsyncs everything written so far.
    pub(crate) async fn sync_now(&self) -> Result<()> {
        let (file, target) = {
            let w = self.writer.lock();
            if let Some(reason) = &w.failed {
                // After a failed fsync a retry may "succeed" without the data being on disk.
                return Err(StorageError::Wal {
                    path: self.dir.clone(),
                    op: "fsync",
                    source: std::io::Error::other(format!("log failed earlier: {reason}")),
                });
            }
            (
                w.file.clone(),
                Lsn {
                    seg: w.seg,
                    off: w.offset,
                },
            )
        };
        if *self.durable.lock() >= target {
            return Ok(());
        }
        let started = Instant::now();
        let res = tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r);
        self.metrics
            .wal_fsync_seconds
            .get_or_create(&StorageMetrics::sig(self.signal))
            .observe(started.elapsed().as_secs_f64());
        match res {
            Ok(()) => {
                let mut d = self.durable.lock();
                *d = (*d).max(target);
                Ok(())
            }
            Err(e) => {
                self.writer.lock().failed = Some(e.to_string());
                tracing::error!(signal = %self.signal, error = %e, "wal fsync failed; refusing further writes");
                Err(wal_err(&segment_path(&self.dir, target.seg), "fsync")(e))
            }
        }
    }

    /// Starts a new segment; every record appended before the call is in a segment numbered
    /// below the returned one.
    pub(crate) fn roll(&self) -> Result<u64> {
        let mut w = self.writer.lock();
        self.roll_locked(&mut w)?;
        Ok(w.seg)
    }

    fn roll_locked(&self, w: &mut Writer) -> Result<()> {
        if let Some(reason) = &w.failed {
            return Err(StorageError::Wal {
                path: self.dir.clone(),
                op: "roll",
                source: std::io::Error::other(format!("log failed earlier: {reason}")),
            });
        }
        let old = Lsn {
            seg: w.seg,
            off: w.offset,
        };
        if let Err(e) = w.file.sync_data() {
            w.failed = Some(e.to_string());
            return Err(wal_err(
                &segment_path(&self.dir, w.seg),
                "fsync before roll",
            )(e));
        }
        let next = w.seg + 1;
        let file = create_segment(&self.dir, next)?;
        w.seg = next;
        w.file = Arc::new(file);
        w.offset = HEADER.len() as u64;
        {
            let mut d = self.durable.lock();
            *d = (*d).max(old);
        }
        self.metrics
            .wal_segments
            .get_or_create(&StorageMetrics::sig(self.signal))
            .inc();
        Ok(())
    }

    /// Deletes every segment numbered below `seg` (their records are in parts now).
    pub(crate) fn remove_before(&self, seg: u64) -> Result<()> {
        let mut removed = 0;
        for s in list_segments(&self.dir)? {
            if s < seg {
                let p = segment_path(&self.dir, s);
                fs::remove_file(&p).map_err(wal_err(&p, "remove segment"))?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(&self.dir).map_err(wal_err(&self.dir, "fsync directory"))?;
            self.metrics
                .wal_segments
                .get_or_create(&StorageMetrics::sig(self.signal))
                .dec_by(removed);
        }
        Ok(())
    }

    /// Bytes of all segment files.
    pub(crate) fn disk_bytes(&self) -> u64 {
        list_segments(&self.dir)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| fs::metadata(segment_path(&self.dir, s)).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// Frames being assembled for one append.
#[derive(Default)]
pub(crate) struct FrameBuf {
    bytes: Vec<u8>,
    frames: u64,
}

impl FrameBuf {
    pub(crate) fn push(&mut self, kind: u8, payload: &[u8]) {
        let mut h = crc32fast::Hasher::new();
        h.update(&[kind]);
        h.update(payload);
        self.bytes
            .extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(&h.finalize().to_le_bytes());
        self.bytes.push(kind);
        self.bytes.extend_from_slice(payload);
        self.frames += 1;
    }
}

fn create_segment(dir: &Path, seg: u64) -> Result<File> {
    let path = segment_path(dir, seg);
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(wal_err(&path, "create segment"))?;
    f.write_all(HEADER)
        .map_err(wal_err(&path, "write header"))?;
    f.sync_all().map_err(wal_err(&path, "fsync new segment"))?;
    sync_dir(dir).map_err(wal_err(dir, "fsync directory"))?;
    Ok(f)
}

fn truncate(path: &Path, len: u64) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(wal_err(path, "open for truncation"))?;
    f.set_len(len)
        .map_err(wal_err(path, "truncate torn tail"))?;
    f.sync_all()
        .map_err(wal_err(path, "fsync after truncation"))
}

/// Walks the frames of one segment, calling `each` for every valid frame. Returns the
/// byte offset after the last valid frame and whether the segment was valid to its end.
pub(crate) fn scan_segment(data: &[u8], mut each: impl FnMut(u8, &[u8])) -> (usize, bool) {
    if data.len() < HEADER.len() || &data[..HEADER.len()] != HEADER {
        // A segment whose header never reached the disk holds nothing.
        return (0, data.is_empty());
    }
    let mut pos = HEADER.len();
    while pos < data.len() {
        let Some(hdr) = data.get(pos..pos + FRAME_HEADER) else {
            return (pos, false);
        };
        let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        let crc = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
        let kind = hdr[8];
        if len > MAX_FRAME {
            return (pos, false);
        }
        let start = pos + FRAME_HEADER;
        let Some(payload) = data.get(start..start + len) else {
            return (pos, false);
        };
        let mut h = crc32fast::Hasher::new();
        h.update(&[kind]);
        h.update(payload);
        if h.finalize() != crc {
            return (pos, false);
        }
        each(kind, payload);
        pos = start + len;
    }
    (pos, true)
}
