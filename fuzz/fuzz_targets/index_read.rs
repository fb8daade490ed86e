//! Fuzz the block index reader: arbitrary bytes must give an error or data, never a panic or
//! hang; indexes written from arbitrary series read back identically.
#![no_main]

use arbitrary::Arbitrary;
use argus_storage::Labels;
use argus_storage::internals::{ChunkMetaTuple, index_read_all, index_write};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

#[derive(Arbitrary, Debug)]
enum Input {
    /// Untrusted index bytes.
    Bytes(Vec<u8>),
    /// Series to write and read back; optionally flip one byte of the written file.
    Series(
        Vec<(Vec<(String, String)>, Vec<ChunkMetaTuple>)>,
        Option<(usize, u8)>,
    ),
}

fuzz_target!(|input: Input| match input {
    Input::Bytes(bytes) => {
        let _ = index_read_all(&bytes);
    }
    Input::Series(series, flip) => {
        let mut sorted: BTreeMap<Labels, Vec<ChunkMetaTuple>> = BTreeMap::new();
        for (pairs, chunks) in series {
            let pairs: Vec<(String, String)> =
                pairs.into_iter().filter(|(n, _)| !n.is_empty()).collect();
            sorted.insert(Labels::from_pairs(&pairs), chunks);
        }
        let series: Vec<(Labels, Vec<ChunkMetaTuple>)> = sorted.into_iter().collect();
        let path = std::env::temp_dir().join(format!("argus-fuzz-index-{}", std::process::id()));
        index_write(&path, &series).expect("index write");
        let mut bytes = std::fs::read(&path).expect("read back");
        let _ = std::fs::remove_file(&path);
        assert_eq!(index_read_all(&bytes).expect("own index reads"), series);
        if let Some((at, x)) = flip {
            let len = bytes.len();
            if let Some(b) = bytes.get_mut(at % len) {
                *b ^= x;
            }
            if let Ok(got) = index_read_all(&bytes) {
                // Only the reserved header bytes are unchecked.
                assert_eq!(got, series);
            }
        }
    }
});
