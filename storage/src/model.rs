//! Core data model: labels, samples, series references and the stale marker.
//!
//! All timestamps are `i64` milliseconds since the Unix epoch. Intervals are closed: `[mint, maxt]`.

use std::fmt;

/// Milliseconds since the Unix epoch.
pub type Timestamp = i64;

/// Bit pattern of Prometheus's staleness marker, a NaN that ends a series.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as an `f64`. Compare with [`is_stale_nan`], never with `==`.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// True when `v` is exactly the staleness-marker NaN (bit-for-bit).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// The label holding the metric name.
pub const METRIC_NAME: &str = "__name__";

/// A cache-only handle to a series in the head, returned by [`crate::Appender::append`].
///
/// Valid only for the `Db` that produced it; a stale ref is detected and the label set is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SeriesRef(pub u64);

/// One sample: timestamp in ms and a float value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Milliseconds since the epoch.
    pub t: Timestamp,
    /// The value; may be any f64 bit pattern including NaN payloads.
    pub v: f64,
}

/// One label pair.
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Label {
    /// Label name.
    pub name: String,
    /// Label value.
    pub value: String,
}

/// `clone_from` reuses both strings' buffers (a derived `Clone` would allocate anew).
impl Clone for Label {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            value: self.value.clone(),
        }
    }

    fn clone_from(&mut self, source: &Self) {
        self.name.clone_from(&source.name);
        self.value.clone_from(&source.value);
    }
}

impl Label {
    /// Builds a label pair.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A label set, sorted by name, names unique, no empty values.
///
/// Ordering (`Ord`) compares pair by pair as Prometheus's `labels.Compare` does, so series sets
/// sorted by `Labels` merge the same way as Prometheus's.
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels(Vec<Label>);

/// `clone_from` reuses the pairs' buffers, so a label set refilled per series (queries read
/// thousands) allocates only when it grows.
impl Clone for Labels {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }

    fn clone_from(&mut self, source: &Self) {
        self.0.clone_from(&source.0);
    }
}

impl Labels {
    /// An empty label set.
    pub fn empty() -> Self {
        Self(Vec::new())
    }

    /// Builds a label set from pairs: sorts by name, drops empty values; with duplicate names the
    /// last one wins.
    pub fn new(mut pairs: Vec<Label>) -> Self {
        pairs.retain(|l| !l.value.is_empty());
        pairs.sort_by(|a, b| a.name.cmp(&b.name));
        // Keep the last of each run of equal names.
        let mut out: Vec<Label> = Vec::with_capacity(pairs.len());
        for l in pairs {
            match out.last_mut() {
                Some(last) if last.name == l.name => *last = l,
                _ => out.push(l),
            }
        }
        Self(out)
    }

    /// Builds a label set from `(name, value)` string pairs (see [`Labels::new`]).
    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(pairs: &[(N, V)]) -> Self {
        Self::new(
            pairs
                .iter()
                .map(|(n, v)| Label::new(n.as_ref(), v.as_ref()))
                .collect(),
        )
    }

    /// Wraps pairs that the caller guarantees are already sorted by name, unique and non-empty.
    pub fn from_sorted(pairs: Vec<Label>) -> Self {
        debug_assert!(
            pairs.windows(2).all(|w| w[0].name < w[1].name),
            "BUG: labels not sorted or not unique"
        );
        Self(pairs)
    }

    /// Value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Pairs in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs as a slice.
    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// Consumes the set, returning its sorted pairs.
    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    /// Sets `name` to `value` (removes it when `value` is empty), keeping the order.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].value = value.to_string(),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, Label::new(name, value)),
        }
    }

    /// Removes `name` if present.
    pub fn remove(&mut self, name: &str) {
        self.set(name, "");
    }

    /// A stable 64-bit hash of the pairs (FNV-1a over name/value bytes with separators), the
    /// same across runs and machines.
    pub fn stable_hash(&self) -> u64 {
        stable_hash_pairs(self.0.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }
}

/// [`Labels::stable_hash`] of `(name, value)` pairs given in name order (for label sets held in
/// other forms, such as the head's packed ones).
pub(crate) fn stable_hash_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (n, v) in pairs {
        for b in n.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

impl fmt::Display for Labels {
    /// Formats as `{a="1", b="2"}` the way Prometheus's `Labels.String` does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sorted_and_deduplicated() {
        let l = Labels::from_pairs(&[("b", "2"), ("a", "1"), ("c", ""), ("a", "3")]);
        assert_eq!(l.as_slice(), &[Label::new("a", "3"), Label::new("b", "2")]);
        assert_eq!(l.get("a"), Some("3"));
        assert_eq!(l.get("c"), None);
        assert_eq!(l.to_string(), r#"{a="3", b="2"}"#);
    }

    #[test]
    fn set_and_remove_keep_order() {
        let mut l = Labels::from_pairs(&[("b", "2")]);
        l.set("a", "1");
        l.set("c", "3");
        l.remove("b");
        assert_eq!(l, Labels::from_pairs(&[("a", "1"), ("c", "3")]));
    }

    #[test]
    fn stale_nan_is_exact() {
        assert!(is_stale_nan(stale_nan()));
        assert!(!is_stale_nan(f64::NAN));
    }
}
