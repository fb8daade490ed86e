//! Compaction: merging blocks (k-way by labels, deduplicated by timestamp, minus tombstones)
//! into one through the same [`crate::querier::merge::MergedSeries`] path the querier uses.
//! [`plan`] decides what to merge and what retention drops.

pub(crate) mod plan;

use crate::block::reader::Block;
use crate::block::writer::{BlockSpec, write_block};
use crate::block::{BlockReader, meta::BlockMeta};
use crate::error::Result;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

/// Writes one block under `dir` with all data of `blocks`; returns its meta (None when all
/// data was deleted).
pub(crate) fn merge_blocks(dir: &Path, blocks: &[Arc<Block>]) -> Result<Option<BlockMeta>> {
    let mut parts: Vec<(Arc<dyn BlockReader>, Vec<u32>)> = Vec::with_capacity(blocks.len());
    let mut sources = BTreeSet::new();
    let mut level = 0;
    let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
    for b in blocks {
        let ids = b.all_postings()?;
        parts.push((b.clone(), b.sorted_ids(&ids)?));
        sources.extend(b.meta.compaction.sources.iter().cloned());
        level = level.max(b.meta.compaction.level);
        mint = mint.min(b.meta.min_time);
        maxt = maxt.max(b.meta.max_time - 1);
    }
    let spec = BlockSpec {
        mint,
        maxt,
        level: if blocks.len() > 1 {
            level + 1
        } else {
            level.max(1)
        },
        sources: sources.into_iter().collect(),
        parents: blocks.iter().map(|b| b.id().to_string()).collect(),
    };
    write_block(dir, parts, spec)
}
