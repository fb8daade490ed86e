//! A queue's acknowledged WAL position, persisted so delivery resumes there after a restart.
//!
//! ```text
//! <data dir>/remote_write/<identity hash>.pos:
//! ┌──────────────┬────────────┬────────────────┬───────────────┬─────────────────────────┐
//! │ magic "ARWP" │ version u8 │ segment u32 LE │ offset u64 LE │ crc32(preceding) u32 LE │
//! └──────────────┴────────────┴────────────────┴───────────────┴─────────────────────────┘
//! ```
//! Written to `<hash>.pos.tmp`, fsynced and renamed over the old file, so a crash leaves the
//! old or the new position. Everything before the position was acknowledged by the receiver
//! (or dropped after a non-retryable answer).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use argus_storage::WalPosition;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Directory under the data dir.
pub const DIR: &str = "remote_write";
const MAGIC: [u8; 4] = *b"ARWP";
const VERSION: u8 = 1;
const SEGMENT_OFF: usize = MAGIC.len() + 1;
const OFFSET_OFF: usize = SEGMENT_OFF + 4;
const CRC_OFF: usize = OFFSET_OFF + 8;
const LEN: usize = CRC_OFF + 4;

/// The position file of the queue with `hash` under `data_dir`.
pub fn path(data_dir: &Path, hash: &str) -> PathBuf {
    data_dir.join(DIR).join(format!("{hash}.pos"))
}

/// Encodes a position.
fn encode(p: WalPosition) -> [u8; LEN] {
    let mut b = [0u8; LEN];
    let mut v = Vec::with_capacity(LEN);
    v.extend_from_slice(&MAGIC);
    v.push(VERSION);
    v.extend_from_slice(&p.segment.to_le_bytes());
    v.extend_from_slice(&p.offset.to_le_bytes());
    let crc = crc32fast::hash(&v);
    v.extend_from_slice(&crc.to_le_bytes());
    b.copy_from_slice(&v);
    b
}

/// Decodes a position file's bytes (untrusted).
fn decode(b: &[u8]) -> Result<WalPosition, String> {
    if b.len() != LEN {
        return Err(format!("{} bytes, want {LEN}", b.len()));
    }
    if b.get(..MAGIC.len()) != Some(&MAGIC[..]) {
        return Err("bad magic".into());
    }
    if b.get(MAGIC.len()) != Some(&VERSION) {
        return Err(format!("unsupported version {:?}", b.get(MAGIC.len())));
    }
    let le = |r: std::ops::Range<usize>| b.get(r).unwrap_or_default();
    let crc = u32::from_le_bytes(le(CRC_OFF..LEN).try_into().map_err(|_| "short")?);
    if crc32fast::hash(le(0..CRC_OFF)) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(WalPosition {
        segment: u32::from_le_bytes(
            le(SEGMENT_OFF..OFFSET_OFF)
                .try_into()
                .map_err(|_| "short")?,
        ),
        offset: u64::from_le_bytes(le(OFFSET_OFF..CRC_OFF).try_into().map_err(|_| "short")?),
    })
}

/// Reads a position file: `Ok(None)` when there is none.
pub fn load(path: &Path) -> Result<Option<WalPosition>, String> {
    match std::fs::read(path) {
        Ok(b) => decode(&b)
            .map(Some)
            .map_err(|e| format!("invalid position file {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Writes a position file atomically (tmp, fsync, rename, fsync dir).
pub fn store(path: &Path, p: WalPosition) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("pos.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&encode(p))?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "abc");
        assert_eq!(load(&p).unwrap(), None);
        let pos = WalPosition {
            segment: 7,
            offset: 1 << 33,
        };
        store(&p, pos).unwrap();
        assert_eq!(load(&p).unwrap(), Some(pos));
        let good = std::fs::read(&p).unwrap();
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x10;
            assert!(decode(&b).is_err(), "flip at {i} undetected");
        }
        assert!(decode(&good[..5]).is_err());
    }
}
