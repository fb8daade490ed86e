//! Prometheus `chunkenc` XOR chunks, the `data` of remote read's `STREAMED_XOR_CHUNKS` frames.
//!
//! The bit stream is exactly [`XorChunk`]'s (both follow Prometheus's `tsdb/chunkenc/xor.go`:
//! the same varints, delta-of-delta buckets and XOR windows with the leading count capped at 31);
//! only the two-byte sample count differs: Prometheus stores it big-endian, Argus little-endian.
//!
//! ```text
//! ┌──────────────────────┬──────────────────────────────────────────┐
//! │ num_samples u16 BE   │ bit stream, as in xor.rs                 │
//! └──────────────────────┴──────────────────────────────────────────┘
//! ```
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::xor::{HEADER_LEN, MAX_SAMPLES};
use super::{XorChunk, XorIterator};
use crate::error::{Error, Result};
use crate::interface::SampleIterator;
use crate::model::Timestamp;

/// Most samples one Prometheus XOR chunk holds (its count is a u16).
pub const PROMETHEUS_XOR_MAX_SAMPLES: usize = MAX_SAMPLES;

/// Appends `samples` to `dst` as one Prometheus XOR chunk. BUG (panics) if the timestamps are
/// not strictly increasing or there are more than [`PROMETHEUS_XOR_MAX_SAMPLES`]: callers split
/// series into chunks themselves.
pub fn encode_prometheus_xor(samples: &[(Timestamp, f64)], dst: &mut Vec<u8>) {
    let mut c = XorChunk::new();
    for &(t, v) in samples {
        c.append(t, v);
    }
    let bytes = c.bytes();
    let n = samples.len();
    dst.reserve(bytes.len());
    // The count big-endian, written with shifts (on-disk integers elsewhere are little-endian).
    dst.push((n >> 8) as u8);
    dst.push(n as u8);
    dst.extend_from_slice(bytes.get(HEADER_LEN..).unwrap_or_default());
}

/// Decodes every sample of Prometheus XOR chunk `bytes` into `dst` (appending). Corrupt input is
/// an `Err`; `dst` then holds the samples decoded before the corruption.
pub fn decode_prometheus_xor(dst: &mut Vec<(Timestamp, f64)>, bytes: &[u8]) -> Result<()> {
    let [hi, lo, rest @ ..] = bytes else {
        return Err(Error::corruption(
            "<prometheus xor chunk>",
            0,
            format!("chunk of {} bytes is shorter than its header", bytes.len()),
        ));
    };
    let mut own = Vec::with_capacity(bytes.len());
    own.push(*lo);
    own.push(*hi);
    own.extend_from_slice(rest);
    let mut it = XorIterator::new(&own);
    while it.next() {
        dst.push(it.at());
    }
    match it.take_err() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    /// The header and first sample as `xor.go` lays them out (the whole stream is checked
    /// against a real Prometheus by `tests/it/remote_read.rs`).
    #[test]
    fn header_is_big_endian_and_stream_is_xor() {
        let s = [(1000, 1.0), (2000, 2.0), (3000, 2.0), (5000, -0.5)];
        let mut b = Vec::new();
        encode_prometheus_xor(&s, &mut b);
        assert_eq!(&b[..2], &[0, 4]);
        // t0 = 1000 as a signed varint: zig-zag 2000 = 0b111_1101_0000 → 0xd0 0x0f.
        assert_eq!(&b[2..4], &[0xd0, 0x0f]);
        // v0 = 1.0 = 0x3ff0000000000000, raw.
        assert_eq!(&b[4..12], &[0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
        let mut got = Vec::new();
        decode_prometheus_xor(&mut got, &b).unwrap();
        assert_eq!(got, s);
        assert!(decode_prometheus_xor(&mut got, &[1]).is_err());
        assert!(decode_prometheus_xor(&mut Vec::new(), &[0, 9, 1]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(start in any::<i32>(), steps in proptest::collection::vec((1i64..100_000, any::<u64>()), 1..300)) {
            let mut t = i64::from(start);
            let mut s = Vec::new();
            for (d, v) in steps {
                t += d;
                s.push((t, f64::from_bits(v)));
            }
            let mut b = Vec::new();
            encode_prometheus_xor(&s, &mut b);
            let mut got = Vec::new();
            decode_prometheus_xor(&mut got, &b).unwrap();
            prop_assert_eq!(got.len(), s.len());
            for (g, w) in got.iter().zip(&s) {
                prop_assert_eq!(g.0, w.0);
                prop_assert_eq!(g.1.to_bits(), w.1.to_bits());
            }
        }
    }
}
