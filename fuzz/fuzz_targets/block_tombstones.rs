//! Fuzz the block `tombstones` file decoder: arbitrary bytes must give an error or intervals,
//! never a panic; encoded intervals must decode to the same merged intervals.
#![no_main]

use arbitrary::Arbitrary;
use argus_storage::internals::{tombstones_decode, tombstones_encode};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input {
    Bytes(Vec<u8>),
    Intervals(Vec<(u32, i64, i64)>),
}

fuzz_target!(|input: Input| match input {
    Input::Bytes(bytes) => {
        if let Ok(list) = tombstones_decode(&bytes) {
            assert!(list.iter().all(|&(_, a, b)| a <= b));
            // What decodes re-encodes to a file that decodes the same.
            let again = tombstones_decode(&tombstones_encode(&list)).expect("own encoding");
            assert_eq!(again, list);
        }
    }
    Input::Intervals(raw) => {
        let list: Vec<(u32, i64, i64)> = raw
            .into_iter()
            .map(|(id, a, b)| (id, a.min(b), a.max(b)))
            .collect();
        let decoded = tombstones_decode(&tombstones_encode(&list)).expect("own encoding");
        for &(id, a, b) in &list {
            // The midpoint in i128: `a / 2 + b / 2` leaves [a, b] for a = b = -1.
            let mid = ((i128::from(a) + i128::from(b)) / 2) as i64;
            for t in [a, b, mid] {
                assert!(
                    decoded.iter().any(|&(i, x, y)| i == id && x <= t && t <= y),
                    "{id} {t} lost"
                );
            }
        }
    }
});
