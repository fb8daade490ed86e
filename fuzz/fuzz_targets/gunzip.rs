#![no_main]
//! `util::gzip::gunzip`, the bounded decompression of scrape, push and OTLP bodies. An input is
//! a limit, a mode and bytes: the bytes as they are, or cut into up to three pieces gzipped as
//! members (optionally with one byte flipped and trailing bytes), so that most inputs reach the
//! inflate. Properties: no panic; the output never passes the limit; the result is flate2's
//! streaming `MultiGzDecoder`'s (the same bytes, `TooLarge` where it reads past the limit, an
//! error where it fails).
use arbitrary::{Arbitrary, Unstructured};
use argus::util::gzip::{GunzipError, gunzip};
use std::io::{Read, Write};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    limit: u16,
    members: bool,
    cuts: (u16, u16),
    flip: Option<(u16, u8)>,
    tail: &'a [u8],
    bytes: &'a [u8],
}

fn reference(src: &[u8], limit: u64) -> Result<Vec<u8>, ()> {
    let mut out = Vec::new();
    let mut r = flate2::read::MultiGzDecoder::new(src).take(limit + 1);
    r.read_to_end(&mut out).map_err(drop)?;
    Ok(out)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let limit = u64::from(input.limit);
    let src = if input.members {
        let b = input.bytes;
        let (x, y) = (
            usize::from(input.cuts.0) % (b.len() + 1),
            usize::from(input.cuts.1) % (b.len() + 1),
        );
        let (lo, hi) = (x.min(y), x.max(y));
        let mut src = Vec::new();
        for piece in [&b[..lo], &b[lo..hi], &b[hi..]] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(piece).expect("gzip to a Vec");
            src.extend(e.finish().expect("gzip to a Vec"));
        }
        if let Some((at, x)) = input.flip {
            let i = usize::from(at) % src.len();
            src[i] ^= x;
        }
        src.extend_from_slice(input.tail);
        src
    } else {
        input.bytes.to_vec()
    };
    let mut got = vec![0xa5; 64];
    let result = gunzip(&src, limit, &mut got);
    match (result, reference(&src, limit)) {
        (Ok(()), Ok(want)) => {
            assert!(got.len() as u64 <= limit, "output past the limit");
            assert_eq!(got, want, "not the streaming reader's bytes");
        }
        (Err(GunzipError::TooLarge), Ok(want)) => {
            assert!(want.len() as u64 > limit, "TooLarge within the limit")
        }
        (Err(GunzipError::Invalid(_)), Err(())) => {}
        (got, want) => panic!("gunzip gave {got:?}, the streaming reader {:?}", want.map(|w| w.len())),
    }
});
