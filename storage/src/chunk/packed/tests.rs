#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use super::*;
use crate::chunk::{ChunkIterator, Encoding};
use crate::model::STALE_NAN_BITS;
use proptest::prelude::*;

fn bits(s: &[(i64, f64)]) -> Vec<(i64, u64)> {
    s.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

fn packed(samples: &[(i64, f64)]) -> Vec<u8> {
    let mut b = vec![];
    encode_into(samples, &mut b);
    b
}

fn decoded(bytes: &[u8]) -> Vec<(i64, u64)> {
    let mut out = Vec::new();
    decode_into(&mut out, bytes).unwrap();
    bits(&out)
}

fn scrape_times(n: usize) -> Vec<i64> {
    (0..n as i64)
        .map(|i| 1_700_000_000_000 + i * 15_000 + (i * 7) % 5)
        .collect()
}

#[test]
fn counters_gauges_constants_round_trip_and_shrink() {
    let ts = scrape_times(120);
    let check = |name: &str, vals: Vec<f64>, max_bytes: usize| {
        let s: Vec<(i64, f64)> = ts.iter().copied().zip(vals).collect();
        let b = packed(&s);
        assert_eq!(decoded(&b), bits(&s), "{name}");
        let mut xor = XorChunk::new();
        s.iter().for_each(|&(t, v)| xor.append(t, v));
        assert!(
            b.len() <= max_bytes,
            "{name}: {} bytes (xor {})",
            b.len(),
            xor.bytes().len()
        );
        assert!(
            b.len() < xor.bytes().len(),
            "{name}: {} >= xor {}",
            b.len(),
            xor.bytes().len()
        );
    };
    check("constant", vec![42.0; 120], 120 * 4 / 8 + 30);
    check(
        "counter",
        (0..120)
            .map(|i| (1000 + i * i % 97 + i * 50) as f64)
            .collect(),
        250,
    );
    check(
        "gauge 1dp",
        (0..120)
            .map(|i| (200 + (i * 37) % 21) as f64 / 10.0)
            .collect(),
        200,
    );
    check(
        "negative 3dp",
        (0..120)
            .map(|i| -((i * 7919) % 1000) as f64 / 1000.0)
            .collect(),
        250,
    );
}

#[test]
fn special_floats_round_trip_and_pick_the_smaller_encoding() {
    let ts = scrape_times(5);
    for v in [
        f64::NAN,
        f64::from_bits(STALE_NAN_BITS),
        -0.0,
        f64::INFINITY,
        0.1 + 0.2,
        1e300,
        f64::from_bits(1),
    ] {
        let s: Vec<(i64, f64)> = ts.iter().map(|&t| (t, v)).collect();
        assert_eq!(decoded(&packed(&s)), bits(&s), "{v:?}");
        let mut b = Vec::new();
        let enc = encode_best(&s, &mut b);
        let mut xor = XorChunk::new();
        s.iter().for_each(|&(t, v)| xor.append(t, v));
        assert!(b.len() <= xor.bytes().len(), "{v:?}: never larger than XOR");
        let mut out = Vec::new();
        crate::chunk::decode_into(enc, &mut out, &b).unwrap();
        assert_eq!(bits(&out), bits(&s));
    }
}

#[test]
fn noisy_floats_beat_xor() {
    // A float counter with irregular increments and a gauge with noise: no decimal form, so
    // the float kinds are used; they must still be smaller than Gorilla XOR.
    let ts = scrape_times(240);
    let mut x = 1000.0_f64;
    let counter: Vec<(i64, f64)> = ts
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            x += 0.3 + ((i * 7919) % 1000) as f64 / 3e3 + 1.0 / 7.0;
            (t, x)
        })
        .collect();
    let gauge: Vec<(i64, f64)> = ts
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            (
                t,
                40.0 + (i as f64 / 9.0).sin() * 8.0 + 1.0 / (i as f64 + 3.0),
            )
        })
        .collect();
    for (name, s) in [("counter", counter), ("gauge", gauge)] {
        let b = packed(&s);
        assert_eq!(decoded(&b), bits(&s), "{name}");
        let mut xor = XorChunk::new();
        s.iter().for_each(|&(t, v)| xor.append(t, v));
        assert!(
            b.len() < xor.bytes().len(),
            "{name}: packed {} >= xor {}",
            b.len(),
            xor.bytes().len()
        );
    }
}

#[test]
fn common_factor_of_steps_is_divided_out() {
    // Memory gauges move in whole pages or allocator steps: multiples of 250 000.
    let s: Vec<(i64, f64)> = (0..120)
        .map(|i| (i * 15_000, 4e8 + ((i * 5) % 7) as f64 * 250_000.0))
        .collect();
    let b = packed(&s);
    assert_eq!(decoded(&b), bits(&s));
    // Regular timestamps cost only group headers; 119 steps of 4 bits each plus headers.
    // Without the divisor each step would need 23 bits.
    assert!(b.len() < 90, "{} bytes", b.len());
}

#[test]
fn an_outlier_widens_only_its_group() {
    let ts = scrape_times(160);
    let mut s: Vec<(i64, f64)> = ts
        .iter()
        .enumerate()
        .map(|(i, &t)| (t, (i % 3) as f64))
        .collect();
    let narrow = packed(&s).len();
    // One wild value: the steps into and out of it are wide, widening at most the two groups
    // holding them (16 codes of 42 bits each) instead of the whole chunk.
    s[80].1 = 1e12;
    let wide = packed(&s);
    assert_eq!(decoded(&wide), bits(&s));
    assert!(
        wide.len() <= narrow + 2 * 16 * 42 / 8,
        "{} vs {narrow}",
        wide.len()
    );
}

#[test]
fn small_and_irregular_chunks() {
    let check = |s: &[(i64, f64)]| {
        let b = packed(s);
        assert_eq!(decoded(&b), bits(s), "{s:?}");
    };
    check(&[]);
    check(&[(5, 1.0)]);
    check(&[(i64::MIN, 0.0), (i64::MAX, 1.0)]);
    check(&[
        (0, 1.0),
        (1, 2.0),
        (1 << 40, 3.0),
        (1 << 41, -7.5),
        ((1 << 41) + 1, 1e12),
    ]);
    check(&[(0, 1.0), (15_000, 1.0), (45_000, 1.0), (60_000, 0.0)]); // missed scrape, reset
}

#[test]
fn corruption_is_an_error() {
    let ts = scrape_times(120);
    let s: Vec<(i64, f64)> = ts.iter().map(|&t| (t, (t % 1000) as f64 / 10.0)).collect();
    let b = packed(&s);
    for len in 0..b.len() {
        let mut out = vec![(1, 1.0)];
        assert!(
            decode_into(&mut out, &b[..len]).is_err(),
            "truncated to {len}"
        );
        assert_eq!(out, vec![(1, 1.0)], "dst restored");
    }
    let mut buf = b.clone();
    for i in 0..buf.len() * 8 {
        buf[i / 8] ^= 1 << (i % 8);
        let mut it = PackedIterator::new(&buf);
        while it.next() {}
        buf[i / 8] ^= 1 << (i % 8);
    }
}

#[test]
fn iterator_seek_and_reset_across_encodings() {
    let s: Vec<(i64, f64)> = (0..100).map(|i| (i * 10, i as f64)).collect();
    let mut d = Vec::new();
    assert_eq!(encode_best(&s, &mut d), Encoding::Packed);
    let mut x = XorChunk::new();
    s.iter().for_each(|&(t, v)| x.append(t, v));
    let mut it = ChunkIterator::new(Encoding::Packed, &d);
    assert!(it.seek(55));
    assert_eq!(it.at(), (60, 6.0));
    assert!(it.seek(10));
    assert_eq!(it.at(), (60, 6.0));
    assert!(it.next());
    assert_eq!(it.at(), (70, 7.0));
    assert!(!it.seek(1000));
    it.reset(Encoding::Xor, x.bytes());
    assert!(it.next());
    assert_eq!(it.at(), (0, 0.0));
    it.reset(Encoding::Packed, &d);
    let mut n = 0;
    while it.next() {
        n += 1;
    }
    assert_eq!(n, 100);
    assert!(it.err().is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn round_trip(
        start in any::<i64>(),
        deltas in proptest::collection::vec(prop_oneof![Just(15_000i64), 14_990i64..15_010, 1i64..1 << 40], 0..200),
        vals in proptest::collection::vec(prop_oneof![
            (-1_000_000i64..1_000_000, 0u32..4).prop_map(|(m, k)| m as f64 / 10f64.powi(k as i32)),
            any::<u64>().prop_map(f64::from_bits),
            Just(0.0),
        ], 200),
    ) {
        let mut t = start / 2;
        let mut s = Vec::new();
        for (i, d) in deltas.iter().enumerate() {
            s.push((t, vals[i]));
            match t.checked_add(*d) { Some(n) => t = n, None => break }
        }
        let mut b = Vec::new();
        let enc = encode_best(&s, &mut b);
        let mut out = Vec::new();
        crate::chunk::decode_into(enc, &mut out, &b).unwrap();
        prop_assert_eq!(bits(&out), bits(&s));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut out = Vec::new();
        let _ = decode_into(&mut out, &bytes);
        prop_assert!(out.len() <= usize::from(u16::MAX));
    }

    /// `append_floats` from any sample up to any `maxt` yields what `at`/`next` yield, stops
    /// on the first sample past `maxt`, and on corrupt bytes ends with the same prefix and
    /// error, for both float encodings.
    #[test]
    fn append_floats_equals_the_cursor(
        n in 1usize..300,
        from in 0usize..300,
        cut in 0usize..320,
        noisy in any::<bool>(),
        flip in proptest::option::of(0usize..4000),
    ) {
        let ts = scrape_times(n);
        let s: Vec<(i64, f64)> = ts
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, if noisy { (i as f64 * 0.37).sin() } else { (i / 3) as f64 }))
            .collect();
        let mut x = XorChunk::new();
        s.iter().for_each(|&(t, v)| x.append(t, v));
        let mut p = Vec::new();
        let enc = encode_best(&s, &mut p);
        let maxt = ts.first().unwrap() + cut as i64 * 15_000 - 1;
        let seek = ts[from.min(n - 1)];
        for (enc, bytes) in [(Encoding::Xor, x.bytes().to_vec()), (enc, p)] {
            let mut bytes = bytes;
            if let Some(f) = flip.filter(|f| f / 8 < bytes.len()) {
                bytes[f / 8] ^= 1 << (f % 8);
            }
            let mut want = Vec::new();
            let mut it = ChunkIterator::new(enc, &bytes);
            let mut ok = it.seek(seek);
            while ok && it.at().0 <= maxt {
                want.push(it.at());
                ok = it.next();
            }
            let want_next = ok.then(|| it.at());
            let want_err = it.err().map(|e| e.to_string());

            let mut got = vec![(-1, -1.0)];
            let mut it = ChunkIterator::new(enc, &bytes);
            let stopped = it.seek(seek) && it.append_floats(maxt, &mut got);
            prop_assert_eq!(bits(&got[1..]), bits(&want));
            prop_assert_eq!(stopped, want_next.is_some());
            if let Some(next) = want_next {
                prop_assert_eq!(it.at().0, next.0);
                prop_assert_eq!(it.at().1.to_bits(), next.1.to_bits());
            }
            prop_assert_eq!(it.err().map(|e| e.to_string()), want_err);
        }
    }
}
