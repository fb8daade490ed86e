use super::*;
use crate::wal::record::{RefSample, RefSeries, encode_samples, encode_series};
use crate::wal::{SyncMode, Wal, WalOptions};
use std::io::Write;

fn labels(i: u64) -> Labels {
    Labels::from_pairs(&[("__name__", "m"), ("i", &i.to_string())])
}

fn series_rec(refs: &[u64]) -> Vec<u8> {
    let s: Vec<RefSeries> = refs
        .iter()
        .map(|&r| RefSeries {
            series: r,
            labels: labels(r),
        })
        .collect();
    let mut b = Vec::new();
    encode_series(&s, &mut b);
    b
}

fn samples_rec(samples: &[(u64, i64)]) -> Vec<u8> {
    let s: Vec<RefSample> = samples
        .iter()
        .map(|&(series, t)| RefSample {
            series,
            t,
            v: t as f64,
        })
        .collect();
    let mut b = Vec::new();
    encode_samples(&s, &mut b);
    b
}

fn open(dir: &Path, segment_size: u64) -> Wal {
    Wal::open(
        dir,
        WalOptions {
            segment_size,
            sync: SyncMode::Buffer,
        },
    )
    .unwrap()
}

/// Drains the watcher: (series refs seen, samples (ref, t) seen). Checks that each sample's
/// series came first (in this call or in an earlier one on the same watcher: `known`).
fn drain(w: &mut WalWatcher) -> (Vec<u64>, Vec<(u64, i64)>) {
    drain_known(w, &mut Vec::new())
}

fn drain_known(w: &mut WalWatcher, known: &mut Vec<u64>) -> (Vec<u64>, Vec<(u64, i64)>) {
    let (mut series, mut samples) = (Vec::new(), Vec::new());
    while let Some(e) = w.next_entry().unwrap() {
        match e {
            WalEntry::Series(s) => {
                for s in s {
                    assert_eq!(s.labels, labels(s.series_ref));
                    series.push(s.series_ref);
                    known.push(s.series_ref);
                }
            }
            WalEntry::Samples(s) => {
                for s in s {
                    assert!(
                        known.contains(&s.series_ref),
                        "sample of ref {} before its series",
                        s.series_ref
                    );
                    samples.push((s.series_ref, s.t));
                }
            }
            WalEntry::Histograms(h) => {
                for h in h {
                    assert!(known.contains(&h.series_ref), "histogram before its series");
                    samples.push((h.series_ref, h.t));
                }
            }
            WalEntry::SeriesReset(_) => {}
        }
    }
    (series, samples)
}

/// Writes `rounds` rounds of series and samples to `wal` (in `dir`), draining `w` every third
/// round, and checks that `w` returned every sample in order across more than 3 segments.
fn follow_across_segments(dir: &Path, wal: &mut Wal, w: &mut WalWatcher, rounds: u64) {
    let mut want = Vec::new();
    let mut got = Vec::new();
    let mut known = Vec::new();
    for round in 0..rounds {
        wal.log(&[&series_rec(&[round]), &samples_rec(&[(round, 1)])])
            .unwrap();
        want.push((round, 1));
        for r in 0..=round {
            wal.log(&[&samples_rec(&[(r, round as i64 + 2)])]).unwrap();
            want.push((r, round as i64 + 2));
        }
        if round % 3 == 0 {
            got.extend(drain_known(w, &mut known).1);
        }
    }
    got.extend(drain_known(w, &mut known).1);
    assert!(segment::list_segments(dir).unwrap().len() > 3);
    assert_eq!(got, want);
    assert_eq!(w.position(), wal.end_position());
    assert_eq!(w.skipped_segments(), 0);
}

#[test]
fn follows_the_writer_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), 300);
    let mut w = WalWatcher::new(dir.path(), WalPosition::default()).unwrap();
    follow_across_segments(dir.path(), &mut wal, &mut w, 20);
}

#[test]
fn returns_histogram_samples_in_order_with_floats() {
    use crate::histogram::{FloatHistogram, Span};
    use crate::wal::record::{RefHistogram, encode_histograms};
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), 4096);
    let h = |t: i64| FloatHistogram {
        schema: 1,
        count: t as f64,
        sum: 1.5 * t as f64,
        positive_spans: vec![Span {
            offset: 0,
            length: 1,
        }],
        positive_buckets: vec![t as f64],
        ..FloatHistogram::default()
    };
    let hist_rec = |t: i64| {
        let mut b = Vec::new();
        encode_histograms(
            &[RefHistogram {
                series: 1,
                t,
                h: h(t),
            }],
            &mut b,
        );
        b
    };
    wal.log(&[&series_rec(&[0, 1]), &samples_rec(&[(0, 5)]), &hist_rec(5)])
        .unwrap();
    let start = wal.end_position();
    wal.log(&[&hist_rec(6), &samples_rec(&[(0, 6)]), &hist_rec(7)])
        .unwrap();
    let mut all = Vec::new();
    let mut w = WalWatcher::new(dir.path(), WalPosition::default()).unwrap();
    while let Some(e) = w.next_entry().unwrap() {
        all.push(e);
    }
    let hists: Vec<&WalHistogram> = all
        .iter()
        .filter_map(|e| match e {
            WalEntry::Histograms(h) => Some(h),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(hists.len(), 3);
    for (got, t) in hists.iter().zip(5..) {
        assert_eq!((got.series_ref, got.t, &got.h), (1, t, &h(t)));
    }
    // A reader resuming after the first batch gets the later histograms and floats, in order.
    let (_, rest) = drain(&mut WalWatcher::new(dir.path(), start).unwrap());
    assert_eq!(rest, vec![(1, 6), (0, 6), (1, 7)]);
}

#[test]
fn resumes_at_its_position_with_series_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), 200);
    for i in 0..10u64 {
        wal.log(&[
            &series_rec(&[i]),
            &samples_rec(&[(i, 10), (0, i as i64 + 100)]),
        ])
        .unwrap();
    }
    let mut w = WalWatcher::new(dir.path(), WalPosition::default()).unwrap();
    let mut first = Vec::new();
    // Read about half, then resume a new watcher where this one stopped.
    while first.len() < 8 {
        if let Some(WalEntry::Samples(s)) = w.next_entry().unwrap() {
            first.extend(s.iter().map(|s| (s.series_ref, s.t)));
        }
    }
    let pos = w.position();
    let mut w2 = WalWatcher::new(dir.path(), pos).unwrap();
    let (series, rest) = drain(&mut w2);
    assert_eq!(
        series,
        (0..10).collect::<Vec<_>>(),
        "every series, samples or not"
    );
    let all: Vec<(u64, i64)> = first.into_iter().chain(rest).collect();
    let want: Vec<(u64, i64)> = (0..10u64)
        .flat_map(|i| [(i, 10), (0, i as i64 + 100)])
        .collect();
    assert_eq!(all, want, "no sample lost or repeated across the resume");
}

#[test]
fn waits_for_a_torn_tail_then_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(segment::segment_name(0));
    let mut seg = Vec::new();
    segment::put_segment_header(&mut seg);
    segment::put_frame(&mut seg, &series_rec(&[1]));
    let mut frame = Vec::new();
    segment::put_frame(&mut frame, &samples_rec(&[(1, 5)]));
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&seg).unwrap();
    f.write_all(&frame[..frame.len() - 3]).unwrap();
    let mut w = WalWatcher::new(dir.path(), WalPosition::default()).unwrap();
    let mut known = Vec::new();
    assert_eq!(drain_known(&mut w, &mut known), (vec![1], vec![]));
    f.write_all(&frame[frame.len() - 3..]).unwrap();
    assert_eq!(drain_known(&mut w, &mut known), (vec![], vec![(1, 5)]));
    // A record bigger than one read chunk.
    let big: Vec<(u64, i64)> = (0..READ_CHUNK as i64 / 8).map(|t| (1, t)).collect();
    let mut frame = Vec::new();
    segment::put_frame(&mut frame, &samples_rec(&big));
    assert!(frame.len() > READ_CHUNK);
    f.write_all(&frame).unwrap();
    assert_eq!(drain_known(&mut w, &mut known).1.len(), big.len());
}

#[test]
fn checkpoint_keeps_what_readers_need_up_to_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), 60);
    for i in 0..12u64 {
        wal.log(&[&series_rec(&[i]), &samples_rec(&[(i, 10)])])
            .unwrap();
    }
    let keepers = Keepers::default();
    let keep = keepers.keep(4);
    let cur = wal.current_segment();
    assert!(cur > 6, "{cur}");
    let from = keepers.first_needed(dir.path(), cur, None, None);
    assert_eq!(from, Some(4));
    wal.checkpoint_before(&|_| true, 0, from).unwrap();
    let segs: Vec<u32> = segment::list_segments(dir.path())
        .unwrap()
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    assert_eq!(segs.first(), Some(&4), "segments from the kept one on stay");
    // A reader at the kept position gets every series (from the checkpoint) and the samples
    // from there on.
    let mut w = WalWatcher::new(
        dir.path(),
        WalPosition {
            segment: 4,
            offset: 0,
        },
    )
    .unwrap();
    let (series, samples) = drain(&mut w);
    assert_eq!(series, (0..12).collect::<Vec<_>>());
    assert_eq!(samples.first(), Some(&(4, 10)));
    assert_eq!(w.skipped_segments(), 0);

    // Past the bound the oldest kept segments go, counted; a reader there skips and counts.
    let from = keepers.first_needed(dir.path(), cur, Some(300), None);
    assert!(from.unwrap() > 4, "{from:?}");
    assert!(keepers.metrics.segments_dropped.load(Ordering::Relaxed) > 0);
    wal.checkpoint_before(&|_| true, 0, from).unwrap();
    let mut w = WalWatcher::new(
        dir.path(),
        WalPosition {
            segment: 4,
            offset: 0,
        },
    )
    .unwrap();
    let (series, samples) = drain(&mut w);
    assert_eq!(series.len(), 12);
    assert!(samples.len() < 8 && !samples.is_empty(), "{samples:?}");
    assert!(w.skipped_segments() > 0);

    // Past the age bound every segment written before it goes, whatever its size.
    let before = keepers.metrics.segments_dropped.load(Ordering::Relaxed);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(
        keepers.first_needed(dir.path(), cur, None, Some(3_600_000)),
        from,
        "young segments stay (the deleted ones below them are skipped)"
    );
    assert_eq!(
        keepers.metrics.segments_dropped.load(Ordering::Relaxed),
        before
    );
    assert_eq!(
        keepers.first_needed(dir.path(), cur, None, Some(10)),
        Some(cur)
    );
    assert!(keepers.metrics.segments_dropped.load(Ordering::Relaxed) > before);

    // Without a handle everything closed is checkpointed.
    drop(keep);
    assert_eq!(keepers.first_needed(dir.path(), cur, None, None), None);
}

#[test]
fn a_reader_whose_segment_is_deleted_skips_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), 200);
    wal.log(&[&series_rec(&[0]), &samples_rec(&[(0, 1)])])
        .unwrap();
    let mut w = WalWatcher::new(dir.path(), WalPosition::default()).unwrap();
    let mut known = Vec::new();
    assert_eq!(drain_known(&mut w, &mut known).1, vec![(0, 1)]);
    for i in 1..10u64 {
        wal.log(&[&series_rec(&[i]), &samples_rec(&[(i, 10)])])
            .unwrap();
    }
    wal.checkpoint(&|_| true, 0).unwrap();
    wal.log(&[&samples_rec(&[(3, 20)])]).unwrap();
    let (series, samples) = drain_known(&mut w, &mut known);
    assert_eq!(samples, vec![(3, 20)]);
    assert!(series.contains(&3), "series re-read from the checkpoint");
    assert!(w.skipped_segments() > 0);
}

#[test]
fn a_new_checkpoint_returns_live_series_then_a_reset() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), 60);
    for i in 0..4u64 {
        wal.log(&[&series_rec(&[i]), &samples_rec(&[(i, 10)])])
            .unwrap();
    }
    let mut w = WalWatcher::new(dir.path(), WalPosition::default()).unwrap();
    let mut known = Vec::new();
    assert_eq!(drain_known(&mut w, &mut known).1.len(), 4);
    // Series 1 and 3 die; the checkpoint keeps 0 and 2. The reader is caught up, so a keeper
    // at its segment lets everything before it go.
    let keepers = Keepers::default();
    let _k = keepers.keep(w.position().segment);
    let cur = wal.current_segment();
    let from = keepers.first_needed(dir.path(), cur, None, None);
    wal.checkpoint_before(&|r| r % 2 == 0, 0, from).unwrap();
    wal.log(&[&series_rec(&[9]), &samples_rec(&[(9, 20)])])
        .unwrap();
    wal.log(&[&samples_rec(&[(2, 30)])]).unwrap();
    let mut entries = Vec::new();
    while let Some(e) = w.next_entry().unwrap() {
        entries.push(e);
    }
    let reset = entries
        .iter()
        .position(|e| matches!(e, WalEntry::SeriesReset(_)))
        .expect("a reset after the new checkpoint");
    let again: Vec<u64> = entries[..reset]
        .iter()
        .flat_map(|e| match e {
            WalEntry::Series(s) => s.iter().map(|s| s.series_ref).collect(),
            _ => vec![],
        })
        .collect();
    assert_eq!(again, vec![0, 2], "the live series, from the checkpoint");
    let samples: Vec<(u64, i64)> = entries
        .iter()
        .flat_map(|e| match e {
            WalEntry::Samples(s) => s.iter().map(|s| (s.series_ref, s.t)).collect(),
            _ => vec![],
        })
        .collect();
    assert_eq!(samples, vec![(9, 20), (2, 30)]);
}

#[test]
fn resumes_mid_segment_with_exact_values_of_delta_encoded_samples() {
    // One segment of samples records encoded against each other (segment version 3): a
    // watcher resuming in the middle must decode the frames before its position again to get
    // the values after it right.
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), 128 << 20);
    let value = |r: u64, round: i64| match r % 3 {
        0 => (r * 1000) as f64 + (round * (r as i64 % 7)) as f64, // counter
        1 => 20.0 + (round as f64 * 0.37 + r as f64).sin(),       // gauge
        _ => f64::from_bits(0x7ff8_0000_0000_0001 + round as u64), // NaN payloads
    };
    let refs: Vec<u64> = (1..=50).collect();
    wal.log(&[&series_rec(&refs)]).unwrap();
    let mut want = Vec::new();
    for round in 0..20i64 {
        let s: Vec<RefSample> = refs
            .iter()
            .map(|&r| RefSample {
                series: r,
                t: 1_000_000 + round * 15_000 + r as i64,
                v: value(r, round),
            })
            .collect();
        want.extend(s.iter().map(|s| (s.series, s.t, s.v.to_bits())));
        let mut b = Vec::new();
        encode_samples(&s, &mut b);
        wal.log(&[&b]).unwrap();
    }
    let samples = |w: &mut WalWatcher, max: usize| {
        let mut got = Vec::new();
        while got.len() < max {
            match w.next_entry().unwrap() {
                Some(WalEntry::Samples(s)) => {
                    got.extend(s.iter().map(|s| (s.series_ref, s.t, s.v.to_bits())))
                }
                Some(_) => {}
                None => break,
            }
        }
        got
    };
    let mut w = WalWatcher::new(dir.path(), WalPosition::default()).unwrap();
    let first = samples(&mut w, 7 * 50);
    let pos = w.position();
    assert_eq!(pos.segment, 0);
    assert!(
        pos.offset > 1000 && pos.offset < wal.end_position().offset,
        "{pos:?}"
    );
    let mut w2 = WalWatcher::new(dir.path(), pos).unwrap();
    let rest = samples(&mut w2, usize::MAX);
    assert_eq!(first.len() + rest.len(), want.len());
    assert_eq!(first, want[..first.len()]);
    assert_eq!(rest, want[first.len()..], "values after the resume point");
}

fn open_synced(dir: &Path, segment_size: u64) -> Wal {
    Wal::open(
        dir,
        WalOptions {
            segment_size,
            sync: SyncMode::Data,
        },
    )
    .unwrap()
}

#[test]
fn a_caught_up_watcher_of_a_live_wal_reads_none_of_the_zero_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open_synced(dir.path(), 8 << 20);
    wal.log(&[&series_rec(&[1, 2])]).unwrap();
    for t in 0..50 {
        wal.log(&[&samples_rec(&[(1, t), (2, t)])]).unwrap();
    }
    let end = wal.end_position();
    let path = dir.path().join(segment::segment_name(end.segment));
    let file_len = std::fs::metadata(&path).unwrap().len();
    assert!(
        file_len > end.offset + 4096,
        "the writer keeps zeros ahead: file {file_len} B, written {} B",
        end.offset
    );

    let mut w = WalWatcher::following(dir.path(), WalPosition::default(), wal.group()).unwrap();
    let mut known = Vec::new();
    let (series, samples) = drain_known(&mut w, &mut known);
    assert_eq!(series, vec![1, 2]);
    assert_eq!(samples.len(), 100);
    assert_eq!(w.position(), end);
    assert!(w.bytes_read <= end.offset + 2 * SEGMENT_HEADER_LEN as u64);

    // Caught up: polls read nothing, although the file is longer than what was written.
    let polled = w.bytes_read;
    for _ in 0..5 {
        assert_eq!(w.next_entry().unwrap(), None);
    }
    assert_eq!(w.bytes_read, polled);

    // New batches are read, and only them (plus the segment header checked per read).
    wal.log(&[&samples_rec(&[(1, 50), (2, 50)])]).unwrap();
    let grown = wal.end_position().offset - end.offset;
    let (_, samples) = drain_known(&mut w, &mut known);
    assert_eq!(samples, vec![(1, 50), (2, 50)]);
    assert!(w.bytes_read - polled <= grown + 2 * SEGMENT_HEADER_LEN as u64);

    // A watcher without the writer's end reads the zeros as a torn tail on every poll.
    let mut blind = WalWatcher::new(dir.path(), WalPosition::default()).unwrap();
    assert_eq!(drain(&mut blind).1.len(), 102);
    let polled = blind.bytes_read;
    assert_eq!(blind.next_entry().unwrap(), None);
    assert!(blind.bytes_read - polled > 4096);
}

#[test]
fn a_watcher_of_a_live_wal_follows_a_preallocating_writer_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open_synced(dir.path(), 2048);
    let mut w = WalWatcher::following(dir.path(), WalPosition::default(), wal.group()).unwrap();
    follow_across_segments(dir.path(), &mut wal, &mut w, 40);
}
