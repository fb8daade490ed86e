//! Bounded gzip decompression of untrusted bodies (scrape responses, OTLP requests).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::cell::RefCell;
use std::io::Read;

/// Why [`gunzip`] failed.
#[derive(Debug, PartialEq, Eq)]
pub enum GunzipError {
    /// The decompressed body would pass the limit.
    TooLarge,
    /// Not valid gzip (the reader's message).
    Invalid(String),
}

thread_local! {
    /// libdeflate's decompressor (its tables, ~10 KiB), one per thread that inflates.
    static WHOLE: RefCell<libdeflater::Decompressor> = RefCell::new(libdeflater::Decompressor::new());
}

/// Decompresses gzip `src` (one or more members, as Go's `gzip.Reader`) into `dst` (cleared
/// first), at most `limit` bytes: a bomb stops at `limit + 1` bytes read.
///
/// A body of one member whose trailer's size is within the limit is inflated in one call of
/// libdeflate into a buffer of that size (`whole`, 0.6–0.7× flate2's streaming time on scrape
/// bodies); everything else (several members, a size that lies, invalid input, an empty body)
/// goes through flate2's streaming reader, which gives the result and the error messages.
pub fn gunzip(src: &[u8], limit: u64, dst: &mut Vec<u8>) -> Result<(), GunzipError> {
    if whole(src, limit, dst) {
        return Ok(());
    }
    stream(src, limit, dst)
}

/// [`gunzip`] by flate2's streaming reader, for any input.
fn stream(src: &[u8], limit: u64, dst: &mut Vec<u8>) -> Result<(), GunzipError> {
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

/// Inflates `src` into `dst` in one call when it is a single gzip member of the size its
/// trailer states (1..=`limit` bytes); false (with `dst` holding anything) otherwise.
///
/// libdeflate inflates the first member only and does not say where it ended, so the rest of
/// the body is proven empty here: the call succeeded with exactly the trailer's size `n`, which
/// libdeflate checked against the first member's own trailer, so that trailer's size field holds
/// `n`'s four bytes. Had the first member ended before the body's last 8 bytes (a second member,
/// or trailing bytes), that field would sit before the last byte; a body with no such four bytes
/// before its last byte (from offset 10, past the header) ends with its first member. A body that
/// has them by chance (about one in 2^32 per byte of compressed data) takes the streaming path,
/// which is slower, not different.
fn whole(src: &[u8], limit: u64, dst: &mut Vec<u8>) -> bool {
    let Some(&size) = src.last_chunk::<4>() else {
        return false;
    };
    let n = u32::from_le_bytes(size);
    let Ok(want) = usize::try_from(n) else {
        return false;
    };
    if n == 0 || u64::from(n) > limit {
        return false;
    }
    // Bytes already in `dst` are written over: only the part past them is zeroed.
    if dst.len() >= want {
        dst.truncate(want);
    } else {
        dst.resize(want, 0);
    }
    let got = WHOLE.with_borrow_mut(|d| d.gzip_decompress(src, dst));
    got == Ok(want)
        && src
            .get(10..src.len() - 1)
            .is_some_and(|before| memchr::memmem::find(before, &size).is_none())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
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

    /// Bodies that look like one member to a decoder that stops after the first: `gunzip`
    /// must still read every member (or fail as the streaming reader does).
    #[test]
    fn more_than_the_first_member() {
        let check = |src: &[u8], limit: u64| {
            let (mut got, mut want) = (Vec::new(), Vec::new());
            let (g, w) = (gunzip(src, limit, &mut got), stream(src, limit, &mut want));
            match (&g, &w) {
                (Ok(()), Ok(())) => assert_eq!(got, want),
                (Err(GunzipError::Invalid(_)), Err(GunzipError::Invalid(_))) => {}
                _ => assert_eq!(g, w),
            }
            g.map(|()| got)
        };
        let (a, b) = (b"a 1\n".repeat(50), b"b 2\n".repeat(70));
        // The last member's trailer is the first one's: same bytes, same size and CRC.
        assert_eq!(
            check(&gz(&[&a, &b, &a]), 10_000),
            Ok([&a[..], &b, &a].concat())
        );
        assert_eq!(check(&gz(&[&a, &a]), 10_000), Ok(a.repeat(2)));
        // Empty first and last members around the body.
        assert_eq!(check(&gz(&[b"", &b, b""]), 10_000), Ok(b.clone()));
        // Within the limit member by member, over it together.
        assert_eq!(
            check(&gz(&[&a, &a]), a.len() as u64),
            Err(GunzipError::TooLarge)
        );
        // Trailing bytes after a member: not gzip, as the streaming reader says, whatever they
        // are (here: a copy of the member's trailer, the last 8 bytes).
        let one = gz(&[&a]);
        let mut tail = one.clone();
        tail.extend_from_slice(&one[one.len() - 8..]);
        assert!(matches!(check(&tail, 10_000), Err(GunzipError::Invalid(_))));
        let mut junk = one.clone();
        junk.extend_from_slice(b"junk");
        assert!(matches!(check(&junk, 10_000), Err(GunzipError::Invalid(_))));
        // A trailer's size that lies, either way: the CRC and size checks fail.
        for lie in [a.len() - 1, a.len() + 1, 9_999] {
            let mut bad = one.clone();
            let at = bad.len() - 4;
            bad[at..].copy_from_slice(&(lie as u32).to_le_bytes());
            assert!(matches!(check(&bad, 10_000), Err(GunzipError::Invalid(_))));
        }
        // A bomb whose trailer claims a small size stops at the limit.
        let mut bomb = gz(&[&vec![0u8; 4 << 20]]);
        let at = bomb.len() - 4;
        bomb[at..].copy_from_slice(&100u32.to_le_bytes());
        assert!(matches!(check(&bomb, 1 << 20), Err(GunzipError::TooLarge)));
        // Which path each took: one call for a single member only.
        let mut buf = Vec::new();
        assert!(whole(&one, 10_000, &mut buf));
        assert!(!whole(&gz(&[&a, &b, &a]), 10_000, &mut buf));
        assert!(!whole(&gz(&[&a, &a]), 10_000, &mut buf));
        assert!(!whole(&tail, 10_000, &mut buf));
        assert!(!whole(&one, a.len() as u64 - 1, &mut buf));
        // A reused buffer's old bytes are written over, not kept.
        let mut dst = vec![7u8; 5_000];
        assert_eq!(gunzip(&one, 10_000, &mut dst), Ok(()));
        assert_eq!(dst, a);
    }

    proptest! {
        /// Members, trailing bytes and one flipped byte against a random limit: the result is
        /// the streaming reader's (the same bytes or the same kind of error).
        #[test]
        fn as_the_streaming_reader(
            members in prop::collection::vec(prop::collection::vec(0u8..4, 0..3000), 1..4),
            tail in prop::collection::vec(any::<u8>(), 0..3),
            flip in any::<Option<(prop::sample::Index, u8)>>(),
            limit in 0u64..12_000,
        ) {
            let refs: Vec<&[u8]> = members.iter().map(Vec::as_slice).collect();
            let mut src = gz(&refs);
            src.extend_from_slice(&tail);
            if let Some((at, x)) = flip {
                let i = at.index(src.len());
                src[i] ^= x;
            }
            let (mut got, mut want) = (vec![1u8; 100], Vec::new());
            let (g, w) = (gunzip(&src, limit, &mut got), stream(&src, limit, &mut want));
            match (&g, &w) {
                (Ok(()), Ok(())) => prop_assert_eq!(&got, &want),
                (Err(GunzipError::Invalid(_)), Err(GunzipError::Invalid(_))) => {}
                _ => prop_assert_eq!(&g, &w),
            }
        }

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
