//! An opened block: mapped index and chunk segments, tombstones, as a [`BlockReader`].
//!
//! Blocks are shared as `Arc<Block>`; a block marked for deletion removes its directory when
//! the last reference drops, so readers never see their maps' files disappear.

use super::chunks::ChunkReader;
use super::meta::BlockMeta;
use super::tombstones::{self, Tombstones};
use super::{BlockReader, SeriesChunks, overlaps};
use crate::chunk::{ChunkIterator, XorChunk};
use crate::error::{Error, Result};
use crate::fs::layout::{CHUNKS_DIR, DELETE_SUFFIX, INDEX_FILE, TOMBSTONES_FILE};
use crate::fs::mmap::Mmap;
use crate::index::{ChunkMeta, IndexReader};
use crate::interface::SampleIterator;
use crate::model::{Labels, Timestamp};
use parking_lot::{Mutex, RwLock};
use roaring::RoaringBitmap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// An open block.
pub(crate) struct Block {
    // Immutable after open.
    pub(crate) dir: PathBuf,
    pub(crate) meta: BlockMeta,
    index: IndexReader<Mmap>,
    chunks: ChunkReader,
    /// Bytes on disk.
    pub(crate) size: u64,
    /// Deletion intervals; replaced (and the file rewritten) by `delete`.
    tombstones: RwLock<Tombstones>,
    /// Serialises tombstone-file rewrites.
    write_lock: Mutex<()>,
    /// Remove the directory when dropped.
    delete_on_drop: AtomicBool,
}

impl Block {
    /// Opens the block in `dir`, checking meta.json, index and segment headers.
    pub(crate) fn open(dir: &Path) -> Result<Block> {
        let ctx = |e: Error| match e {
            Error::Io { context, source } => Error::Io {
                context: format!("cannot open block {}: {context}", dir.display()),
                source,
            },
            other => other,
        };
        let meta = BlockMeta::read(dir).map_err(ctx)?;
        let index = IndexReader::new(Mmap::open(&dir.join(INDEX_FILE)).map_err(ctx)?)?;
        let chunks = ChunkReader::open(&dir.join(CHUNKS_DIR)).map_err(ctx)?;
        let tombstones = tombstones::read(&dir.join(TOMBSTONES_FILE))?;
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            index,
            chunks,
            size: crate::fs::dir_size(dir),
            tombstones: RwLock::new(tombstones),
            write_lock: Mutex::new(()),
            delete_on_drop: AtomicBool::new(false),
        })
    }

    /// Marks the block for deletion once every reader has dropped it.
    pub(crate) fn mark_deleted(&self) {
        self.delete_on_drop.store(true, Ordering::Release);
    }

    /// True when any tombstone is set.
    pub(crate) fn has_tombstones(&self) -> bool {
        !self.tombstones.read().is_empty()
    }

    /// Adds `[mint, maxt]` deletions for `ids` and rewrites the tombstones file atomically.
    pub(crate) fn delete(
        &self,
        ids: &RoaringBitmap,
        mint: Timestamp,
        maxt: Timestamp,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let _w = self.write_lock.lock();
        let mut ts = self.tombstones.read().clone();
        for id in ids {
            tombstones::add_interval(&mut ts, id, mint, maxt);
        }
        crate::fs::write_atomic(&self.dir.join(TOMBSTONES_FILE), &tombstones::encode(&ts))?;
        *self.tombstones.write() = ts;
        Ok(())
    }

    /// Ulid of the block.
    pub(crate) fn id(&self) -> &str {
        &self.meta.ulid
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if self.delete_on_drop.load(Ordering::Acquire) {
            // Rename first so a crash mid-removal leaves a `.deleted` dir that open() clears.
            let mut gone = self.dir.clone().into_os_string();
            gone.push(DELETE_SUFFIX);
            let target = if std::fs::rename(&self.dir, &gone).is_ok() {
                PathBuf::from(gone)
            } else {
                self.dir.clone()
            };
            if let Err(e) = std::fs::remove_dir_all(&target) {
                tracing::warn!("cannot delete block {}: {e}", target.display());
            }
        }
    }
}

impl BlockReader for Block {
    fn min_time(&self) -> Timestamp {
        self.meta.min_time
    }

    fn max_time(&self) -> Timestamp {
        self.meta.max_time - 1
    }

    fn postings(&self, name: &str, value: &str) -> Result<RoaringBitmap> {
        self.index.postings(name, value)
    }

    fn all_postings(&self) -> Result<RoaringBitmap> {
        Ok(self.index.all_postings())
    }

    fn label_names(&self) -> Result<Vec<String>> {
        self.index.label_names()
    }

    fn label_values(&self, name: &str) -> Result<Vec<String>> {
        self.index.label_values(name)
    }

    fn label_values_limited(
        &self,
        name: &str,
        filter: Option<&RoaringBitmap>,
        limit: usize,
    ) -> Result<Vec<String>> {
        self.index.label_values_limited(name, filter, limit)
    }

    fn label_value_count(&self, name: &str) -> Result<usize> {
        self.index.value_count(name)
    }

    fn sorted_ids(&self, ids: &RoaringBitmap) -> Result<Vec<u32>> {
        Ok(ids.iter().collect())
    }

    fn labels(&self, id: u32, out: &mut Labels) -> Result<bool> {
        let mut metas = Vec::new();
        self.index.series(id, out, &mut metas)?;
        Ok(true)
    }

    fn series(
        &self,
        id: u32,
        mint: Timestamp,
        maxt: Timestamp,
        out: &mut SeriesChunks,
    ) -> Result<bool> {
        out.clear();
        let mut metas: Vec<ChunkMeta> = Vec::new();
        self.index.series(id, &mut out.labels, &mut metas)?;
        let ts = self.tombstones.read();
        let deleted = ts.get(&id).map(Vec::as_slice).unwrap_or(&[]);
        for m in metas {
            if !overlaps(m.min_time, m.max_time, mint, maxt) {
                continue;
            }
            if !deleted
                .iter()
                .any(|&(a, b)| overlaps(a, b, m.min_time, m.max_time))
            {
                out.push_block_chunk(&self.chunks, m.chunk_ref, m.min_time, m.max_time)?;
                continue;
            }
            let (enc, data) = self.chunks.chunk(m.chunk_ref, &mut out.frames)?;
            let data = data.to_vec();
            if enc == crate::chunk::Encoding::Histogram {
                crate::chunk::histogram::reencode_kept(
                    &data,
                    |t| !tombstones::is_deleted(deleted, t),
                    |lo, hi, b| out.push_enc(lo, hi, enc, b),
                )
                .map_err(|e| Error::corruption(&self.dir, m.chunk_ref, e.to_string()))?;
                continue;
            }
            // Re-encode the chunk without the deleted samples.
            let mut c = XorChunk::new();
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            let mut it = ChunkIterator::new(enc, &data);
            while it.next() {
                let (t, v) = it.at();
                if !tombstones::is_deleted(deleted, t) {
                    if c.num_samples() > 0 && t <= hi {
                        return Err(Error::corruption(
                            &self.dir,
                            m.chunk_ref,
                            "samples out of time order",
                        ));
                    }
                    c.append(t, v);
                    lo = lo.min(t);
                    hi = hi.max(t);
                }
            }
            if let Some(e) = it.err() {
                return Err(Error::corruption(&self.dir, m.chunk_ref, e.to_string()));
            }
            if lo <= hi {
                out.push(lo, hi, c.bytes());
            }
        }
        Ok(true)
    }
}

impl Block {
    /// Size of the mapped chunk segments, for statistics.
    #[allow(dead_code)]
    pub(crate) fn chunks_size(&self) -> u64 {
        self.chunks.size()
    }
}
