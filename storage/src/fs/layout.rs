//! File and directory names inside a database directory, in one place.
//!
//! ```text
//! <dir>/
//!   lock                      advisory lock held while a Db is open
//!   wal/                      write-ahead log (codec helper's format)
//!   chunks_head/              written by versions before WAL format 2; removed at open
//!   head_snapshot.NNNNNNNN    head snapshot covering WAL segments before NNNNNNNN
//!   <ULID>/                   one immutable block
//!     meta.json               ulid, minTime, maxTime (exclusive), stats, compaction, version
//!     index                   symbols, series, postings (codec helper's format)
//!     chunks/000001 …         chunk segment files
//!     tombstones              deletion intervals per series
//!   <ULID>.tmp/               a block being written; removed at open
//! ```

/// Lock file held while the database is open.
pub(crate) const LOCK_FILE: &str = "lock";
/// WAL directory.
pub(crate) const WAL_DIR: &str = "wal";
/// Directory of the head's completed chunks.
pub(crate) const CHUNKS_HEAD_DIR: &str = "chunks_head";
/// Prefix of head snapshot files (the suffix: the first WAL segment not covered, 8 digits).
pub(crate) const HEAD_SNAPSHOT_PREFIX: &str = "head_snapshot.";
/// Prefix of head snapshot delta files (the suffix as for snapshots).
pub(crate) const HEAD_DELTA_PREFIX: &str = "head_delta.";
/// Block metadata file.
pub(crate) const META_FILE: &str = "meta.json";
/// Block index file.
pub(crate) const INDEX_FILE: &str = "index";
/// Directory of chunk segment files inside a block.
pub(crate) const CHUNKS_DIR: &str = "chunks";
/// Block tombstones file.
pub(crate) const TOMBSTONES_FILE: &str = "tombstones";
/// Suffix of a block directory being written.
pub(crate) const TMP_SUFFIX: &str = ".tmp";
/// Suffix of a block directory being deleted.
pub(crate) const DELETE_SUFFIX: &str = ".deleted";

/// Name of chunk segment `n` (1-based): six zero-padded digits.
pub(crate) fn chunk_segment_name(n: u32) -> String {
    format!("{n:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_are_padded() {
        assert_eq!(chunk_segment_name(1), "000001");
        assert_eq!(chunk_segment_name(123456), "123456");
    }
}
