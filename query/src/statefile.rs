//! Small state files written atomically with a checksummed header: line 1 is
//! `<magic> <crc32 of the rest, 8 hex digits>`, the rest is the body. Writers go
//! through a temporary file, fsync, rename and a directory fsync, so a crash leaves the
//! old or the new file. A reader that finds a bad header or checksum sets the file
//! aside as `<name>.corrupt` instead of trusting it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Writes `body` under `magic` atomically.
pub(crate) fn write(path: &Path, magic: &str, body: &[u8]) -> std::io::Result<()> {
    let header = format!("{magic} {:08x}\n", crc32fast::hash(body));
    write_parts(path, &[header.as_bytes(), body])
}

/// Writes `bytes` as they are, atomically (temporary file, fsync, rename, directory
/// fsync): a crash leaves the old file or the new one.
pub(crate) fn write_plain(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_parts(path, &[bytes])
}

fn write_parts(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = sibling(path, ".tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        for p in parts {
            f.write_all(p)?;
        }
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

fn check<'a>(bytes: &'a [u8], magic: &str) -> Result<&'a [u8], String> {
    let nl = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("no header line")?;
    let header = std::str::from_utf8(&bytes[..nl]).map_err(|_| "header is not text")?;
    let crc = header
        .strip_prefix(magic)
        .map(str::trim)
        .ok_or_else(|| format!("unknown header {header:?}"))?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| format!("bad checksum field {crc:?}"))?;
    let body = &bytes[nl + 1..];
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(body)
}

/// Reads a file written by `write`; `parse` may reject the body too (it is then set
/// aside like a bad checksum).
pub(crate) fn read<T>(
    path: &Path,
    magic: &str,
    parse: impl FnOnce(&[u8]) -> Result<T, String>,
) -> std::io::Result<Result<Option<T>, (String, PathBuf)>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(None)),
        Err(e) => return Err(e),
    };
    match check(&bytes, magic).and_then(parse) {
        Ok(v) => Ok(Ok(Some(v))),
        Err(reason) => Ok(Err((reason, set_aside(path)?))),
    }
}

/// Moves a file that cannot be trusted to `<name>.corrupt` (or `<name>.corrupt.N`, so an
/// earlier one is never overwritten) and returns where it went.
pub(crate) fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let mut to = sibling(path, ".corrupt");
    let mut n = 1;
    while to.exists() {
        to = sibling(path, &format!(".corrupt.{n}"));
        n += 1;
    }
    std::fs::rename(path, &to)?;
    Ok(to)
}
