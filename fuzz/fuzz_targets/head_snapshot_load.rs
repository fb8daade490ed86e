//! Fuzz loading a head snapshot file as a restart does (`storage/src/head/snapshot_load.rs`:
//! read and decompress on one thread, fill the head on another), against the sequential load:
//! arbitrary bytes, with or without a valid header and with each section's CRC recomputed,
//! give an error from both loads or the same head from both, never a panic. Also applies the
//! bytes as a head snapshot delta (`head/snapshot_delta.rs`) to an empty head.
#![no_main]

use argus_storage::internals::{
    HEAD_DELTA_HEADER, HEAD_SNAPSHOT_HEADER, head_delta_apply, head_snapshot_fix_crcs,
    head_snapshot_load,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("snapshot");
    let mut framed = HEAD_SNAPSHOT_HEADER.to_vec();
    framed.extend_from_slice(data);
    head_snapshot_fix_crcs(&mut framed);
    for bytes in [data, &framed[..]] {
        std::fs::write(&path, bytes).expect("write");
        let _ = head_snapshot_load(&path);
    }
    // A delta: its chain position from the first 8 bytes, the file from the rest (same
    // framing as a snapshot, so the CRC fix applies).
    let (Some(pos), rest) = (data.get(..8), data.get(8..).unwrap_or_default()) else {
        return;
    };
    let prev = u32::from_le_bytes([pos[0], pos[1], pos[2], pos[3]]);
    let pages = u32::from_le_bytes([pos[4], pos[5], pos[6], pos[7]]);
    let mut delta = HEAD_DELTA_HEADER.to_vec();
    delta.extend_from_slice(rest);
    head_snapshot_fix_crcs(&mut delta);
    std::fs::write(&path, &delta).expect("write");
    let _ = head_delta_apply(&path, prev, pages);
});
