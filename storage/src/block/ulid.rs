//! Block ids: 26-character Crockford base32 of 48 bits of milliseconds and 80 random bits, so
//! ids sort by creation time (ULID layout).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new id for a block created now.
pub(crate) fn new_ulid() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ms = now.as_millis() as u64 & ((1 << 48) - 1);
    // splitmix64 over time, pid and a process counter: unique enough for directory names, and
    // ids created in the same millisecond by one process never collide.
    let mut x = (now.as_nanos() as u64)
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next = || {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let rand: u128 = (u128::from(next()) << 64 | u128::from(next())) & ((1u128 << 80) - 1);
    encode(u128::from(ms) << 80 | rand)
}

/// Crockford base32 of a 128-bit value, 26 characters (the first holds 3 bits).
fn encode(v: u128) -> String {
    (0..26)
        .map(|i| {
            let shift = 5 * (25 - i);
            char::from(ALPHABET[((v >> shift) & 31) as usize])
        })
        .collect()
}

/// True when `s` looks like a block id.
pub(crate) fn is_ulid(s: &str) -> bool {
    s.len() == 26 && s.bytes().all(|b| ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_unique_and_time_ordered() {
        let a = new_ulid();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_ulid();
        let c = new_ulid();
        assert!(is_ulid(&a) && is_ulid(&b), "{a} {b}");
        assert!(a < b, "{a} !< {b}");
        assert_ne!(b, c);
        assert_eq!(encode(0), "0".repeat(26));
        assert!(!is_ulid("wal"));
    }
}
