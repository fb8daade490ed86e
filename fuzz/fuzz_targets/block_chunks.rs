//! Fuzz the block chunk segment reader (zstd frames of chunks): arbitrary segment bytes and
//! refs must give an error or a chunk, never a panic or a hang; chunks written by the block
//! chunk writer must read back exactly.
#![no_main]

use arbitrary::Arbitrary;
use argus_storage::internals::{BlockFrameCache, block_chunk_read, block_chunks_write};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input {
    /// Untrusted bytes after a valid segment header, and refs into them.
    Segment(Vec<u8>, Vec<u64>),
    /// A compressible frame body with arbitrary content, and in-frame offsets.
    Frame(Vec<u8>, Vec<u16>),
    /// Chunks to round-trip through the writer.
    Chunks(Vec<(u8, Vec<u8>)>),
}

const HEADER: [u8; 8] = [0xA1, 0xC4, 0xC0, 0xA4, 2, 0, 0, 0];

fuzz_target!(|input: Input| match input {
    Input::Segment(body, refs) => {
        let mut seg = HEADER.to_vec();
        seg.extend_from_slice(&body);
        let mut cache = BlockFrameCache::default();
        for r in refs.into_iter().take(64) {
            if let Ok((_, data)) = block_chunk_read(&seg, r, &mut cache) {
                assert!(data.len() <= 1 << 20);
            }
        }
    }
    Input::Frame(content, offsets) => {
        let z = zstd::bulk::compress(&content, 1).expect("compress");
        let mut seg = HEADER.to_vec();
        seg.extend_from_slice(&(z.len() as u32).to_le_bytes());
        seg.extend_from_slice(&z);
        let mut cache = BlockFrameCache::default();
        for off in offsets.into_iter().take(64) {
            let r = 1u64 << 48 | 8 << 16 | u64::from(off);
            if let Ok((_, data)) = block_chunk_read(&seg, r, &mut cache) {
                assert!(data.len() <= content.len());
            }
        }
    }
    Input::Chunks(chunks) => {
        let chunks: Vec<(u8, Vec<u8>)> = chunks
            .into_iter()
            .take(256)
            .map(|(e, d)| (1 + e % 3 / 2 * 2, d))
            .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let refs = block_chunks_write(dir.path(), &chunks).expect("write");
        let seg = std::fs::read(dir.path().join("000001")).unwrap_or_default();
        let mut cache = BlockFrameCache::default();
        for ((enc, data), r) in chunks.iter().zip(refs) {
            let got = block_chunk_read(&seg, r, &mut cache).expect("own chunk reads back");
            assert_eq!(&got, &(*enc, data.clone()));
        }
    }
});
