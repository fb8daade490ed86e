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
//! pair   := name value | symbol
//! name   := len6(2 * WELL_KNOWN.len() + byte length) bytes | len6(index into WELL_KNOWN)
//! value  := len6(byte length) bytes
//! symbol := len6(WELL_KNOWN.len() + index into WELL_KNOWN) len6(id in the symbol table)
//! len6   := little-endian groups of 6 bits, one byte each: bit 6 set = more bytes follow
//! ```
//!
//! Every length byte is below 0x80, so the whole is valid UTF-8 and a `str`: names and values
//! are sliced out of it without a UTF-8 check. Names that every scraped series carries
//! ([`WELL_KNOWN`]) take one byte instead of their text, and the values of `__name__` and `job`,
//! which many series repeat, are ids in the process-wide [`super::symbols`] table (1–3 bytes
//! instead of their text; the text when the table is full; see [`INTERNED`]). This is an
//! in-memory layout only: the WAL, snapshots and blocks write the values.

use super::symbols::symbols;
use crate::model::{Label, Labels};
use std::cmp::Ordering;
use std::fmt;

/// Names coded as one byte (their index, or this table's size plus their index when the value
/// is a symbol id); other names' lengths are offset by twice this table's size.
const WELL_KNOWN: [&str; 3] = ["__name__", "instance", "job"];

/// Which [`WELL_KNOWN`] names have their values interned: a metric's name and a job are shared
/// by many series and take few values. `instance` is not: its values are as many as the targets
/// (or, pushed, the senders), and an id read through the table for each of them made selecting
/// 100,000 head series with 100,000 instances ~35 % slower (`head_select`, benches/README.md
/// "scrapemem3").
const INTERNED: [bool; 3] = [true, false, true];

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
        Self::pack(pairs, |v| symbols().intern(v))
    }

    /// Packs pairs given in name order, with the values of [`WELL_KNOWN`] names as the ids
    /// `intern` gives (ids of the process-wide table; `None` keeps the value's text).
    fn pack<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone,
        intern: impl Fn(&str) -> Option<u32>,
    ) -> Self {
        let size: usize = pairs.clone().map(|(n, v)| n.len() + v.len() + 2).sum();
        let mut s = String::with_capacity(size);
        for (n, v) in pairs {
            match WELL_KNOWN.iter().position(|w| *w == n) {
                Some(i) => {
                    if let Some(id) = INTERNED[i].then(|| intern(v)).flatten() {
                        put_len(&mut s, WELL_KNOWN.len() + i);
                        put_len(&mut s, id as usize);
                        continue;
                    }
                    put_len(&mut s, i);
                }
                None => {
                    put_len(&mut s, 2 * WELL_KNOWN.len() + n.len());
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

    /// Heap bytes of the packed string (not counting the shared symbol table).
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
    #[inline]
    fn len(&mut self) -> usize {
        // One byte for all but names and values of 64 bytes and more.
        if let Some(&b) = self.rest.as_bytes().first()
            && b & MORE == 0
        {
            self.rest = self.rest.get(1..).unwrap_or_else(|| bug());
            return usize::from(b);
        }
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

    /// Steps over the next pair without reading a symbol's value; false at the end.
    fn skip_pair(&mut self) -> bool {
        if self.rest.is_empty() {
            return false;
        }
        let code = self.len();
        if code >= 2 * WELL_KNOWN.len() {
            self.take(code - 2 * WELL_KNOWN.len());
        } else if code >= WELL_KNOWN.len() {
            self.len();
            return true;
        }
        let vlen = self.len();
        self.take(vlen);
        true
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
            None => match WELL_KNOWN.get(code - WELL_KNOWN.len()) {
                Some(w) => {
                    let id = u32::try_from(self.len()).unwrap_or_else(|_| bug());
                    return Some((w, symbols().get(id).unwrap_or_else(|| bug())));
                }
                None => self.take(code - 2 * WELL_KNOWN.len()),
            },
        };
        let vlen = self.len();
        Some((name, self.take(vlen)))
    }
}

impl SeriesLabels {
    /// The packed bytes.
    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The pairs from byte `at`, which must be a pair boundary.
    fn pairs_from(&self, at: usize) -> Pairs<'_> {
        Pairs {
            rest: self.0.get(at..).unwrap_or_else(|| bug()),
        }
    }

    /// The start of the pair that holds byte `at` (the length when `at` is at or past the end).
    fn pair_start(&self, at: usize) -> usize {
        let mut pairs = self.iter();
        let mut start = 0;
        while pairs.skip_pair() {
            let end = self.0.len() - pairs.rest.len();
            if end > at {
                return start;
            }
            start = end;
        }
        start
    }

    /// Eight bytes of the sort encoding of the pairs from pair boundary `at`, `skip` bytes in,
    /// as a number that compares as the bytes do (missing bytes are zero). The sort encoding
    /// writes each name and value with every byte plus one, then a zero: UTF-8 has no byte
    /// 0xFF, so it keeps the order of [`Labels`] (a shorter name or value, and a shorter set,
    /// sort first) byte for byte.
    fn sort_window(&self, at: usize, mut skip: usize) -> u64 {
        let mut key = 0u64;
        let mut n = 0u32;
        'pairs: for (name, value) in self.pairs_from(at) {
            for part in [name.as_bytes(), value.as_bytes()] {
                if skip > part.len() {
                    skip -= part.len() + 1;
                    continue;
                }
                let mapped = part.get(skip..).unwrap_or_default().iter().map(|b| b + 1);
                skip = 0;
                for b in mapped.chain(std::iter::once(0)) {
                    key = key << 8 | u64::from(b);
                    n += 1;
                    if n == 8 {
                        break 'pairs;
                    }
                }
            }
        }
        if n == 0 { 0 } else { key << (8 * (8 - n)) }
    }
}

/// The length of the common prefix of `a` and `b`, eight bytes at a time.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let mut n = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or_default());
        let diff = word(x) ^ word(y);
        if diff != 0 {
            return n + (diff.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    let (a, b) = (
        a.get(n..).unwrap_or_default(),
        b.get(n..).unwrap_or_default(),
    );
    n + a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The length of the common prefix of the sort encodings of two pairs (none when a set ends).
fn pair_common_prefix(a: Option<(&str, &str)>, b: Option<(&str, &str)>) -> usize {
    match (a, b) {
        (Some((an, av)), Some((bn, bv))) if an == bn => {
            an.len() + 1 + common_prefix(av.as_bytes(), bv.as_bytes())
        }
        (Some((an, _)), Some((bn, _))) => common_prefix(an.as_bytes(), bn.as_bytes()),
        _ => 0,
    }
}

/// The order of [`Labels`]: pair by pair, name then value, a prefix first.
///
/// Equal leading bytes are equal leading pairs (the packing is one-to-one and self-delimiting),
/// so the comparison skips them as whole words and decodes only the pair where the two differ.
impl Ord for SeriesLabels {
    fn cmp(&self, other: &Self) -> Ordering {
        let at = common_prefix(self.bytes(), other.bytes());
        if at == self.0.len() && at == other.0.len() {
            return Ordering::Equal;
        }
        let start = self.pair_start(at);
        self.pairs_from(start).cmp(other.pairs_from(start))
    }
}

/// Groups this small (or this deep in [`sort_by_labels`]) are sorted by comparisons.
const SORT_SMALL: usize = 16;
/// Levels of eight key bytes [`sort_by_labels`] goes down before it sorts by comparisons.
const SORT_DEPTH: u32 = 24;

/// Sorts `items` by the labels `get` returns, in the order of [`Labels`]; the `u64` of each item
/// is scratch space for its sort key. Allocates nothing.
///
/// Comparing label sets is the cost of sorting thousands of series that share their leading
/// pairs (every series of a metric shares `__name__`, most share the next name). This sorts by
/// eight-byte keys instead, taken where the sets first differ: the common prefix is found by
/// comparing packed bytes, the keys are read from the sort encoding ([`SeriesLabels::sort_window`])
/// from there, and each run of equal keys is sorted the same way, from where its own sets first
/// differ.
pub(crate) fn sort_by_labels<T>(items: &mut [(u64, T)], get: &impl Fn(&T) -> &SeriesLabels) {
    sort_level(items, get, 0);
}

fn sort_level<T>(items: &mut [(u64, T)], get: &impl Fn(&T) -> &SeriesLabels, depth: u32) {
    let by_labels =
        |items: &mut [(u64, T)]| items.sort_unstable_by(|a, b| get(&a.1).cmp(get(&b.1)));
    let Some(((_, first), rest)) = items.split_first() else {
        return;
    };
    if items.len() <= SORT_SMALL || depth >= SORT_DEPTH {
        return by_labels(items);
    }
    let first = get(first);
    // Every set shares the bytes before `at` with `first`, hence its pairs before `start`.
    let at = rest
        .iter()
        .map(|x| common_prefix(first.bytes(), get(&x.1).bytes()))
        .min()
        .unwrap_or(0);
    let start = first.pair_start(at);
    let first_pair = first.pairs_from(start).next();
    let skip = rest
        .iter()
        .map(|x| pair_common_prefix(first_pair, get(&x.1).pairs_from(start).next()))
        .min()
        .unwrap_or(0);
    for x in items.iter_mut() {
        x.0 = get(&x.1).sort_window(start, skip);
    }
    items.sort_unstable_by_key(|x| x.0);
    if items.first().map(|x| x.0) == items.last().map(|x| x.0) {
        // No key told them apart: the sets are all the same (the head holds no duplicates).
        return by_labels(items);
    }
    for run in items.chunk_by_mut(|a, b| a.0 == b.0) {
        sort_level(run, get, depth + 1);
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
        // Well-known names take one byte and their values are symbol ids, one byte per 6 bits.
        let id_len = |v: &str| match symbols().intern(v).unwrap_or(u32::MAX) {
            0..64 => 1,
            64..4096 => 2,
            _ => 3,
        };
        check(
            &[("__name__", "up"), ("instance", "a:1"), ("job", "node")],
            3 + id_len("up") + (1 + 3) + id_len("node"),
        );
        // Lengths below 64 take one byte.
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
        // A metric name longer than the symbol table takes stays text: one byte of name code,
        // two of length.
        let long_metric = "m".repeat(super::super::symbols::MAX_SYMBOL_LEN + 1);
        check(
            &[("__name__", long_metric.as_str()), ("job", "node")],
            1 + 2 + long_metric.len() + 1 + id_len("node"),
        );
    }

    /// With the values of well-known names kept as text (a full symbol table), and mixed with
    /// sets whose values are ids: the same pairs, the same order.
    #[test]
    fn well_known_values_as_text_read_and_compare_like_ids() {
        let sets = [
            labels(&[("__name__", "up"), ("instance", "a:1"), ("job", "node")]),
            labels(&[("__name__", "up"), ("code", "200"), ("job", "node")]),
            labels(&[("__name__", "upx"), ("instance", "a:1")]),
            labels(&[("a", "b"), ("job", "j\u{e9}")]),
        ];
        let pairs = |l: &Labels| -> Vec<(String, String)> {
            l.iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect()
        };
        let text: Vec<SeriesLabels> = sets
            .iter()
            .map(|l| {
                let p = pairs(l);
                SeriesLabels::pack(p.iter().map(|(n, v)| (n.as_str(), v.as_str())), |_| None)
            })
            .collect();
        let ids: Vec<SeriesLabels> = sets.iter().map(SeriesLabels::new).collect();
        assert_eq!(text[0].heap_bytes(), (2 + 2) + (2 + 3) + (2 + 4));
        for (i, l) in sets.iter().enumerate() {
            let mut out = Labels::empty();
            text[i].to_labels(&mut out);
            assert_eq!(&out, l);
            assert!(text[i].eq_labels(l));
            assert_eq!(text[i].stable_hash(), l.stable_hash());
            for (j, m) in sets.iter().enumerate() {
                assert_eq!(text[i].cmp(&ids[j]), l.cmp(m), "{l:?} vs {m:?}");
                assert_eq!(ids[i].cmp(&text[j]), l.cmp(m), "{l:?} vs {m:?}");
                assert_eq!(text[i].cmp(&text[j]), l.cmp(m), "{l:?} vs {m:?}");
            }
        }
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

        /// Sets that share leading pairs and prefixes of names and values (the cases the fast
        /// comparison skips through) compare and sort as `Labels` do.
        #[test]
        fn shared_prefixes_order_and_sort(sets in prop::collection::vec(arb_similar(), 0..200)) {
            let packed: Vec<SeriesLabels> = sets.iter().map(SeriesLabels::new).collect();
            for (a, pa) in sets.iter().zip(&packed).take(20) {
                for (b, pb) in sets.iter().zip(&packed) {
                    prop_assert_eq!(pa.cmp(pb), a.cmp(b), "{:?} vs {:?}", a, b);
                }
            }
            let mut items: Vec<_> = packed.iter().zip(&sets).map(|x| (7, x)).collect();
            sort_by_labels(&mut items, &|x| x.0);
            let got: Vec<&Labels> = items.iter().map(|(_, x)| x.1).collect();
            let mut want: Vec<&Labels> = sets.iter().collect();
            want.sort();
            prop_assert_eq!(got, want);
        }
    }

    /// Label sets drawn from few names and values that share prefixes (duplicates included).
    fn arb_similar() -> impl Strategy<Value = Labels> {
        let name = prop::sample::select(vec![
            "__name__", "a", "ab", "abc", "b", "code", "instance", "job", "x\u{e9}",
        ]);
        let value = prop::sample::select(vec![
            "",
            "\0",
            "\0\0",
            "v",
            "v\0",
            "va",
            "vab",
            "vb",
            "w",
            "\u{e9}t\u{f8ff}",
            "http_requests_total_with_a_long_name",
            "http_requests_total_with_a_long_name2",
        ]);
        prop::collection::vec((name, value), 0..6).prop_map(|v| Labels::from_pairs(&v))
    }

    #[test]
    fn sorts_scraped_shapes() {
        let sets: Vec<Labels> = (0..3000)
            .map(|i: usize| {
                let inst = format!("10.0.{}.{}:9100", i / 250 % 256, i % 250);
                let handler = format!("/api/v1/h{}", i / 7 % 97);
                let code = ["200", "404", "500", "503"][i % 4];
                Labels::from_pairs(&[
                    ("__name__", "http_requests_total"),
                    ("code", code),
                    ("handler", handler.as_str()),
                    ("instance", inst.as_str()),
                ])
            })
            .collect();
        let packed: Vec<SeriesLabels> = sets.iter().map(SeriesLabels::new).collect();
        let mut items: Vec<_> = packed.iter().zip(&sets).rev().map(|x| (0, x)).collect();
        sort_by_labels(&mut items, &|x| x.0);
        let got: Vec<&Labels> = items.iter().map(|(_, x)| x.1).collect();
        let mut want: Vec<&Labels> = sets.iter().collect();
        want.sort();
        assert_eq!(got, want);
    }
}
