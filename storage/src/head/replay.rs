//! Rebuilds the head from the WAL: series records create series under their logged refs,
//! samples are applied as commits apply them, tombstones delete.
//!
//! Two threads: the caller's reads, decompresses and decodes records (`Wal::replay`), a scoped
//! one applies them in WAL order. At most [`QUEUE`] decoded records wait between the two, so memory
//! stays bounded whatever the WAL's size.

use super::Head;
use super::series::{Applied, Series, U64Map};
use crate::error::{Error, Result};
use crate::wal::{Record, Wal};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Decoded records in flight between the decoding and the applying thread (a samples record
/// holds a batch: a few thousand samples).
const QUEUE: usize = 16;

/// What a replay found.
#[derive(Debug, Default, Clone)]
pub(crate) struct ReplayOutcome {
    pub(crate) records: u64,
    pub(crate) samples: u64,
    pub(crate) unknown_refs: u64,
    pub(crate) truncated_bytes: u64,
}

/// Replays `wal` into `head`. Without an out-of-order window, samples older than the head's min
/// valid time (already in blocks) are skipped.
pub(crate) fn replay(head: &Head, wal: &Wal) -> Result<ReplayOutcome> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Record>(QUEUE);
    std::thread::scope(|scope| {
        let applier = std::thread::Builder::new()
            .name("wal-replay".into())
            .spawn_scoped(scope, move || apply_all(head, rx))
            .map_err(|e| Error::io("cannot start the WAL replay thread", e))?;
        // A send fails only when the applier stopped on an error, which it returns.
        let stats = wal.replay(&mut |rec| tx.send(rec).map_err(|_| Error::Closed));
        drop(tx);
        let applied = match applier.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        };
        let mut out = applied?;
        let stats = stats?;
        out.records = stats.records;
        out.truncated_bytes = stats.truncated_bytes;
        Ok(out)
    })
}

/// Applies the records `rx` yields until the decoder is done (or an error).
fn apply_all(head: &Head, rx: std::sync::mpsc::Receiver<Record>) -> Result<ReplayOutcome> {
    let mut refs: U64Map<Arc<Series>> = U64Map::default();
    let mut out = ReplayOutcome::default();
    let min_valid = head.min_valid_time();
    let (range, window) = (head.opts.block_range, head.opts.ooo_window);
    let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
    for rec in rx {
        match rec {
            Record::Series(series) => {
                for rs in series {
                    let (s, _) = head.get_or_create(&rs.labels, Some(rs.series))?;
                    s.logged.store(true, Ordering::Release);
                    refs.insert(rs.series, s);
                }
            }
            Record::Samples(samples) => {
                for rs in samples {
                    // Without an out-of-order window everything below the min valid time is in
                    // blocks. With one, the WAL also holds old samples accepted after the last
                    // cut; replaying them all is safe (a copy already in a block is merged away
                    // by compaction's deduplication).
                    if rs.t < min_valid && window <= 0 {
                        continue;
                    }
                    let Some(s) = refs.get(&rs.series) else {
                        out.unknown_refs += 1;
                        continue;
                    };
                    // Replay accepts what the live head accepted: the OOO window applies, but
                    // a sample rejected at commit time is rejected the same way here.
                    let window = window.max(0);
                    let files = &head.chunk_files;
                    match s.data.lock().apply(s.id, rs.t, rs.v, range, window, files) {
                        Applied::InOrder | Applied::OutOfOrder => {
                            out.samples += 1;
                            mint = mint.min(rs.t);
                            maxt = maxt.max(rs.t);
                        }
                        _ => {}
                    }
                }
            }
            Record::Histograms(hs) => {
                for rh in hs {
                    if rh.t < min_valid && window <= 0 {
                        continue;
                    }
                    let Some(s) = refs.get(&rh.series) else {
                        out.unknown_refs += 1;
                        continue;
                    };
                    let (window, files) = (window.max(0), &head.chunk_files);
                    if matches!(
                        s.data
                            .lock()
                            .apply_histogram(rh.t, &rh.h, range, window, files),
                        Applied::InOrder | Applied::OutOfOrder
                    ) {
                        out.samples += 1;
                        mint = mint.min(rh.t);
                        maxt = maxt.max(rh.t);
                    }
                }
            }
            Record::Tombstones(ts) => {
                for t in ts {
                    let id = refs.get(&t.series).map(|s| s.id);
                    if let Some(id) = id {
                        head.delete(&[id], t.mint, t.maxt, false)?;
                    }
                }
            }
        }
    }
    head.update_time_range(mint, maxt);
    Ok(out)
}
