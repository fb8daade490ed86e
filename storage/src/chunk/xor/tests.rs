#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use super::*;
use crate::error::Result;
use crate::model::STALE_NAN_BITS;
use proptest::prelude::*;

fn encode(samples: &[(i64, f64)]) -> XorChunk {
    let mut c = XorChunk::new();
    for &(t, v) in samples {
        c.append(t, v);
    }
    c
}

fn decode(bytes: &[u8]) -> Result<Vec<(i64, u64)>> {
    let mut out = Vec::new();
    decode_into(&mut out, bytes)?;
    Ok(out.into_iter().map(|(t, v)| (t, v.to_bits())).collect())
}

fn bits(samples: &[(i64, f64)]) -> Vec<(i64, u64)> {
    samples.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

fn special_values() -> Vec<f64> {
    vec![
        0.0,
        -0.0,
        1.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        f64::from_bits(STALE_NAN_BITS),
        f64::from_bits(0x7ff8_dead_beef_0001), // NaN with payload
        f64::from_bits(0xfff0_0000_0000_0001), // negative signalling NaN
        f64::from_bits(1),                     // smallest subnormal
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::MIN,
        f64::EPSILON,
        1e-300,
        123_456.789,
        0.0,
    ]
}

#[test]
fn special_values_round_trip_bit_exact() {
    let vals = special_values();
    let samples: Vec<(i64, f64)> = vals
        .iter()
        .enumerate()
        .map(|(i, &v)| (1_700_000_000_000 + 15_000 * i as i64, v))
        .collect();
    let c = encode(&samples);
    assert_eq!(c.num_samples(), samples.len());
    assert_eq!(decode(c.bytes()).unwrap(), bits(&samples));
}

#[test]
fn empty_chunk_is_decodable() {
    let c = XorChunk::new();
    assert_eq!(c.bytes(), &[0, 0]);
    let mut it = c.iter();
    assert!(!it.next());
    assert!(it.err().is_none());
    assert_eq!(decode(XorChunk::default().bytes()).unwrap(), vec![]);
}

#[test]
fn short_header_is_corruption() {
    for b in [&[][..], &[1][..]] {
        let mut it = XorIterator::new(b);
        assert!(!it.next());
        assert!(matches!(it.err(), Some(Error::Corruption { .. })));
    }
}

#[test]
fn timestamp_buckets_and_extremes() {
    // Deltas chosen to hit every dod bucket boundary, both signs, and the 64-bit fallback.
    let mut ts = vec![i64::MIN, i64::MIN + 1, i64::MIN + 2];
    let mut t = 0i64;
    for d in [
        15_000,
        15_000,
        15_001,
        14_999,
        8192,
        16_384,
        8193,
        65_536,
        1,
        65_537,
        524_288,
        1,
        524_289,
        1 << 40,
        1,
        1 << 62,
        1,
    ] {
        t += d;
        ts.push(t);
    }
    ts.push(i64::MAX - 1);
    ts.push(i64::MAX);
    let samples: Vec<(i64, f64)> = ts.iter().map(|&t| (t, t as f64)).collect();
    let c = encode(&samples);
    assert_eq!(decode(c.bytes()).unwrap(), bits(&samples));
}

#[test]
fn every_prefix_is_decodable() {
    let mut c = XorChunk::new();
    let mut want = Vec::new();
    for i in 0..300i64 {
        let v = if i % 7 == 0 {
            f64::NAN
        } else {
            (i * i) as f64 / 3.0
        };
        c.append(i * 1000 + (i % 3), v);
        want.push((i * 1000 + (i % 3), v.to_bits()));
        assert_eq!(decode(c.bytes()).unwrap(), want);
    }
}

#[test]
fn from_bytes_resumes_appending() {
    let samples: Vec<(i64, f64)> = (0..50)
        .map(|i| (i * 15_000, (i % 5) as f64 * 0.1))
        .collect();
    for split in [0, 1, 2, 3, 17, 50] {
        let head = encode(&samples[..split]);
        let mut resumed = XorChunk::from_bytes(head.bytes()).unwrap();
        for &(t, v) in &samples[split..] {
            resumed.append(t, v);
        }
        assert_eq!(
            resumed.bytes(),
            encode(&samples).bytes(),
            "split at {split}"
        );
    }
    assert!(XorChunk::from_bytes(&[5, 0, 1]).is_err());
}

#[test]
fn seek_and_reset() {
    let samples: Vec<(i64, f64)> = (0..100).map(|i| (i * 10, i as f64)).collect();
    let c = encode(&samples);
    let mut it = c.iter();
    assert!(it.seek(55));
    assert_eq!(it.at(), (60, 6.0));
    assert!(it.seek(60), "seek to the current time stays put");
    assert_eq!(it.at(), (60, 6.0));
    assert!(it.seek(10), "seek backwards stays put");
    assert_eq!(it.at(), (60, 6.0));
    assert!(it.next());
    assert_eq!(it.at(), (70, 7.0));
    assert!(!it.seek(991));
    assert!(it.err().is_none());

    let other = encode(&[(5, 1.5)]);
    it.reset(other.bytes());
    assert!(it.next());
    assert_eq!(it.at(), (5, 1.5));
    assert!(!it.next());
}

#[test]
fn truncation_is_always_detected() {
    let samples: Vec<(i64, f64)> = (0..120)
        .map(|i| (i * 15_000 + i % 2, i as f64 * 1.5))
        .collect();
    let c = encode(&samples);
    for len in 0..c.bytes().len() {
        let mut out = Vec::new();
        let r = decode_into(&mut out, &c.bytes()[..len]);
        assert!(
            matches!(r, Err(Error::Corruption { .. })),
            "truncated to {len} bytes gave {r:?}"
        );
        assert!(out.len() < samples.len());
        assert_eq!(
            bits(&out),
            bits(&samples[..out.len()]),
            "prefix before corruption"
        );
    }
}

#[test]
fn bit_flips_never_panic() {
    let samples: Vec<(i64, f64)> = (0..60).map(|i| (i * 15_000, (i as f64).sin())).collect();
    let c = encode(&samples);
    let mut buf = c.bytes().to_vec();
    for i in 0..buf.len() * 8 {
        buf[i / 8] ^= 1 << (i % 8);
        let mut out = Vec::new();
        let _ = decode_into(&mut out, &buf);
        assert!(out.len() <= u16::MAX as usize);
        buf[i / 8] ^= 1 << (i % 8);
    }
}

#[test]
#[should_panic(expected = "BUG: XOR chunk append")]
fn non_increasing_append_is_a_bug() {
    let mut c = XorChunk::new();
    c.append(10, 1.0);
    c.append(10, 2.0);
}

fn timestamps() -> impl Strategy<Value = Vec<i64>> {
    let delta = prop_oneof![
        4 => Just(15_000i64),
        4 => 14_000i64..16_000,
        2 => 1i64..1_000_000,
        1 => 1i64..i64::MAX / 4,
    ];
    (any::<i64>(), proptest::collection::vec(delta, 0..300)).prop_map(|(start, deltas)| {
        let mut t = start / 2;
        let mut out = vec![t];
        for d in deltas {
            match t.checked_add(d) {
                Some(n) => {
                    t = n;
                    out.push(t);
                }
                None => break,
            }
        }
        out
    })
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => (0u32..1000).prop_map(|i| i as f64),
        2 => -1e6f64..1e6,
        2 => any::<u64>().prop_map(f64::from_bits),
        1 => proptest::sample::select(special_values()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn round_trip(ts in timestamps(), vals in proptest::collection::vec(value(), 301)) {
        let samples: Vec<(i64, f64)> = ts.iter().zip(&vals).map(|(&t, &v)| (t, v)).collect();
        let c = encode(&samples);
        prop_assert_eq!(decode(c.bytes()).unwrap(), bits(&samples));
        // The encoder's last sample is the last one decoded, bit for bit.
        let last = c.last().map(|(t, v)| (t, v.to_bits()));
        prop_assert_eq!(last, bits(&samples).last().copied());
        let mut it = c.iter();
        if let Some(&(t, _)) = samples.get(samples.len() / 2) {
            prop_assert!(it.seek(t));
            prop_assert_eq!(it.at().0, t);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut out = Vec::new();
        let _ = decode_into(&mut out, &bytes);
        let mut it = XorIterator::new(&bytes);
        while it.next() {}
        let _ = it.seek(i64::MAX);
    }

    /// The one-word fast path of `next` decodes exactly what the field-by-field path does,
    /// including where and how corrupt or truncated bytes fail.
    #[test]
    fn fast_path_equals_general_path(
        ts in timestamps(),
        vals in proptest::collection::vec(value(), 301),
        flips in proptest::collection::vec(any::<usize>(), 0..3),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let samples: Vec<(i64, f64)> = ts.iter().zip(&vals).map(|(&t, &v)| (t, v)).collect();
        let mut bytes = encode(&samples).bytes().to_vec();
        for f in flips {
            let bit = f % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
        }
        if let Some(c) = cut {
            bytes.truncate(c % (bytes.len() + 1));
        }
        let (fast, general) = decode_both_ways(&bytes);
        prop_assert_eq!(fast, general);
    }

    #[test]
    fn fast_path_equals_general_path_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let (fast, general) = decode_both_ways(&bytes);
        prop_assert_eq!(fast, general);
    }
}

type Decoded = (Vec<(i64, u64)>, Option<String>, usize);

/// `bytes` decoded through `next` and through the general path alone: samples, the error and
/// the bits read.
fn decode_both_ways(bytes: &[u8]) -> (Decoded, Decoded) {
    let run = |fast: bool| {
        let mut it = XorIterator::new(bytes);
        let mut out = Vec::new();
        while if fast { it.next() } else { it.next_general() } {
            out.push((it.at().0, it.at().1.to_bits()));
        }
        let err = it.err().map(|e| e.to_string());
        (out, err, it.bits_read())
    };
    (run(true), run(false))
}

/// The sample count lives only in the header, and the first and last timestamps are read from
/// the chunk: a chunk re-opened from its bytes answers as the one that wrote them.
#[test]
fn count_and_time_range_come_from_the_chunk() {
    let check = |samples: &[(i64, f64)]| {
        let c = encode(samples);
        let want_range = (samples.first().map(|s| s.0), samples.last().map(|s| s.0));
        assert_eq!(c.num_samples(), samples.len());
        assert_eq!((c.first_t(), c.last_t()), want_range);
        let r = XorChunk::from_bytes(c.bytes()).unwrap();
        assert_eq!(r.num_samples(), samples.len());
        assert_eq!((r.first_t(), r.last_t()), want_range);
        let last = |c: &XorChunk| c.last().map(|(t, v)| (t, v.to_bits()));
        assert_eq!(last(&c), bits(samples).last().copied());
        assert_eq!(last(&r), bits(samples).last().copied());
    };
    check(&[]);
    check(&[(i64::MIN, 1.0)]);
    check(&[(-5, 1.0), (7, 2.0)]);
    check(&[(1000, 1.0), (2000, 2.0), (2500, f64::NAN)]);
    let many: Vec<(i64, f64)> = (0..300).map(|i| (i * 15_000, i as f64)).collect();
    check(&many);
}

/// `reserve_samples` sizes the buffer from the bytes per sample so far (nothing before
/// `RESERVE_AFTER` samples), appends then fit without growing when the rate holds, and
/// `shrink_to_fit` gives the rest back; the bytes are those of a chunk never reserved.
#[test]
fn reserve_samples_then_shrink_keeps_the_bytes() {
    let samples: Vec<(i64, f64)> = (0..120).map(|i| (i * 15_000, (i % 7) as f64)).collect();
    let plain = encode(&samples);
    let mut c = XorChunk::new();
    c.reserve_samples(100);
    assert_eq!(c.heap_bytes(), XorChunk::new().heap_bytes(), "no rate yet");
    for &(t, v) in &samples[..20] {
        c.append(t, v);
    }
    c.reserve_samples(100);
    let reserved = c.heap_bytes();
    assert!(
        reserved >= plain.bytes().len(),
        "{reserved} < {}",
        plain.bytes().len()
    );
    for &(t, v) in &samples[20..] {
        c.append(t, v);
    }
    assert_eq!(c.heap_bytes(), reserved, "grew after reserving");
    c.shrink_to_fit();
    assert_eq!(c.heap_bytes(), c.bytes().len());
    assert_eq!(c.bytes(), plain.bytes());
    c.append(120 * 15_000, 1.0);
    assert_eq!(c.num_samples(), 121);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// A cleared chunk (replay's cut that keeps the buffer) writes the bytes a new chunk
    /// writes, whatever the chunk held before, and keeps its buffer's capacity.
    #[test]
    fn a_cleared_chunk_writes_what_a_new_one_writes(
        before in timestamps(),
        after in timestamps(),
        vals in proptest::collection::vec(value(), 301),
    ) {
        let first: Vec<(i64, f64)> = before.iter().zip(&vals).map(|(&t, &v)| (t, v)).collect();
        let next: Vec<(i64, f64)> = after.iter().zip(vals.iter().rev()).map(|(&t, &v)| (t, v)).collect();
        let mut c = encode(&first);
        let cap = c.heap_bytes();
        c.clear();
        prop_assert_eq!(c.heap_bytes(), cap);
        let empty = XorChunk::new();
        prop_assert_eq!(c.bytes(), empty.bytes());
        prop_assert_eq!((c.num_samples(), c.last_t(), c.first_t()), (0, None, None));
        for &(t, v) in &next {
            c.append(t, v);
        }
        let fresh = encode(&next);
        prop_assert_eq!(c.bytes(), fresh.bytes());
        prop_assert_eq!(decode(c.bytes()).unwrap(), bits(&next));
    }
}

/// `reopen_grown`'s answer is `from_bytes`'s: the encoder state, the bytes, and what the
/// next append writes.
fn same_reopened(a: &XorChunk, b: &XorChunk) -> std::result::Result<(), TestCaseError> {
    prop_assert_eq!(a.bytes(), b.bytes());
    prop_assert_eq!(
        (a.t, a.t_delta, a.free_bits()),
        (b.t, b.t_delta, b.free_bits())
    );
    prop_assert_eq!((a.v, a.leading, a.trailing), (b.v, b.leading, b.trailing));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    /// A chunk grown from a shorter one (a head snapshot delta's open chunk) reopens from the
    /// shorter one's state as `from_bytes` reopens it from the start; bytes that do not start
    /// with the shorter chunk's bits, and cut bytes, are read as `from_bytes` reads them.
    #[test]
    fn a_grown_chunk_reopens_from_the_shorter_ones_state(
        ts in timestamps(),
        vals in proptest::collection::vec(value(), 301),
        split in 0.0f64..1.0,
        flip in any::<usize>(),
        cut in any::<usize>(),
    ) {
        let samples: Vec<(i64, f64)> = ts.iter().zip(&vals).map(|(&t, &v)| (t, v)).collect();
        let k = ((samples.len() as f64 * split) as usize).min(samples.len());
        let short = encode(&samples[..k]);
        let grown = encode(&samples);
        let whole = XorChunk::from_bytes(grown.bytes()).unwrap();
        let mut after = short.reopen_grown(grown.bytes()).unwrap();
        same_reopened(&after, &whole)?;
        if let Some(&(t, _)) = samples.last() {
            let mut whole = whole;
            if t < i64::MAX {
                after.append(t + 1, 0.5);
                whole.append(t + 1, 0.5);
                prop_assert_eq!(after.bytes(), whole.bytes());
            }
        }
        // A bit flipped past the header: where it falls in the shorter chunk's bits, the
        // bytes are read whole; either way the answer is `from_bytes`'s.
        let mut other = grown.bytes().to_vec();
        if other.len() > HEADER_LEN {
            let i = HEADER_LEN + flip % (other.len() - HEADER_LEN);
            other[i] ^= 1 << (flip % 8);
            match (short.reopen_grown(&other), XorChunk::from_bytes(&other)) {
                (Ok(a), Ok(b)) => same_reopened(&a, &b)?,
                (Err(_), Err(_)) => {}
                (a, b) => prop_assert!(false, "flip at {}: {:?} against {:?}", i, a.is_ok(), b.is_ok()),
            }
        }
        // Cut bytes (the header still counting every sample) fail as `from_bytes` fails.
        let cut = cut % (grown.bytes().len() + 1);
        let cut_bytes = &grown.bytes()[..cut];
        prop_assert_eq!(
            short.reopen_grown(cut_bytes).is_ok(),
            XorChunk::from_bytes(cut_bytes).is_ok()
        );
    }
}
