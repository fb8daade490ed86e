//! Writes a block from merged series: `<id>.tmp/` with chunk segments, index, tombstones and
//! meta.json, each fsynced, then renamed to `<id>/` and the parent fsynced.

use super::BlockReader;
use super::chunks::ChunkWriter;
use super::meta::{BlockCompaction, BlockMeta, BlockStats, META_VERSION};
use super::tombstones;
use crate::chunk::histogram::HistogramChunk;
use crate::chunk::{BLOCK_SAMPLES_PER_CHUNK, Encoding, encode_best};
use crate::error::{Error, Result};
use crate::fs::layout::{CHUNKS_DIR, INDEX_FILE, TMP_SUFFIX, TOMBSTONES_FILE};
use crate::index::{ChunkMeta, IndexWriter};
use crate::interface::SampleIterator;
use crate::model::Timestamp;
use crate::querier::merge::MergedSeries;
use std::path::Path;
use std::sync::Arc;

/// A block's histogram chunk is cut at this many bytes (or [`BLOCK_SAMPLES_PER_CHUNK`]
/// samples).
const BLOCK_HISTOGRAM_CHUNK_BYTES: usize = 16 << 10;

/// What to write: the time range (closed, ms) and the compaction lineage.
pub(crate) struct BlockSpec {
    pub(crate) mint: Timestamp,
    pub(crate) maxt: Timestamp,
    pub(crate) level: u32,
    /// Level-1 ancestors (empty for a head block: the new id is used).
    pub(crate) sources: Vec<String>,
    pub(crate) parents: Vec<String>,
}

/// Writes the samples of `parts` (readers with their ids in label order) within the spec's range
/// into a new block under `parent`. Returns `None` (and leaves nothing behind) when there is no
/// sample to write.
pub(crate) fn write_block(
    parent: &Path,
    parts: Vec<(Arc<dyn BlockReader>, Vec<u32>)>,
    spec: BlockSpec,
) -> Result<Option<BlockMeta>> {
    let id = super::ulid::new_ulid();
    let tmp = parent.join(format!("{id}{TMP_SUFFIX}"));
    std::fs::create_dir_all(&tmp)
        .map_err(|e| Error::io(format!("cannot create block {}", tmp.display()), e))?;
    let res = write_into(&tmp, &id, parts, spec);
    match res {
        Ok(Some(meta)) => {
            let dst = parent.join(&id);
            std::fs::rename(&tmp, &dst)
                .map_err(|e| Error::io(format!("cannot rename block {}", tmp.display()), e))?;
            crate::fs::fsync_dir(parent)?;
            Ok(Some(meta))
        }
        other => {
            let _ = std::fs::remove_dir_all(&tmp);
            other
        }
    }
}

fn write_into(
    tmp: &Path,
    id: &str,
    parts: Vec<(Arc<dyn BlockReader>, Vec<u32>)>,
    spec: BlockSpec,
) -> Result<Option<BlockMeta>> {
    let mut chunks = ChunkWriter::create(&tmp.join(CHUNKS_DIR))?;
    let mut index = IndexWriter::create(&tmp.join(INDEX_FILE))?;
    let mut merged = MergedSeries::new(parts, spec.mint, spec.maxt);
    let mut stats = BlockStats::default();
    let (mut dmin, mut dmax) = (i64::MAX, i64::MIN);
    let mut metas: Vec<ChunkMeta> = Vec::new();
    let mut sample_buf: Vec<(Timestamp, f64)> = Vec::with_capacity(BLOCK_SAMPLES_PER_CHUNK);
    let mut enc_buf: Vec<u8> = Vec::new();
    while merged.next() {
        metas.clear();
        let mut it = merged.samples();
        // Histogram samples go to histogram chunks; a change of sample type cuts a chunk, so
        // at most one of `buf` and `hist` holds samples.
        let mut hist: Option<(HistogramChunk, Timestamp, Timestamp)> = None;
        // Each float chunk is encoded with whichever of XOR and packed is smaller
        // (`encode_best`).
        let mut flush = |buf: &mut Vec<(Timestamp, f64)>,
                         hist: &mut Option<(HistogramChunk, Timestamp, Timestamp)>,
                         enc_buf: &mut Vec<u8>|
         -> Result<()> {
            if let Some((c, min_time, max_time)) = hist.take() {
                let r = chunks.write(Encoding::Histogram, c.bytes())?;
                metas.push(ChunkMeta {
                    min_time,
                    max_time,
                    chunk_ref: r,
                });
            }
            let (Some(&(cmin, _)), Some(&(cmax, _))) = (buf.first(), buf.last()) else {
                return Ok(());
            };
            enc_buf.clear();
            let enc = encode_best(buf, enc_buf);
            let r = chunks.write(enc, enc_buf)?;
            metas.push(ChunkMeta {
                min_time: cmin,
                max_time: cmax,
                chunk_ref: r,
            });
            buf.clear();
            Ok(())
        };
        // The series' previous sample time: a source chunk whose samples decode out of time
        // order is corrupt (the chunk encoders take only increasing times).
        let mut prev = None;
        while it.next() {
            stats.num_samples += 1;
            let t = it.at().0;
            if let Some(p) = prev.filter(|&p| t <= p) {
                return Err(Error::corruption(
                    tmp,
                    0,
                    format!("a source chunk's samples are out of time order ({t} after {p})"),
                ));
            }
            prev = Some(t);
            if let Some(h) = it.at_histogram() {
                if !sample_buf.is_empty() {
                    flush(&mut sample_buf, &mut None, &mut enc_buf)?;
                }
                let full = hist.as_ref().is_some_and(|(c, _, _)| {
                    c.num_samples() >= BLOCK_SAMPLES_PER_CHUNK
                        || c.bytes().len() >= BLOCK_HISTOGRAM_CHUNK_BYTES
                });
                if full {
                    flush(&mut sample_buf, &mut hist, &mut enc_buf)?;
                }
                let cut = match hist.as_mut() {
                    Some((c, _, max_t)) => match c.append(t, h) {
                        Ok(()) => {
                            *max_t = t;
                            None
                        }
                        Err(cut) => Some(cut.hint),
                    },
                    None => Some(h.counter_reset_hint),
                };
                if let Some(hint) = cut {
                    flush(&mut sample_buf, &mut hist, &mut enc_buf)?;
                    hist = Some((HistogramChunk::new(t, h, hint), t, t));
                }
                continue;
            }
            if hist.is_some() {
                flush(&mut sample_buf, &mut hist, &mut enc_buf)?;
            }
            sample_buf.push(it.at());
            if sample_buf.len() == BLOCK_SAMPLES_PER_CHUNK {
                flush(&mut sample_buf, &mut None, &mut enc_buf)?;
            }
        }
        flush(&mut sample_buf, &mut hist, &mut enc_buf)?;
        if let Some(e) = it.err() {
            return Err(Error::corruption(
                tmp,
                0,
                format!("cannot read source chunk: {e}"),
            ));
        }
        drop(it);
        if let (Some(first), Some(last)) = (metas.first(), metas.last()) {
            dmin = dmin.min(first.min_time);
            dmax = dmax.max(last.max_time);
            stats.num_series += 1;
            stats.num_chunks += metas.len() as u64;
            index.add_series(merged.labels(), &metas)?;
        }
    }
    if let Some(e) = merged.take_err() {
        return Err(e);
    }
    if stats.num_series == 0 {
        return Ok(None);
    }
    index.finish()?;
    #[cfg(test)]
    if fail_hook::should_fail() {
        return Err(Error::io(
            format!("cannot write block {}", tmp.display()),
            std::io::Error::other("injected failure after the index"),
        ));
    }
    chunks.finish()?;
    crate::fs::write_file_synced(
        &tmp.join(TOMBSTONES_FILE),
        &tombstones::encode(&tombstones::Tombstones::new()),
    )?;
    let sources = if spec.sources.is_empty() {
        vec![id.to_string()]
    } else {
        spec.sources
    };
    let meta = BlockMeta {
        ulid: id.to_string(),
        min_time: if spec.mint == i64::MIN {
            dmin
        } else {
            spec.mint
        },
        max_time: if spec.maxt == i64::MAX {
            dmax
        } else {
            spec.maxt
        }
        .saturating_add(1),
        stats,
        compaction: BlockCompaction {
            level: spec.level,
            sources,
            parents: spec.parents,
        },
        version: META_VERSION,
    };
    meta.write(tmp)?;
    crate::fs::fsync_dir(tmp)?;
    Ok(Some(meta))
}

/// Test seam: makes block writes on this thread fail after the index is written, as a full disk
/// would part-way through a block.
#[cfg(test)]
pub(crate) mod fail_hook {
    use std::cell::Cell;

    thread_local! {
        /// `Some(n)`: the next `n` block writes succeed, every later one fails after writing
        /// its index. `None`: no failure.
        pub(crate) static FAIL_AFTER: Cell<Option<u32>> = const { Cell::new(None) };
    }

    /// Counts one block write; true when it must fail.
    pub(super) fn should_fail() -> bool {
        FAIL_AFTER.with(|f| match f.get() {
            None => false,
            Some(0) => true,
            Some(n) => {
                f.set(Some(n - 1));
                false
            }
        })
    }
}
