//! WAL checkpoints: the live subset of closed segments, rewritten so those segments can go.
//! OWNER: codec helper.
//!
//! `checkpoint.NNNNNNNN/` covers every segment up to and including `NNNNNNNN`. It holds segment
//! files in the ordinary framing (`segment.rs`) with the records that survive the filter:
//! series records of kept series, samples of kept series with `t >= mint`, and tombstones of kept
//! series with `maxt >= mint`. It is written to `checkpoint.NNNNNNNN.tmp/`, fsynced and renamed
//! into place, so a crash leaves either the old or the new checkpoint. Replay reads the latest
//! checkpoint, then the segments after it.

use super::compress::{Compressor, Decompressor};
use super::record::{self, Record};
use super::segment::{self, SegmentReader};
use crate::encoding::put_uvarint;
use crate::encoding::varint::put_str;
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Prefix of checkpoint directory names.
pub(crate) const CHECKPOINT_PREFIX: &str = "checkpoint.";
/// Suffix of a checkpoint being written.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Name of the checkpoint covering segments up to `last`.
pub(crate) fn checkpoint_name(last: u32) -> String {
    format!("{CHECKPOINT_PREFIX}{last:08}")
}

/// Complete checkpoints in `dir`, sorted by index.
pub(crate) fn list_checkpoints(dir: &Path) -> Result<Vec<(u32, PathBuf)>> {
    crate::fs::numbered_entries(dir, CHECKPOINT_PREFIX)
}

/// Removes leftovers of interrupted checkpoints (`checkpoint.*.tmp`).
pub(crate) fn remove_tmp(dir: &Path) -> Result<()> {
    crate::fs::remove_leftovers(dir, CHECKPOINT_PREFIX, TMP_SUFFIX, |p| {
        std::fs::remove_dir_all(p)
    })
}

/// Reads every record of the segment at `path` (decompressed) into `f(record, offset)`, reusing
/// `buf` (streamed: see [`segment::stream_segment`]). Any torn or corrupt frame is an error
/// (closed segments and checkpoints were repaired at open), and so is a payload that does not
/// decompress.
pub(crate) fn read_segment(
    path: &Path,
    buf: &mut Vec<u8>,
    f: &mut dyn FnMut(&[u8], usize) -> Result<()>,
) -> Result<()> {
    let mut dec = Decompressor::default();
    read_segment_with(path, buf, &mut |r: &SegmentReader<'_>| {
        f(r.record(&mut dec)?, r.record_offset())
    })
}

/// [`read_segment`] handing `f` the reader on each frame (to decode it as it needs).
pub(crate) fn read_segment_with(
    path: &Path,
    buf: &mut Vec<u8>,
    f: &mut dyn FnMut(&SegmentReader<'_>) -> Result<()>,
) -> Result<()> {
    match segment::stream_segment(path, buf, f)?.tail {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Decodes a framed record, attributing failures to `path` at `offset`.
pub(crate) fn decode_at(payload: &[u8], path: &Path, offset: usize) -> Result<Record> {
    record::decode(payload).map_err(|e| match e {
        Error::Corruption { reason, .. } => Error::corruption(path, offset as u64, reason),
        other => other,
    })
}

/// Writes `checkpoint.{last}` from the previous checkpoint (if any) and `segments`, keeping what
/// the filter allows. Returns its path. Does not delete anything.
pub(crate) fn write(
    dir: &Path,
    prev: Option<&Path>,
    segments: &[(u32, PathBuf)],
    last: u32,
    keep_series: &dyn Fn(u64) -> bool,
    mint: i64,
) -> Result<PathBuf> {
    write_with(dir, last, &mut |put| {
        filter_into(prev, segments, keep_series, mint, put)
    })
}

/// Writes `checkpoint.{last}` holding series records only: the state of segments up to `last`
/// when a head snapshot holds their samples (so WAL readers and a replay without the snapshot
/// still know every series). `fill` hands each series to the [`SeriesRecords`] it is given
/// (streamed: nothing of the size of the series set is held). Returns its path. Does not
/// delete anything.
pub(crate) fn write_series(dir: &Path, last: u32, fill: &mut FillSeries<'_>) -> Result<PathBuf> {
    write_with(dir, last, &mut |put| {
        let mut recs = SeriesRecords {
            enc: Vec::new(),
            count: 0,
            put,
        };
        fill(&mut recs)?;
        recs.flush()
    })
}

/// Hands each series of a series-only checkpoint to [`SeriesRecords::add`].
pub(crate) type FillSeries<'a> = dyn FnMut(&mut SeriesRecords<'_>) -> Result<()> + 'a;

/// Encodes series into series records of [`SERIES_PER_RECORD`] series each, byte for byte as
/// [`record::encode_series`] does, without an owned label set per series.
pub(crate) struct SeriesRecords<'a> {
    enc: Vec<u8>,
    count: usize,
    put: &'a mut dyn FnMut(&[u8]) -> Result<()>,
}

impl SeriesRecords<'_> {
    /// Adds series `id` with its label pairs (sorted by name, as in a series record).
    pub(crate) fn add<'l>(
        &mut self,
        id: u64,
        labels: impl Iterator<Item = (&'l str, &'l str)> + Clone,
    ) -> Result<()> {
        if self.count == 0 {
            self.enc.clear();
            self.enc.push(record::TYPE_SERIES);
        }
        put_uvarint(&mut self.enc, id);
        put_uvarint(&mut self.enc, labels.clone().count() as u64);
        for (name, value) in labels {
            put_str(&mut self.enc, name);
            put_str(&mut self.enc, value);
        }
        self.count += 1;
        if self.count == SERIES_PER_RECORD {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the series record being filled, if any.
    fn flush(&mut self) -> Result<()> {
        if self.count > 0 {
            self.count = 0;
            (self.put)(&self.enc)?;
        }
        Ok(())
    }
}

/// Series per series record in [`write_series`].
const SERIES_PER_RECORD: usize = 1000;

/// Hands each record to write to the function it is given.
type Fill<'a> = dyn FnMut(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> + 'a;

/// Writes `checkpoint.{last}` with the records `fill` produces: into `….tmp/`, fsynced, renamed.
fn write_with(dir: &Path, last: u32, fill: &mut Fill<'_>) -> Result<PathBuf> {
    let final_path = dir.join(checkpoint_name(last));
    let tmp = dir.join(format!("{}{TMP_SUFFIX}", checkpoint_name(last)));
    let io = |what: &str, p: &Path, e| Error::io(format!("cannot {what} {}", p.display()), e);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io("remove", &tmp, e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| io("create", &tmp, e))?;
    let res = write_tmp(&tmp, fill);
    if res.is_err() {
        // A full disk must not keep a half-written checkpoint around until the next open.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    res?;
    if final_path.exists() {
        std::fs::remove_dir_all(&final_path).map_err(|e| io("remove", &final_path, e))?;
    }
    std::fs::rename(&tmp, &final_path).map_err(|e| io("rename", &tmp, e))?;
    segment::fsync_dir(dir)?;
    Ok(final_path)
}

/// Writes the checkpoint's single segment into `tmp` and fsyncs it.
fn write_tmp(tmp: &Path, fill: &mut Fill<'_>) -> Result<()> {
    let io = |what: &str, p: &Path, e| Error::io(format!("cannot {what} {}", p.display()), e);
    let seg_path = tmp.join(segment::segment_name(0));
    let file = std::fs::File::create(&seg_path).map_err(|e| io("create", &seg_path, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut frame = Vec::new();
    segment::put_segment_header(&mut frame);
    let mut comp = Compressor::new();
    fill(&mut |rec: &[u8]| {
        comp.put_frame(&mut frame, rec);
        w.write_all(&frame).map_err(|e| io("write", &seg_path, e))?;
        frame.clear();
        Ok(())
    })?;
    w.write_all(&frame).map_err(|e| io("write", &seg_path, e))?;
    let file = w
        .into_inner()
        .map_err(|e| io("write", &seg_path, e.into_error()))?;
    file.sync_all().map_err(|e| io("fsync", &seg_path, e))?;
    drop(file);
    segment::fsync_dir(tmp)
}

/// The records of `prev` and `segments` that the filter keeps, handed to `put`.
fn filter_into(
    prev: Option<&Path>,
    segments: &[(u32, PathBuf)],
    keep_series: &dyn Fn(u64) -> bool,
    mint: i64,
    put: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut sources: Vec<PathBuf> = Vec::new();
    if let Some(p) = prev {
        sources.extend(segment::list_segments(p)?.into_iter().map(|(_, p)| p));
    }
    sources.extend(segments.iter().map(|(_, p)| p.clone()));

    let mut buf = Vec::new();
    let mut enc = Vec::new();
    for src in &sources {
        read_segment(src, &mut buf, &mut |payload, off| {
            let rec = match decode_at(payload, src, off)? {
                Record::Series(mut s) => {
                    s.retain(|s| keep_series(s.series));
                    Record::Series(s)
                }
                Record::Samples(mut s) => {
                    s.retain(|s| s.t >= mint && keep_series(s.series));
                    Record::Samples(s)
                }
                Record::Tombstones(mut t) => {
                    t.retain(|t| t.maxt >= mint && keep_series(t.series));
                    Record::Tombstones(t)
                }
                Record::Histograms(mut h) => {
                    h.retain(|s| s.t >= mint && keep_series(s.series));
                    Record::Histograms(h)
                }
            };
            let empty = match &rec {
                Record::Series(s) => s.is_empty(),
                Record::Samples(s) => s.is_empty(),
                Record::Tombstones(t) => t.is_empty(),
                Record::Histograms(h) => h.is_empty(),
            };
            if !empty {
                enc.clear();
                rec.encode(&mut enc);
                put(&enc)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use crate::model::Labels;

    /// The records of the checkpoint segment at `cp`.
    fn records(cp: &Path) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (_, p) in segment::list_segments(cp).unwrap() {
            read_segment(&p, &mut Vec::new(), &mut |r, _| {
                out.push(r.to_vec());
                Ok(())
            })
            .unwrap();
        }
        out
    }

    #[test]
    fn series_records_are_those_encode_series_writes() {
        // More than two records' worth, the last one partial; label sets of several sizes.
        let series: Vec<record::RefSeries> = (0..2_345u64)
            .map(|i| {
                let mut pairs = vec![
                    ("__name__".to_string(), format!("metric_{}", i % 7)),
                    ("instance".to_string(), format!("host-{i}:9100")),
                ];
                for k in 0..i % 4 {
                    pairs.push((format!("z{k}"), "é".repeat(usize::try_from(k).unwrap())));
                }
                record::RefSeries {
                    series: i * 3 + 1,
                    labels: Labels::from_pairs(&pairs),
                }
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let cp = write_series(dir.path(), 7, &mut |recs| {
            for s in &series {
                recs.add(
                    s.series,
                    s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
                )?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(cp, dir.path().join(checkpoint_name(7)));
        let want: Vec<Vec<u8>> = series
            .chunks(SERIES_PER_RECORD)
            .map(|part| {
                let mut enc = Vec::new();
                record::encode_series(part, &mut enc);
                enc
            })
            .collect();
        assert_eq!(want.len(), 3);
        assert_eq!(records(&cp), want);
        // And they decode to the series given.
        let mut back = Vec::new();
        for r in records(&cp) {
            match record::decode(&r).unwrap() {
                Record::Series(s) => back.extend(s),
                _ => panic!("not a series record"),
            }
        }
        assert_eq!(back, series);
    }

    #[test]
    fn no_series_writes_an_empty_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let cp = write_series(dir.path(), 0, &mut |_| Ok(())).unwrap();
        assert!(records(&cp).is_empty());
    }
}
