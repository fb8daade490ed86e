//! `meta.json`: Prometheus's block metadata shape. `maxTime` is exclusive, as in Prometheus: a
//! block covers `[minTime, maxTime)`.

use crate::error::{Error, Result};
use crate::fs::layout::META_FILE;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Current `meta.json` version.
pub(crate) const META_VERSION: u32 = 1;

/// Block statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BlockStats {
    pub(crate) num_samples: u64,
    pub(crate) num_series: u64,
    pub(crate) num_chunks: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) num_tombstones: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// How the block came to be.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BlockCompaction {
    /// 1 for blocks cut from the head, parents' max + 1 for compacted ones.
    pub(crate) level: u32,
    /// Ids of the level-1 blocks whose data this block holds.
    pub(crate) sources: Vec<String>,
    /// Ids of the blocks merged into this one (deleted after a crash if still present).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) parents: Vec<String>,
}

/// The contents of `meta.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BlockMeta {
    pub(crate) ulid: String,
    /// Smallest timestamp, ms (inclusive).
    pub(crate) min_time: i64,
    /// Largest timestamp + 1, ms (exclusive).
    pub(crate) max_time: i64,
    pub(crate) stats: BlockStats,
    pub(crate) compaction: BlockCompaction,
    pub(crate) version: u32,
}

impl BlockMeta {
    /// Reads `dir/meta.json`.
    pub(crate) fn read(dir: &Path) -> Result<BlockMeta> {
        let path = dir.join(META_FILE);
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let meta: BlockMeta = serde_json::from_slice(&bytes).map_err(|e| {
            Error::corruption(&path, e.column() as u64, format!("invalid meta.json: {e}"))
        })?;
        if meta.version != META_VERSION {
            return Err(Error::corruption(
                &path,
                0,
                format!("unsupported meta.json version {}", meta.version),
            ));
        }
        if meta.min_time >= meta.max_time {
            return Err(Error::corruption(&path, 0, "minTime >= maxTime"));
        }
        Ok(meta)
    }

    /// Writes `dir/meta.json` atomically.
    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::InvalidArgument(format!("cannot encode meta.json: {e}")))?;
        crate::fs::write_atomic(&dir.join(META_FILE), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_in_prometheus_shape() {
        let dir = tempfile::tempdir().unwrap();
        let m = BlockMeta {
            ulid: "01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
            min_time: 0,
            max_time: 7_200_000,
            stats: BlockStats {
                num_samples: 10,
                num_series: 2,
                num_chunks: 3,
                num_tombstones: 0,
            },
            compaction: BlockCompaction {
                level: 1,
                sources: vec!["01ARZ3NDEKTSV4RRFFQ69G5FAV".into()],
                parents: vec![],
            },
            version: 1,
        };
        m.write(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(META_FILE)).unwrap();
        for key in [
            "\"ulid\"",
            "\"minTime\"",
            "\"maxTime\"",
            "\"numSamples\"",
            "\"level\"",
        ] {
            assert!(text.contains(key), "missing {key} in {text}");
        }
        assert_eq!(BlockMeta::read(dir.path()).unwrap(), m);
        std::fs::write(dir.path().join(META_FILE), b"{nope").unwrap();
        assert!(matches!(
            BlockMeta::read(dir.path()),
            Err(Error::Corruption { .. })
        ));
    }
}
