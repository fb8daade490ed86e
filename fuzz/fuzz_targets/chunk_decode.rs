//! Fuzz the Gorilla XOR chunk decoder: arbitrary bytes must never panic or hang, and
//! decode(encode(samples)) must reproduce every timestamp and value bit pattern. Re-opening
//! bytes from a shorter chunk's state (`reopen_grown`, a head delta's grown open chunk) must
//! give what re-opening them from the start gives, for arbitrary and for grown bytes.
#![no_main]

use arbitrary::Arbitrary;
use argus_storage::SampleIterator;
use argus_storage::internals::{
    XorChunk, XorIterator, chunk_decode_into, chunk_encode_best, xor_decode_into,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input {
    /// Untrusted chunk bytes, plus a seek target.
    Bytes(Vec<u8>, i64),
    /// Samples to round-trip: a start time, positive deltas and value bit patterns.
    Samples(i64, Vec<(u64, u64)>),
    /// Samples whose values are small decimals (exercises the packed codec's decimal kinds).
    Decimals(i64, Vec<(u16, i32, u8)>),
}

fuzz_target!(|input: Input| match input {
    Input::Bytes(bytes, seek) => {
        let mut out = Vec::new();
        let res = xor_decode_into(&mut out, &bytes);
        assert!(out.len() <= usize::from(u16::MAX));
        let mut it = XorIterator::new(&bytes);
        let mut n = 0;
        while it.next() {
            n += 1;
        }
        assert_eq!(n, out.len(), "iterator and decode_into agree");
        assert_eq!(it.err().is_some(), res.is_err());
        it.reset(&bytes);
        if it.seek(seek) {
            assert!(it.at().0 >= seek);
        }
        // Re-opened from the state of a chunk of the first `seek`-th bytes (when they are one):
        // the answer of a re-open from the start.
        let cut = usize::try_from(seek.unsigned_abs() % (bytes.len() as u64 + 1)).unwrap_or(0);
        if let Ok(short) = XorChunk::from_bytes(&bytes[..cut]) {
            match (short.reopen_grown(&bytes), XorChunk::from_bytes(&bytes)) {
                (Ok(a), Ok(b)) => assert_eq!(a.bytes(), b.bytes()),
                (a, b) => assert_eq!(a.is_ok(), b.is_ok(), "reopen_grown against from_bytes"),
            }
        }
        // The packed codec must reject or decode the same bytes without panicking.
        let mut packed = Vec::new();
        let _ = chunk_decode_into(3, &mut packed, &bytes);
        assert!(packed.len() <= usize::from(u16::MAX));
    }
    Input::Decimals(start, items) => {
        let mut t = start / 2;
        let mut samples = Vec::new();
        for (d, m, k) in items.into_iter().take(usize::from(u16::MAX)) {
            let v = f64::from(m) / 10f64.powi(i32::from(k % 4));
            samples.push((t, v));
            match t.checked_add(i64::from(d) + 1) {
                Some(n) => t = n,
                None => break,
            }
        }
        let mut b = Vec::new();
        let enc = chunk_encode_best(&samples, &mut b);
        let mut out = Vec::new();
        chunk_decode_into(enc, &mut out, &b).expect("own encoding decodes");
        let bits = |s: &[(i64, f64)]| s.iter().map(|&(t, v)| (t, v.to_bits())).collect::<Vec<_>>();
        assert_eq!(bits(&out), bits(&samples));
    }
    Input::Samples(start, deltas) => {
        let mut samples = Vec::new();
        let mut t = start;
        for (i, (d, v)) in deltas.into_iter().enumerate().take(usize::from(u16::MAX)) {
            if i > 0 {
                // Mostly scrape-like deltas, sometimes huge ones.
                let d = if d & 1 == 0 {
                    (d >> 1) % 100_000 + 1
                } else {
                    (d >> 1).max(1)
                };
                match i64::try_from(d).ok().and_then(|d| t.checked_add(d)) {
                    Some(n) => t = n,
                    None => break,
                }
            }
            samples.push((t, v));
        }
        let mut c = XorChunk::new();
        for &(t, v) in &samples {
            c.append(t, f64::from_bits(v));
        }
        let mut out = Vec::new();
        xor_decode_into(&mut out, c.bytes()).expect("own encoding decodes");
        let got: Vec<(i64, u64)> = out.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(got, samples);
        let resumed = XorChunk::from_bytes(c.bytes()).expect("own encoding re-opens");
        assert_eq!(resumed.bytes(), c.bytes());
        // Grown from its first half: re-opened from the half's state, the same chunk.
        let mut half = XorChunk::new();
        for &(t, v) in &samples[..samples.len() / 2] {
            half.append(t, f64::from_bits(v));
        }
        let grown = half.reopen_grown(c.bytes()).expect("own encoding re-opens");
        assert_eq!(grown.bytes(), c.bytes());
        // Same samples through the best encoding (packed unless XOR is smaller).
        let with_f64: Vec<(i64, f64)> = samples
            .iter()
            .map(|&(t, v)| (t, f64::from_bits(v)))
            .collect();
        let mut b = Vec::new();
        let enc = chunk_encode_best(&with_f64, &mut b);
        assert!(b.len() <= c.bytes().len());
        out.clear();
        chunk_decode_into(enc, &mut out, &b).expect("own encoding decodes");
        let got: Vec<(i64, u64)> = out.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(got, samples);
    }
});
