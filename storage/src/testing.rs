//! In-memory [`Queryable`] + [`Appendable`] for other crates' tests (feature `testing`).
//!
//! Semantics follow the real `Db` where tests can see them: sorted series, samples in
//! `[mint, maxt]`, out-of-order appends rejected, duplicate timestamps with another value
//! rejected, empty-matching matchers selecting series without the label.

use crate::error::{Error, Result};
use crate::histogram::{FloatHistogram, SampleValue};
use crate::interface::{Appendable, Appender, Querier, Queryable, SampleIterator, SeriesSet};
use crate::matcher::Matcher;
use crate::model::{Labels, SeriesRef, Timestamp};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;

type Data = BTreeMap<Labels, Vec<(Timestamp, SampleValue)>>;

/// Every series of any storage with its float samples as `(t, value bits)`, labels rendered as
/// text, sorted: for comparing two storages (say a real `Db` and [`MemStorage`]) bit for bit.
pub fn dump_floats(q: &dyn Queryable) -> Vec<(String, Vec<(Timestamp, u64)>)> {
    let Ok(q) = q.querier(Timestamp::MIN, Timestamp::MAX) else {
        return Vec::new();
    };
    let Ok(m) = Matcher::new(crate::matcher::MatchType::Regex, "__name__", ".+") else {
        return Vec::new();
    };
    let mut set = q.select(&[m]);
    let mut out = Vec::new();
    while set.next() {
        let mut it = set.samples();
        let mut samples = Vec::new();
        while it.next() {
            let (t, v) = it.at();
            samples.push((t, v.to_bits()));
        }
        out.push((set.labels().to_string(), samples));
    }
    out.sort();
    out
}

/// Shared in-memory storage. Clones share the same data.
#[derive(Clone, Default)]
pub struct MemStorage {
    data: Arc<RwLock<Data>>,
}

impl MemStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts a float sample directly (sorted by time; replaces an equal timestamp). For
    /// fixtures.
    pub fn insert(&self, labels: Labels, t: Timestamp, v: f64) {
        self.insert_value(labels, t, SampleValue::Float(v));
    }

    /// Inserts a native-histogram sample directly, as [`MemStorage::insert`].
    pub fn insert_histogram(&self, labels: Labels, t: Timestamp, h: FloatHistogram) {
        self.insert_value(labels, t, SampleValue::Histogram(Box::new(h)));
    }

    fn insert_value(&self, labels: Labels, t: Timestamp, v: SampleValue) {
        let mut data = self.data.write();
        let s = data.entry(labels).or_default();
        match s.binary_search_by_key(&t, |p| p.0) {
            Ok(i) => s[i].1 = v,
            Err(i) => s.insert(i, (t, v)),
        }
    }

    /// Every series and its float samples, for assertions (histogram samples are left out;
    /// see [`MemStorage::dump_values`]).
    pub fn dump(&self) -> Vec<(Labels, Vec<(Timestamp, f64)>)> {
        self.data
            .read()
            .iter()
            .map(|(l, s)| {
                let floats = s
                    .iter()
                    .filter_map(|(t, v)| match v {
                        SampleValue::Float(f) => Some((*t, *f)),
                        SampleValue::Histogram(_) => None,
                    })
                    .collect();
                (l.clone(), floats)
            })
            .collect()
    }

    /// Every series and all its samples, floats and histograms.
    pub fn dump_values(&self) -> Vec<(Labels, Vec<(Timestamp, SampleValue)>)> {
        self.data
            .read()
            .iter()
            .map(|(l, s)| (l.clone(), s.clone()))
            .collect()
    }

    /// Drops all data.
    pub fn clear(&self) {
        self.data.write().clear();
    }
}

fn matches_all(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

type MemSeries = (Labels, Vec<(Timestamp, SampleValue)>);

struct MemQuerier {
    series: Vec<MemSeries>,
}

impl Queryable for MemStorage {
    fn querier(&self, mint: Timestamp, maxt: Timestamp) -> Result<Box<dyn Querier + '_>> {
        let data = self.data.read();
        let series = data
            .iter()
            .filter_map(|(l, s)| {
                let lo = s.partition_point(|p| p.0 < mint);
                let hi = s.partition_point(|p| p.0 <= maxt);
                (lo < hi).then(|| (l.clone(), s[lo..hi].to_vec()))
            })
            .collect();
        Ok(Box::new(MemQuerier { series }))
    }
}

impl Querier for MemQuerier {
    fn select(&self, matchers: &[Matcher]) -> Box<dyn SeriesSet + '_> {
        let picked = self
            .series
            .iter()
            .filter(|(l, _)| matches_all(l, matchers))
            .collect();
        Box::new(MemSeriesSet { picked, pos: None })
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .series
            .iter()
            .filter(|(l, _)| matches_all(l, matchers))
            .flat_map(|(l, _)| l.iter().map(|p| p.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut values: Vec<String> = self
            .series
            .iter()
            .filter(|(l, _)| matches_all(l, matchers))
            .filter_map(|(l, _)| l.get(name).map(str::to_string))
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }
}

struct MemSeriesSet<'a> {
    picked: Vec<&'a MemSeries>,
    pos: Option<usize>,
}

impl SeriesSet for MemSeriesSet<'_> {
    fn next(&mut self) -> bool {
        let next = self.pos.map_or(0, |p| p + 1);
        self.pos = Some(next);
        next < self.picked.len()
    }
    fn labels(&self) -> &Labels {
        &self.picked[self.pos.expect("BUG: labels() before next()")].0
    }
    fn samples(&self) -> Box<dyn SampleIterator + '_> {
        Box::new(MemSampleIterator {
            samples: &self.picked[self.pos.expect("BUG: samples() before next()")].1,
            pos: 0,
            started: false,
        })
    }
    fn err(&self) -> Option<&Error> {
        None
    }
}

/// Iterates over a sorted slice of mixed float and histogram samples.
struct MemSampleIterator<'a> {
    samples: &'a [(Timestamp, SampleValue)],
    pos: usize,
    started: bool,
}

impl SampleIterator for MemSampleIterator<'_> {
    fn next(&mut self) -> bool {
        if self.started {
            self.pos += 1;
        } else {
            self.started = true;
        }
        self.pos < self.samples.len()
    }
    fn seek(&mut self, t: Timestamp) -> bool {
        self.started = true;
        if self.pos < self.samples.len() && self.samples[self.pos].0 >= t {
            return true;
        }
        let rest = &self.samples[self.pos.min(self.samples.len())..];
        self.pos += rest.partition_point(|s| s.0 < t);
        self.pos < self.samples.len()
    }
    fn at(&self) -> (Timestamp, f64) {
        match &self.samples[self.pos] {
            (t, SampleValue::Float(v)) => (*t, *v),
            (t, SampleValue::Histogram(_)) => (*t, 0.0),
        }
    }
    fn at_histogram(&self) -> Option<&FloatHistogram> {
        match &self.samples[self.pos].1 {
            SampleValue::Float(_) => None,
            SampleValue::Histogram(h) => Some(h),
        }
    }
    fn err(&self) -> Option<&Error> {
        None
    }
}

struct MemAppender {
    storage: MemStorage,
    pending: Vec<(Labels, Timestamp, SampleValue)>,
}

impl Appendable for MemStorage {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(MemAppender {
            storage: self.clone(),
            pending: Vec::new(),
        })
    }
}

impl MemAppender {
    fn add(&mut self, labels: &Labels, t: Timestamp, v: SampleValue) -> Result<SeriesRef> {
        if labels.is_empty() {
            return Err(Error::InvalidLabels("empty label set".into()));
        }
        let data = self.storage.data.read();
        if let Some((last_t, last_v)) = data.get(labels).and_then(|s| s.last()) {
            if t < *last_t {
                return Err(Error::OutOfOrder);
            }
            let same = match (last_v, &v) {
                (SampleValue::Float(a), SampleValue::Float(b)) => a.to_bits() == b.to_bits(),
                (SampleValue::Histogram(a), SampleValue::Histogram(b)) => a == b,
                _ => false,
            };
            if t == *last_t && !same {
                return Err(Error::DuplicateSample);
            }
        }
        drop(data);
        self.pending.push((labels.clone(), t, v));
        Ok(SeriesRef(labels.stable_hash()))
    }
}

impl Appender for MemAppender {
    fn append(
        &mut self,
        _series: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
        v: f64,
    ) -> Result<SeriesRef> {
        self.add(labels, t, SampleValue::Float(v))
    }

    fn append_histogram(
        &mut self,
        _series: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
        h: &FloatHistogram,
    ) -> Result<SeriesRef> {
        h.check_layout().map_err(Error::InvalidArgument)?;
        self.add(labels, t, SampleValue::Histogram(Box::new(h.clone())))
    }

    fn commit(&mut self) -> Result<()> {
        for (l, t, v) in self.pending.drain(..) {
            self.storage.insert_value(l, t, v);
        }
        Ok(())
    }

    fn rollback(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::MatchType;

    #[test]
    fn append_commit_select() {
        let s = MemStorage::new();
        let mut app = s.appender();
        let a = Labels::from_pairs(&[("__name__", "up"), ("job", "a")]);
        let b = Labels::from_pairs(&[("__name__", "up"), ("job", "b")]);
        app.append(None, &b, 10, 1.0).unwrap();
        app.append(None, &a, 10, 2.0).unwrap();
        app.append(None, &a, 20, 3.0).unwrap();
        assert!(s.dump().is_empty(), "nothing visible before commit");
        app.commit().unwrap();
        assert!(matches!(
            app.append(None, &a, 5, 0.0),
            Err(Error::OutOfOrder)
        ));

        let q = s.querier(15, 30).unwrap();
        let m = Matcher::new(MatchType::Regex, "job", "a|b").unwrap();
        let mut set = q.select(&[m]);
        assert!(set.next());
        assert_eq!(set.labels(), &a);
        let mut it = set.samples();
        assert!(it.next());
        assert_eq!(it.at(), (20, 3.0));
        assert!(!it.next());
        drop(it);
        assert!(!set.next(), "b has no samples in range");
    }

    #[test]
    fn histograms_mix_with_floats() {
        use crate::histogram::Span;
        let s = MemStorage::new();
        let l = Labels::from_pairs(&[("__name__", "h")]);
        let h = FloatHistogram {
            count: 2.0,
            sum: 3.0,
            positive_spans: vec![Span::new(0, 1)],
            positive_buckets: vec![2.0],
            ..Default::default()
        };
        let mut app = s.appender();
        app.append(None, &l, 10, 1.0).unwrap();
        app.append_histogram(None, &l, 20, &h).unwrap();
        let mut bad = h.clone();
        bad.positive_buckets.clear();
        assert!(app.append_histogram(None, &l, 30, &bad).is_err());
        app.commit().unwrap();
        let q = s.querier(0, 100).unwrap();
        let mut set = q.select(&[]);
        assert!(set.next());
        let mut it = set.samples();
        assert!(it.next());
        assert_eq!((it.at(), it.at_histogram()), ((10, 1.0), None));
        assert!(it.next());
        assert_eq!(it.at().0, 20);
        assert_eq!(it.at_histogram(), Some(&h));
        assert!(!it.next());
        assert_eq!(s.dump()[0].1, vec![(10, 1.0)]);
    }
}

pub use crate::wal::segment::{SegmentFile as WalFile, SegmentOpener as WalFileOpener};

/// Switches for [`WalFaults::opener`]: WAL segment files that fail or stall on demand, to test
/// a full disk, EIO on fsync and a stalled disk through the WAL's I/O seam. Clones share the
/// switches.
#[derive(Clone, Default)]
pub struct WalFaults {
    inner: Arc<WalFaultState>,
}

#[derive(Default)]
struct WalFaultState {
    /// Writes (including a new segment's header) fail with ENOSPC.
    enospc: std::sync::atomic::AtomicBool,
    /// `fsync`/`fdatasync` fail with EIO.
    eio_on_sync: std::sync::atomic::AtomicBool,
    /// Milliseconds every sync sleeps before syncing.
    sync_delay_ms: std::sync::atomic::AtomicU64,
    /// Syncs started so far.
    syncs: std::sync::atomic::AtomicU64,
}

impl WalFaults {
    /// All switches off.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every write fail with ENOSPC (`on`) or succeed again.
    pub fn set_disk_full(&self, on: bool) {
        self.inner
            .enospc
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Makes every sync fail with EIO (`on`) or succeed again.
    pub fn set_sync_fails(&self, on: bool) {
        self.inner
            .eio_on_sync
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Makes every later sync sleep `d` first (a stalled disk).
    pub fn set_sync_delay(&self, d: std::time::Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.inner
            .sync_delay_ms
            .store(ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// Syncs started so far.
    pub fn syncs(&self) -> u64 {
        self.inner.syncs.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// An opener for [`crate::Db::open_with_wal_files`]: regular files behind the switches.
    pub fn opener(&self) -> Box<WalFileOpener> {
        let faults = self.clone();
        Box::new(move |p: &std::path::Path| {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p)?;
            Ok(Box::new(FaultyWalFile {
                file,
                faults: faults.clone(),
            }) as Box<dyn WalFile>)
        })
    }
}

struct FaultyWalFile {
    file: std::fs::File,
    faults: WalFaults,
}

impl FaultyWalFile {
    fn sync(&self, all: bool) -> std::io::Result<()> {
        use std::sync::atomic::Ordering::SeqCst;
        let st = &self.faults.inner;
        st.syncs.fetch_add(1, SeqCst);
        let delay = st.sync_delay_ms.load(SeqCst);
        if delay > 0 {
            std::thread::sleep(std::time::Duration::from_millis(delay));
        }
        if st.eio_on_sync.load(SeqCst) {
            return Err(std::io::Error::from_raw_os_error(5)); // EIO
        }
        if all {
            self.file.sync_all()
        } else {
            self.file.sync_data()
        }
    }
}

impl WalFile for FaultyWalFile {
    fn write_all(&self, buf: &[u8]) -> std::io::Result<()> {
        if self
            .faults
            .inner
            .enospc
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            // A full disk often takes part of a write before refusing the rest.
            let half = buf.get(..buf.len() / 2).unwrap_or_default();
            std::io::Write::write_all(&mut &self.file, half)?;
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        std::io::Write::write_all(&mut &self.file, buf)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.sync(false)
    }
    fn sync_all(&self) -> std::io::Result<()> {
        self.sync(true)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.file.set_len(len)
    }
}
