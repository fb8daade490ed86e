//! Crash-safe group store: one file per group, replaced atomically.
//!
//! ```text
//! <dir>/g-<id as 16 hex digits>.grp
//! ┌────────────┬─────────┬─────────────┬──────────────────────────────────┐
//! │ magic "APGR" │ ver = 1 │ crc32 (LE)  │ payload: prost `PersistedGroup`  │
//! │  4 bytes   │ 1 byte  │ 4 bytes     │ (crc32 = IEEE over the payload)  │
//! └────────────┴─────────┴─────────────┴──────────────────────────────────┘
//! ```
//! The payload is the client model itself, so native histograms pushed in protobuf (schema,
//! spans, deltas or counts, zero bucket) are kept as they came with no change of format: files
//! written before Argus appended pushed native histograms load unchanged.
//!
//! A write goes to `<name>.tmp`, is fsynced, renamed over `<name>`, and the directory is
//! fsynced; so after a crash each group file is either the old or the new version. Leftover
//! `.tmp` files are removed on open; a file failing its checks is renamed to `.corrupt` and
//! skipped with a warning.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::expose::proto::{LabelPair, MetricFamily};
use prost::Message;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The grouping key: `job` plus the URL's further labels, sorted by name.
pub type GroupingKey = BTreeMap<String, String>;

const MAGIC: &[u8; 4] = b"APGR";
const VERSION: u8 = 1;
const MAGIC_LEN: usize = MAGIC.len();
const VERSION_OFF: usize = MAGIC_LEN;
const CRC_OFF: usize = VERSION_OFF + 1;
const HEADER_LEN: usize = CRC_OFF + 4;
const FILE_PREFIX: &str = "g-";
const FILE_SUFFIX: &str = ".grp";
const TMP_SUFFIX: &str = ".tmp";

/// A family with the time (ns since the epoch) of the push that last wrote it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredFamily {
    /// Push time, ns since the epoch.
    #[prost(int64, tag = "1")]
    pub ts_nanos: i64,
    /// The family, labels sanitized.
    #[prost(message, optional, tag = "2")]
    pub family: Option<MetricFamily>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PersistedGroup {
    #[prost(message, repeated, tag = "1")]
    key: Vec<LabelPair>,
    #[prost(message, repeated, tag = "2")]
    families: Vec<StoredFamily>,
    #[prost(int64, tag = "3")]
    last_push_nanos: i64,
}

/// One group in memory. Immutable once built; replaced as a whole (`Arc`) on every change.
#[derive(Clone, Debug, Default)]
pub struct Group {
    /// File id.
    pub id: u64,
    /// Grouping key.
    pub key: GroupingKey,
    /// Families by name, including `push_time_seconds` and `push_failure_time_seconds`.
    pub families: BTreeMap<String, StoredFamily>,
    /// Time of the last successful push (ns), for the TTL.
    pub last_push_nanos: i64,
}

impl Group {
    /// The value of a bookkeeping gauge (0 when absent).
    pub fn gauge(&self, name: &str) -> f64 {
        self.families
            .get(name)
            .and_then(|f| f.family.as_ref())
            .and_then(|f| f.metric.first())
            .and_then(|m| m.gauge.as_ref())
            .and_then(|g| g.value)
            .unwrap_or(0.0)
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// I/O failure with context.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Cause.
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Io { context, source }
}

fn file_name(id: u64) -> String {
    format!("{FILE_PREFIX}{id:016x}{FILE_SUFFIX}")
}

/// Encodes a group file (header + payload).
pub fn encode_group(g: &Group, dst: &mut Vec<u8>) {
    let p = PersistedGroup {
        key: g.key.iter().map(|(k, v)| LabelPair::new(k, v)).collect(),
        families: g.families.values().cloned().collect(),
        last_push_nanos: g.last_push_nanos,
    };
    let payload = p.encode_to_vec();
    dst.extend_from_slice(MAGIC);
    dst.push(VERSION);
    dst.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    dst.extend_from_slice(&payload);
}

/// Decodes a group file; `Err` names what is wrong.
pub fn decode_group(id: u64, src: &[u8]) -> Result<Group, String> {
    let header = src
        .get(..HEADER_LEN)
        .ok_or("file shorter than its header")?;
    if header.get(..MAGIC_LEN) != Some(MAGIC.as_slice()) {
        return Err("bad magic".into());
    }
    if header.get(VERSION_OFF) != Some(&VERSION) {
        return Err(format!("unsupported version {:?}", header.get(VERSION_OFF)));
    }
    let mut crc = [0u8; 4];
    crc.copy_from_slice(header.get(CRC_OFF..HEADER_LEN).ok_or("short header")?);
    let payload = src.get(HEADER_LEN..).ok_or("short file")?;
    if crc32fast::hash(payload) != u32::from_le_bytes(crc) {
        return Err("checksum mismatch".into());
    }
    let p = PersistedGroup::decode(payload).map_err(|e| e.to_string())?;
    let key: GroupingKey = p
        .key
        .into_iter()
        .map(|l| (l.name.unwrap_or_default(), l.value.unwrap_or_default()))
        .collect();
    if !key.contains_key("job") {
        return Err("grouping key without job".into());
    }
    let families = p
        .families
        .into_iter()
        .filter_map(|f| {
            let name = f.family.as_ref()?.name().to_string();
            Some((name, f))
        })
        .collect();
    Ok(Group {
        id,
        key,
        families,
        last_push_nanos: p.last_push_nanos,
    })
}

/// Writes `bytes` to `dir/name` atomically: temp file, fsync, rename, fsync dir.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let ctx = |what: &str, p: &Path| format!("cannot {what} {}", p.display());
    let written = File::create(&tmp)
        .map_err(io(ctx("create", &tmp)))
        .and_then(|mut f| {
            f.write_all(bytes).map_err(io(ctx("write", &tmp)))?;
            f.sync_all().map_err(io(ctx("fsync", &tmp)))
        })
        .and_then(|()| fs::rename(&tmp, &path).map_err(io(ctx("rename to", &path))));
    if written.is_err() {
        // A full disk must not leave a half-written temp file taking space until restart.
        let _ = fs::remove_file(&tmp);
    }
    written?;
    fsync_dir(dir)
}

fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("cannot fsync directory {}", dir.display())))
}

/// Persists a group (blocking I/O).
pub fn persist(dir: &Path, g: &Group) -> Result<(), StoreError> {
    let mut buf = Vec::new();
    encode_group(g, &mut buf);
    write_atomic(dir, &file_name(g.id), &buf)
}

/// Removes a group's file (blocking I/O). A missing file is not an error.
pub fn remove(dir: &Path, id: u64) -> Result<(), StoreError> {
    let path = dir.join(file_name(id));
    match fs::remove_file(&path) {
        Ok(()) => fsync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(format!("cannot remove {}", path.display()))(e)),
    }
}

/// Loads every group from `dir` (created if missing).
pub fn load(dir: &Path) -> Result<Vec<Group>, StoreError> {
    fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(io(format!("cannot read {}", dir.display())))?;
    for e in entries {
        let e = e.map_err(io(format!("cannot read {}", dir.display())))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let path: PathBuf = e.path();
        if name.ends_with(TMP_SUFFIX) {
            let _ = fs::remove_file(&path);
            continue;
        }
        let Some(id) = name
            .strip_prefix(FILE_PREFIX)
            .and_then(|n| n.strip_suffix(FILE_SUFFIX))
            .and_then(|n| u64::from_str_radix(n, 16).ok())
        else {
            continue;
        };
        let bytes = fs::read(&path).map_err(io(format!("cannot read {}", path.display())))?;
        match decode_group(id, &bytes) {
            Ok(g) => out.push(g),
            Err(reason) => {
                tracing::warn!(file = %path.display(), %reason, "skipping corrupt push group file");
                let _ = fs::rename(&path, path.with_extension("corrupt"));
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::push::text::parse_text;

    fn sample_group() -> Group {
        let fams = parse_text(b"# HELP a h\n# TYPE a counter\na{x=\"1\"} 2\n").expect("parse");
        let mut g = Group {
            id: 7,
            key: [("job".to_string(), "j".to_string())].into_iter().collect(),
            last_push_nanos: 42,
            ..Default::default()
        };
        for f in fams {
            g.families.insert(
                f.name().to_string(),
                StoredFamily {
                    ts_nanos: 5,
                    family: Some(f),
                },
            );
        }
        g
    }

    #[test]
    fn roundtrip_and_corruption() {
        let g = sample_group();
        let mut buf = Vec::new();
        encode_group(&g, &mut buf);
        let back = decode_group(7, &buf).expect("decode");
        assert_eq!(back.key, g.key);
        assert_eq!(back.families, g.families);
        assert_eq!(back.last_push_nanos, 42);
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert!(decode_group(7, &bad).is_err(), "flip at {i} not detected");
        }
        assert!(decode_group(7, &buf[..buf.len() - 1]).is_err());
    }

    #[test]
    fn native_histograms_roundtrip() {
        use crate::expose::proto::{BucketSpan, Histogram, Metric};
        let mut g = sample_group();
        let h = Histogram {
            sample_count: Some(3),
            sample_sum: Some(1.5),
            schema: Some(-1),
            zero_threshold: Some(1e-9),
            zero_count: Some(1),
            negative_span: vec![BucketSpan {
                offset: Some(-2),
                length: Some(1),
            }],
            negative_delta: vec![1],
            positive_span: vec![BucketSpan {
                offset: Some(3),
                length: Some(1),
            }],
            positive_count: vec![1.0],
            ..Default::default()
        };
        let fam = MetricFamily {
            name: Some("nh".into()),
            r#type: Some(crate::expose::proto::MetricType::Histogram as i32),
            metric: vec![Metric {
                histogram: Some(h),
                ..Default::default()
            }],
            ..Default::default()
        };
        g.families.insert(
            "nh".into(),
            StoredFamily {
                ts_nanos: 9,
                family: Some(fam),
            },
        );
        let mut buf = Vec::new();
        encode_group(&g, &mut buf);
        assert_eq!(buf.get(VERSION_OFF), Some(&1), "format unchanged");
        let back = decode_group(7, &buf).expect("decode");
        assert_eq!(back.families, g.families);
    }

    #[test]
    fn persist_load_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = sample_group();
        persist(dir.path(), &g).expect("persist");
        fs::write(dir.path().join("g-0000000000000009.grp.tmp"), b"junk").expect("write");
        fs::write(dir.path().join("g-0000000000000003.grp"), b"junk").expect("write");
        let loaded = load(dir.path()).expect("load");
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].families, g.families);
        assert!(!dir.path().join("g-0000000000000009.grp.tmp").exists());
        assert!(dir.path().join("g-0000000000000003.corrupt").exists());
        remove(dir.path(), 7).expect("remove");
        assert!(load(dir.path()).expect("load").is_empty());
    }

    #[test]
    fn failed_write_leaves_no_temp_file_and_keeps_the_old_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = sample_group();
        let name = file_name(g.id);
        // The rename cannot replace a non-empty directory: the write fails at its last step.
        fs::create_dir(dir.path().join(&name)).expect("mkdir");
        fs::write(dir.path().join(&name).join("x"), b"x").expect("write");
        assert!(persist(dir.path(), &g).is_err());
        let left: Vec<String> = fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec![name.clone()], "only the untouched entry remains");
        // With a regular old version, a failed write keeps it readable.
        fs::remove_dir_all(dir.path().join(&name)).expect("rmdir");
        persist(dir.path(), &g).expect("persist");
        let tmp = dir.path().join(format!("{name}{TMP_SUFFIX}"));
        fs::create_dir(&tmp).expect("mkdir tmp");
        fs::write(tmp.join("x"), b"x").expect("write");
        assert!(
            persist(dir.path(), &g).is_err(),
            "create of the temp file fails"
        );
        let loaded = load(dir.path()).expect("load");
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].families, g.families);
    }
}
