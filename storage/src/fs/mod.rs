//! File-system helpers: names ([`layout`]), read-only maps ([`mmap`]), fsync of directories and
//! atomic writes.

pub(crate) mod layout;
pub(crate) mod mmap;

use crate::error::{Error, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Fsyncs a directory so renames and creations inside it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(format!("cannot fsync directory {}", dir.display()), e))
}

/// Writes `bytes` to `path` via `path.tmp` + fsync + rename + fsync of the parent.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    if let Some(parent) = path.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}

/// Writes a whole new file and fsyncs it.
pub(crate) fn write_file_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let write = || -> std::io::Result<()> {
        let mut f = File::create(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    write().map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// Total size in bytes of the regular files under `dir` (recursively).
pub(crate) fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// The number in a file name that is all ASCII digits (segments, and what follows the prefix of
/// checkpoints and head snapshots).
pub(crate) fn parse_index(name: &str) -> Option<u32> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// The entries of `dir` named `prefix` and then a number ([`parse_index`]; temporary names, with
/// a suffix, are not listed), sorted by that number.
pub(crate) fn numbered_entries(dir: &Path, prefix: &str) -> Result<Vec<(u32, PathBuf)>> {
    let cannot_list = |e| Error::io(format!("cannot list {}", dir.display()), e);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(cannot_list)? {
        let entry = entry.map_err(cannot_list)?;
        let name = entry.file_name();
        if let Some(i) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(parse_index)
        {
            out.push((i, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Removes, with `remove`, the entries of `dir` named `prefix…suffix`: the leftovers of
/// interrupted writes.
pub(crate) fn remove_leftovers(
    dir: &Path,
    prefix: &str,
    suffix: &str,
    remove: impl Fn(&Path) -> std::io::Result<()>,
) -> Result<()> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
    for entry in rd.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(prefix) && name.ends_with(suffix) {
            let path = entry.path();
            remove(&path).map_err(|e| Error::io(format!("cannot remove {}", path.display()), e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(dir_size(dir.path()), 3);
    }
}
