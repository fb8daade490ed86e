//! Blocks: head cuts, compaction, retention, tombstones and snapshots.
