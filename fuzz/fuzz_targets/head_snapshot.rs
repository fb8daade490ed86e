//! Fuzz the head snapshot decoder (`storage/src/head/snapshot.rs`): arbitrary bytes, with or
//! without a valid header, give an error or a snapshot, never a panic; a snapshot that decodes
//! re-encodes to bytes that decode and re-encode to themselves.
#![no_main]

use argus_storage::internals::{HEAD_SNAPSHOT_HEADER, head_snapshot_round_trip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut with_header = HEAD_SNAPSHOT_HEADER.to_vec();
    with_header.extend_from_slice(data);
    for bytes in [data, &with_header[..]] {
        if let Ok(again) = head_snapshot_round_trip(bytes) {
            let twice = head_snapshot_round_trip(&again).expect("own encoding decodes");
            assert_eq!(twice, again, "own encoding re-encodes to itself");
        }
    }
});
