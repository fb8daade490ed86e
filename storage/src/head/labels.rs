//! The label set of a head series, packed into one string.
//!
//! A head series used to hold its labels as interned `(Arc<str>, Arc<str>)` pairs: 32 bytes of
//! fat pointers per pair, 138 bytes for the 4.3 pairs of a typical scraped series, plus the
//! shared strings and a set to intern them. [`SeriesLabels`] holds the pairs' bytes once, in one
//! allocation, which for the same series is about 75 bytes (`benches/README.md`, "headmem").
//!
//! Layout, pair after pair in name order:
//!
//! ```text
//! pair   := name value
//! name   := len6(WELL_KNOWN.len() + byte length) bytes | len6(index into WELL_KNOWN)
//! value  := len6(byte length) bytes
//! len6   := little-endian groups of 6 bits, one byte each: bit 6 set = more bytes follow
//! ```
//!
//! Every length byte is below 0x80, so the whole is valid UTF-8 and a `str`: names and values
//! are sliced out of it without a UTF-8 check. Names that every scraped series carries
//! ([`WELL_KNOWN`]) take one byte instead of their text.

use crate::model::{Label, Labels};
use std::cmp::Ordering;
use std::fmt;

/// Names coded as one byte (their index); other names' lengths are offset by this table's size.
const WELL_KNOWN: [&str; 3] = ["__name__", "instance", "job"];

/// Payload bits per length byte.
const LEN_BITS: u32 = 6;
/// Set in a length byte when more follow.
const MORE: u8 = 0x40;

/// The sorted label pairs of a head series (see the module docs). Immutable.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SeriesLabels(Box<str>);

impl SeriesLabels {
    /// Packs `labels` (sorted, unique names, as [`Labels`] guarantees).
    pub(crate) fn new(labels: &Labels) -> Self {
        Self::from_pairs(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }

    /// Packs pairs given in name order.
    pub(crate) fn from_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Self {
        let size: usize = pairs.clone().map(|(n, v)| n.len() + v.len() + 2).sum();
        let mut s = String::with_capacity(size);
        for (n, v) in pairs {
            match WELL_KNOWN.iter().position(|w| *w == n) {
                Some(i) => put_len(&mut s, i),
                None => {
                    put_len(&mut s, WELL_KNOWN.len() + n.len());
                    s.push_str(n);
                }
            }
            put_len(&mut s, v.len());
            s.push_str(v);
        }
        Self(s.into_boxed_str())
    }

    /// The pairs `(name, value)`, in name order.
    pub(crate) fn iter(&self) -> Pairs<'_> {
        Pairs { rest: &self.0 }
    }

    /// Heap bytes of the packed string.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.len()
    }

    /// True when `labels` holds exactly these pairs.
    pub(crate) fn eq_labels(&self, labels: &Labels) -> bool {
        let mut mine = self.iter();
        for l in labels.iter() {
            match mine.next() {
                Some((n, v)) if n == l.name && v == l.value => {}
                _ => return false,
            }
        }
        mine.next().is_none()
    }

    /// [`Labels::stable_hash`] of the pairs.
    pub(crate) fn stable_hash(&self) -> u64 {
        crate::model::stable_hash_pairs(self.iter())
    }

    /// Writes the pairs into `out`, reusing its allocations where it can.
    pub(crate) fn to_labels(&self, out: &mut Labels) {
        let mut v = std::mem::take(out).into_vec();
        v.clear();
        v.extend(self.iter().map(|(n, val)| Label::new(n, val)));
        *out = Labels::from_sorted(v);
    }
}

/// Appends `x` as [`LEN_BITS`]-bit groups, low first.
fn put_len(s: &mut String, mut x: usize) {
    loop {
        let low = (x & ((1 << LEN_BITS) - 1)) as u8;
        x >>= LEN_BITS;
        if x == 0 {
            s.push(char::from(low));
            return;
        }
        s.push(char::from(low | MORE));
    }
}

/// Iterator over the pairs of a [`SeriesLabels`].
#[derive(Clone)]
pub(crate) struct Pairs<'a> {
    rest: &'a str,
}

impl<'a> Pairs<'a> {
    /// Reads a length from the front of `rest`.
    fn len(&mut self) -> usize {
        let mut x = 0usize;
        let mut shift = 0;
        for (i, b) in self.rest.bytes().enumerate() {
            x |= usize::from(b & (MORE - 1)) << shift;
            shift += LEN_BITS;
            if b & MORE == 0 {
                self.rest = self.rest.get(i + 1..).unwrap_or_else(|| bug());
                return x;
            }
        }
        bug()
    }

    /// Takes `n` bytes from the front of `rest`.
    fn take(&mut self, n: usize) -> &'a str {
        match (self.rest.get(..n), self.rest.get(n..)) {
            (Some(a), Some(b)) => {
                self.rest = b;
                a
            }
            _ => bug(),
        }
    }
}

#[cold]
fn bug() -> ! {
    unreachable!("BUG: packed series labels are malformed")
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let code = self.len();
        let name = match WELL_KNOWN.get(code) {
            Some(w) => w,
            None => self.take(code - WELL_KNOWN.len()),
        };
        let vlen = self.len();
        Some((name, self.take(vlen)))
    }
}

/// The order of [`Labels`]: pair by pair, name then value, a prefix first.
impl Ord for SeriesLabels {
    fn cmp(&self, other: &Self) -> Ordering {
        self.iter().cmp(other.iter())
    }
}

impl PartialOrd for SeriesLabels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for SeriesLabels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs)
    }

    #[test]
    fn packs_and_unpacks() {
        let check = |pairs: &[(&str, &str)], want_bytes: usize| {
            let l = labels(pairs);
            let p = SeriesLabels::new(&l);
            let got: Vec<(&str, &str)> = p.iter().collect();
            let want: Vec<(&str, &str)> = l
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str()))
                .collect();
            assert_eq!(got, want);
            assert_eq!(p.iter().count(), l.len());
            assert!(p.eq_labels(&l));
            assert_eq!(p.heap_bytes(), want_bytes, "{pairs:?}");
            let mut out = labels(&[("x", "y"), ("z", "w")]);
            p.to_labels(&mut out);
            assert_eq!(out, l);
        };
        check(&[], 0);
        // Well-known names take one byte; lengths below 64 one byte.
        check(
            &[("__name__", "up"), ("instance", "a:1"), ("job", "node")],
            15,
        );
        check(
            &[("cpu", "0"), ("mode", "idle")],
            1 + 3 + 1 + 1 + 1 + 4 + 1 + 4,
        );
        // Lengths of 64 and more take more bytes; any UTF-8 and NUL in values.
        let long = "v".repeat(5000);
        check(
            &[("a", &long), ("b", "\0é😀")],
            1 + 1 + 3 + 5000 + 1 + 1 + 1 + 7,
        );
        let long_name = "n".repeat(61);
        check(&[(long_name.as_str(), "x")], 2 + 61 + 1 + 1);
    }

    #[test]
    fn compares_like_labels() {
        let l = labels(&[("__name__", "up"), ("job", "a")]);
        let p = SeriesLabels::new(&l);
        assert!(!p.eq_labels(&labels(&[("__name__", "up")])));
        assert!(!p.eq_labels(&labels(&[("__name__", "up"), ("job", "b")])));
        assert!(!p.eq_labels(&labels(&[("__name__", "up"), ("job", "a"), ("z", "1")])));
        assert_eq!(format!("{p:?}"), r#"{"__name__": "up", "job": "a"}"#);
    }

    fn arb_labels() -> impl Strategy<Value = Labels> {
        let name = prop_oneof![
            Just("__name__".to_string()),
            Just("job".to_string()),
            Just("instance".to_string()),
            "[a-z_]{1,70}",
        ];
        prop::collection::vec((name, "\\PC{1,80}"), 0..6).prop_map(|v| Labels::from_pairs(&v))
    }

    proptest! {
        #[test]
        fn round_trip_and_order(a in arb_labels(), b in arb_labels()) {
            let (pa, pb) = (SeriesLabels::new(&a), SeriesLabels::new(&b));
            let mut out = Labels::empty();
            pa.to_labels(&mut out);
            prop_assert_eq!(&out, &a);
            prop_assert!(pa.eq_labels(&a));
            prop_assert_eq!(pa.eq_labels(&b), a == b);
            prop_assert_eq!(pa.cmp(&pb), a.cmp(&b));
            prop_assert_eq!(pa.stable_hash(), a.stable_hash());
        }
    }
}
