//! Bounded gzip decompression of untrusted bodies (scrape responses, OTLP requests).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::io::Read;

/// Why [`gunzip`] failed.
#[derive(Debug, PartialEq, Eq)]
pub enum GunzipError {
    /// The decompressed body would pass the limit.
    TooLarge,
    /// Not valid gzip (the reader's message).
    Invalid(String),
}

/// Decompresses gzip `src` (one or more members, as Go's `gzip.Reader`) into `dst` (cleared
/// first), at most `limit` bytes: a bomb stops at `limit + 1` bytes read.
pub fn gunzip(src: &[u8], limit: u64, dst: &mut Vec<u8>) -> Result<(), GunzipError> {
    dst.clear();
    // The trailer's size (mod 2^32, of the last member): a hint that saves the doubling slack.
    if let Some(&[a, b, c, d]) = src.last_chunk::<4>() {
        let hint = u64::from(u32::from_le_bytes([a, b, c, d])).min(limit);
        dst.reserve(usize::try_from(hint).unwrap_or(0));
    }
    let mut r = flate2::read::MultiGzDecoder::new(src).take(limit.saturating_add(1));
    r.read_to_end(dst)
        .map_err(|e| GunzipError::Invalid(e.to_string()))?;
    if dst.len() as u64 > limit {
        return Err(GunzipError::TooLarge);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    fn gz(members: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in members {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(m).unwrap();
            out.extend(e.finish().unwrap());
        }
        out
    }

    #[test]
    fn bounds_and_errors() {
        let check = |src: &[u8], limit: u64, want: Result<&[u8], GunzipError>| {
            let mut dst = b"old".to_vec();
            match (gunzip(src, limit, &mut dst), want) {
                (Ok(()), Ok(w)) => assert_eq!(dst, w),
                (Err(GunzipError::Invalid(_)), Err(GunzipError::Invalid(_))) => {}
                (got, want) => assert_eq!(got, want.map(drop)),
            }
        };
        let body = b"a 1\nb 2\n".repeat(100);
        check(&gz(&[&body]), 10_000, Ok(&body));
        check(&gz(&[&body]), body.len() as u64, Ok(&body));
        check(
            &gz(&[&body]),
            body.len() as u64 - 1,
            Err(GunzipError::TooLarge),
        );
        // Two members read as one body (Go's gzip reader does the same).
        check(&gz(&[b"a 1\n", b"b 2\n"]), 100, Ok(b"a 1\nb 2\n"));
        check(&gz(&[b""]), 100, Ok(b""));
        check(b"not gzip", 100, Err(GunzipError::Invalid(String::new())));
        let mut cut = gz(&[&body]);
        cut.truncate(cut.len() / 2);
        check(&cut, 10_000, Err(GunzipError::Invalid(String::new())));
        // A bomb stops at the limit: 64 MiB of zeros against a 1 MiB limit.
        let bomb = gz(&[&vec![0u8; 64 << 20]]);
        check(&bomb, 1 << 20, Err(GunzipError::TooLarge));
    }

    proptest! {
        /// Any members compressed and decompressed give their bytes back, end to end, within
        /// a limit of their length and not one byte under it.
        #[test]
        fn round_trip(members in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..2000), 1..4)) {
            let refs: Vec<&[u8]> = members.iter().map(Vec::as_slice).collect();
            let want = members.concat();
            let src = gz(&refs);
            let mut dst = Vec::new();
            prop_assert_eq!(gunzip(&src, want.len() as u64, &mut dst), Ok(()));
            prop_assert_eq!(&dst, &want);
            if let Some(under) = (want.len() as u64).checked_sub(1) {
                prop_assert_eq!(gunzip(&src, under, &mut dst), Err(GunzipError::TooLarge));
            }
        }
    }
}
