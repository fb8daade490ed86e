//! The `tombstones` file: deleted intervals per block series.
//!
//! ```text
//! ┌──────────────┬─────────┬──────────────┬──────────────────────────────────┬─────────┐
//! │ magic u32 LE │ version │ count u32 LE │ count × (id u32, mint i64, maxt i64) │ CRC32 LE │
//! └──────────────┴─────────┴──────────────┴──────────────────────────────────┴─────────┘
//! ```
//! All integers little-endian; the CRC32 (Castagnoli is not needed: IEEE via crc32fast) covers
//! every byte before it. Intervals are closed `[mint, maxt]` in ms.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

const MAGIC: u32 = 0x0130_BA30;
const VERSION: u8 = 1;
const HEADER_LEN: usize = 4 + 1 + 4;
const ENTRY_LEN: usize = 4 + 8 + 8;
const CRC_LEN: usize = 4;

/// Deleted intervals per series id, each list sorted and merged.
pub(crate) type Tombstones = BTreeMap<u32, Vec<(i64, i64)>>;

/// Adds `[mint, maxt]` to series `id`, merging overlapping or adjacent intervals.
pub(crate) fn add_interval(ts: &mut Tombstones, id: u32, mint: i64, maxt: i64) {
    let list = ts.entry(id).or_default();
    list.push((mint, maxt));
    list.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(list.len());
    for &(a, b) in list.iter() {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    *list = merged;
}

/// True when `t` is inside one of `intervals`.
pub(crate) fn is_deleted(intervals: &[(i64, i64)], t: i64) -> bool {
    intervals.iter().any(|&(a, b)| a <= t && t <= b)
}

/// Encodes `ts` into file bytes.
pub(crate) fn encode(ts: &Tombstones) -> Vec<u8> {
    let count: usize = ts.values().map(Vec::len).sum();
    let mut out = Vec::with_capacity(HEADER_LEN + count * ENTRY_LEN + CRC_LEN);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.push(VERSION);
    out.extend_from_slice(&(count as u32).to_le_bytes());
    for (&id, list) in ts {
        for &(a, b) in list {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&a.to_le_bytes());
            out.extend_from_slice(&b.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn i64_at(b: &[u8], off: usize) -> Option<i64> {
    Some(i64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// Decodes file bytes; `path` names the file in errors.
pub(crate) fn decode(b: &[u8], path: &Path) -> Result<Tombstones> {
    let bad = |off: usize, why: &str| Error::corruption(path, off as u64, why.to_string());
    if b.len() < HEADER_LEN + CRC_LEN {
        return Err(bad(0, "tombstones file too short"));
    }
    if u32_at(b, 0) != Some(MAGIC) {
        return Err(bad(0, "bad tombstones magic"));
    }
    if b.get(4) != Some(&VERSION) {
        return Err(bad(4, "unsupported tombstones version"));
    }
    let body_len = b.len() - CRC_LEN;
    let want = u32_at(b, body_len).ok_or_else(|| bad(body_len, "missing CRC"))?;
    if crc32fast::hash(b.get(..body_len).unwrap_or(&[])) != want {
        return Err(bad(body_len, "tombstones CRC mismatch"));
    }
    let count = u32_at(b, 5).ok_or_else(|| bad(5, "missing count"))? as usize;
    if count
        .checked_mul(ENTRY_LEN)
        .and_then(|n| n.checked_add(HEADER_LEN))
        != Some(body_len)
    {
        return Err(bad(5, "tombstones count does not match file size"));
    }
    let mut ts = Tombstones::new();
    for i in 0..count {
        let off = HEADER_LEN + i * ENTRY_LEN;
        let (Some(id), Some(a), Some(bb)) =
            (u32_at(b, off), i64_at(b, off + 4), i64_at(b, off + 12))
        else {
            return Err(bad(off, "truncated entry"));
        };
        if a > bb {
            return Err(bad(off, "interval with mint > maxt"));
        }
        add_interval(&mut ts, id, a, bb);
    }
    Ok(ts)
}

/// Reads `path`; a missing file means no tombstones.
pub(crate) fn read(path: &Path) -> Result<Tombstones> {
    match std::fs::read(path) {
        Ok(b) => decode(&b, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tombstones::new()),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn intervals_merge() {
        let mut ts = Tombstones::new();
        add_interval(&mut ts, 1, 10, 20);
        add_interval(&mut ts, 1, 21, 30);
        add_interval(&mut ts, 1, 50, 60);
        add_interval(&mut ts, 1, 5, 12);
        assert_eq!(ts[&1], vec![(5, 30), (50, 60)]);
        assert!(is_deleted(&ts[&1], 55) && !is_deleted(&ts[&1], 40));
    }

    #[test]
    fn corrupt_bytes_are_errors() {
        let mut ts = Tombstones::new();
        add_interval(&mut ts, 3, 1, 2);
        let b = encode(&ts);
        let p = Path::new("tombstones");
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x40;
            assert!(decode(&c, p).is_err(), "flip at {i} accepted");
            assert!(decode(&b[..i], p).is_err(), "truncation at {i} accepted");
        }
    }

    proptest! {
        #[test]
        fn roundtrip(entries in proptest::collection::vec((0u32..50, -1000i64..1000, 0i64..100), 0..40)) {
            let mut ts = Tombstones::new();
            for (id, a, len) in entries {
                add_interval(&mut ts, id, a, a + len);
            }
            prop_assert_eq!(decode(&encode(&ts), Path::new("t")).unwrap(), ts);
        }

        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&b, Path::new("t"));
        }
    }
}
