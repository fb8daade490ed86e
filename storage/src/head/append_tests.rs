//! Tests of the float append's lock-free in-order verdict ([`Series::in_order_unlocked`]) and
//! of the commit's handling of series dropped meanwhile ([`HeadAppender::rehome_removed`]).

use super::super::HeadChunkFiles;
use super::super::series::NO_LAST;
use super::*;
use crate::chunk::XorIterator;
use crate::histogram::{FloatHistogram, Span};
use crate::interface::SampleIterator;
use crate::test_rng::Rng;
use std::sync::atomic::Ordering::Relaxed;

fn hist(count: f64) -> FloatHistogram {
    FloatHistogram {
        schema: 0,
        count,
        sum: count * 1.5,
        positive_spans: vec![Span {
            offset: 0,
            length: 2,
        }],
        positive_buckets: vec![count / 2.0, count / 2.0],
        ..FloatHistogram::default()
    }
}

fn labels(name: &str) -> Labels {
    Labels::from_pairs(&[("__name__", name)])
}

/// The in-order float samples (closed and open chunks, then the out-of-order buffer) of the
/// head's series with `l`, as `(t, value bits)`; and its ref.
fn stored(head: &Head, l: &Labels) -> (u64, Vec<(Timestamp, u64)>) {
    let s = head
        .series
        .get_by_labels(l.stable_hash(), l)
        .expect("the series is in the head");
    let d = s.data.lock();
    let mut out = Vec::new();
    let mut decode = |bytes: &[u8]| {
        let mut it = XorIterator::new(bytes);
        while it.next() {
            let (t, v) = it.at();
            out.push((t, v.to_bits()));
        }
    };
    let mut buf = Vec::new();
    for c in &d.closed {
        buf.clear();
        head.chunk_files.read_into(c.r, &mut buf).unwrap();
        decode(&buf);
    }
    if let Some(o) = &d.open {
        decode(o.chunk.bytes());
    }
    out.extend(d.ooo().iter().map(|&(t, v)| (t, v.to_bits())));
    (s.id(), out)
}

/// The outcome `append_float` gives for a locked verdict (no bounds in an in-memory head).
fn outcome(a: Applied) -> std::result::Result<(), &'static str> {
    match a {
        Applied::InOrder | Applied::OutOfOrder | Applied::Duplicate => Ok(()),
        Applied::RejectDuplicate => Err("duplicate"),
        Applied::RejectOutOfOrder => Err("out of order"),
        Applied::RejectTooOld => Err("too old"),
        Applied::RejectOutOfBounds => Err("out of bounds"),
    }
}

fn error_name(e: &Error) -> &'static str {
    match e {
        Error::DuplicateSample => "duplicate",
        Error::OutOfOrder => "out of order",
        Error::TooOld => "too old",
        Error::OutOfBounds => "out of bounds",
        other => panic!("unexpected error {other}"),
    }
}

/// On random series states (in-order, out-of-order and duplicate floats, histograms,
/// truncation), the lock-free verdict is only ever `InOrder` where the locked check says
/// `InOrder`, and for a series that never held histograms it says so wherever the check does
/// (so the common case never takes the lock).
#[test]
fn unlocked_verdict_is_the_locked_checks_in_order() {
    let (mut fast, mut declined_in_order) = (0, 0);
    for seed in 1..300u64 {
        let mut rng = Rng(seed * 0x9e37_79b9);
        let window = [0, 50, 1_000][(seed % 3) as usize];
        let files = HeadChunkFiles::in_memory();
        let s = Series::new(seed, super::super::labels::SeriesLabels::new(&labels("m")));
        let lw = s.lock_word();
        let with_hist = seed % 4 == 0;
        let mut t = rng.below(2_000) as i64 - 1_000;
        for round in 0..60 {
            let mut d = s.data.lock();
            match rng.below(20) {
                0 if with_hist => {
                    t += rng.below(30) as i64;
                    d.apply_histogram(lw, t, &hist(3.0), 1 << 20, window, &files);
                }
                1 => d.truncate(t - rng.below(200) as i64),
                2..6 => {
                    let back = t - rng.below(120) as i64;
                    d.apply(lw, back, rng.below(3) as f64, 1 << 20, window, &files);
                }
                _ => {
                    t += rng.below(40) as i64;
                    d.apply(lw, t, rng.below(3) as f64, 1 << 20, window, &files);
                }
            }
            for _ in 0..8 {
                let at = match rng.below(10) {
                    0 => NO_LAST,
                    1 => i64::MAX,
                    _ => t + rng.below(200) as i64 - 120,
                };
                let v = rng.below(3) as f64;
                let locked = d.check(lw, None, at, v, window, &files);
                if s.in_order_unlocked(at) {
                    fast += 1;
                    assert_eq!(
                        locked,
                        Applied::InOrder,
                        "seed {seed} round {round} t {at}: lock-free InOrder, check {locked:?}"
                    );
                } else if locked == Applied::InOrder {
                    declined_in_order += 1;
                    assert!(
                        d.hist().is_some(),
                        "seed {seed} round {round} t {at}: check InOrder, lock-free declined \
                         on a float-only series"
                    );
                }
            }
        }
    }
    assert!(
        fast > 10_000 && declined_in_order > 100,
        "{fast} {declined_in_order}"
    );
}

/// Through the appender, one sample per batch against random series states, each append
/// answers as the locked check in the same state: in order, duplicates (same value: kept
/// once; other value: rejected), out of order with and without a window, too old, and floats
/// against histograms; and stores what that verdict says.
#[test]
fn appends_answer_as_the_locked_check() {
    for seed in 1..40u64 {
        let window = [0, 100][(seed % 2) as usize];
        let head = Arc::new(Head::in_memory(1 << 20, window));
        let mut app = HeadAppender::new(head.clone());
        let l = labels("m");
        let r = app.append(None, &l, 0, 0.0).unwrap();
        app.commit().unwrap();
        let handle = app.handle(r);
        let s = head.series.get(r.0).unwrap();
        let mut rng = Rng(seed);
        let mut t = 0i64;
        let mut want: Vec<(Timestamp, u64)> = vec![(0, 0f64.to_bits())];
        for step in 0..400 {
            if seed % 3 == 0 && rng.below(15) == 0 {
                t += 1 + rng.below(5) as i64;
                app.append_histogram(None, &l, t, &hist(2.0)).unwrap();
                app.commit().unwrap();
                continue;
            }
            let at = match rng.below(8) {
                0 => t,
                1 => t - rng.below(300) as i64,
                _ => {
                    t += 1 + rng.below(9) as i64;
                    t
                }
            };
            let v = rng.below(3) as f64;
            let verdict =
                s.data
                    .lock()
                    .check(s.lock_word(), None, at, v, window, &head.chunk_files);
            let got = match step % 4 {
                0 => app.append(None, &l, at, v).map(|_| ()),
                1 => app.append_ref(r, at, v).map(|x| assert_eq!(x, Some(r))),
                2 => app
                    .append_held(handle.hold().unwrap(), at, v)
                    .map(|x| assert_eq!(x, Some(r))),
                _ => app
                    .append_handle(&handle, at, v)
                    .map(|x| assert_eq!(x, Some(r))),
            };
            assert_eq!(
                got.map_err(|e| error_name(&e)),
                outcome(verdict),
                "seed {seed} step {step}: t {at} v {v} (newest {t})"
            );
            app.commit().unwrap();
            if matches!(verdict, Applied::InOrder | Applied::OutOfOrder) {
                want.push((at, v.to_bits()));
            }
        }
        let (_, mut got) = stored(&head, &l);
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "seed {seed}");
    }
}

/// Two appenders race on one series, one sample per commit over the same timestamps, with
/// their own values or equal ones. Whichever way each race goes (seen at append or only at
/// apply), every timestamp is stored exactly once, each loser of other values is counted once,
/// and a sample refused at append is the one the other appender stored: what the locked check
/// gives, as the apply checks again under the lock.
#[test]
fn racing_appenders_store_each_timestamp_once() {
    const N: i64 = 4_000;
    for same_values in [false, true] {
        let head = Arc::new(Head::in_memory(1 << 30, 0));
        let l = labels("raced");
        let r = {
            let mut app = HeadAppender::new(head.clone());
            let r = app.append(None, &l, 0, 0.0).unwrap();
            app.commit().unwrap();
            r
        };
        let value = move |who: i64, t: i64| {
            if same_values {
                t as f64
            } else {
                (t * 2 + who) as f64
            }
        };
        let run = |who: i64| {
            let head = head.clone();
            std::thread::spawn(move || {
                let mut app = HeadAppender::new(head);
                let handle = app.handle(r);
                let mut refused = Vec::new();
                for t in 1..=N {
                    // Held: the lock-free path, as remote write appends.
                    match app.append_held(handle.hold().unwrap(), t, value(who, t)) {
                        Ok(x) => assert_eq!(x, Some(r)),
                        Err(e) => refused.push((t, error_name(&e))),
                    }
                    app.commit().unwrap();
                }
                refused
            })
        };
        let (a, b) = (run(0), run(1));
        let refused = [a.join().unwrap(), b.join().unwrap()];
        let (_, got) = stored(&head, &l);
        let times: Vec<i64> = got.iter().map(|x| x.0).collect();
        assert_eq!(
            times,
            (0..=N).collect::<Vec<_>>(),
            "same values {same_values}"
        );
        let m = &head.metrics;
        let rejected = m.rejected_duplicate.load(Relaxed) + m.rejected_out_of_order.load(Relaxed);
        assert_eq!(m.samples_appended.load(Relaxed), N as u64 + 1);
        if same_values {
            // Equal samples are duplicates, not rejections; a loser behind the winner's newer
            // samples is out of order, at append or at apply.
            assert_eq!(m.rejected_duplicate.load(Relaxed), 0);
            let at_append = refused.iter().map(Vec::len).sum::<usize>() as u64;
            assert!(rejected >= at_append, "{rejected} < {at_append}");
            assert!(
                refused.iter().flatten().all(|x| x.1 == "out of order"),
                "{refused:?}"
            );
            continue;
        }
        assert_eq!(rejected, N as u64, "one loser per timestamp");
        for (who, list) in refused.iter().enumerate() {
            for &(t, why) in list {
                assert!(why == "duplicate" || why == "out of order", "{why}");
                let other = value(1 - who as i64, t).to_bits();
                assert_eq!(got.get(t as usize), Some(&(t, other)), "t {t}");
            }
        }
    }
}

/// What `Head::truncate` does to a series it drops, without its check of the reference
/// count: marks it removed under its lock and takes it out of the maps and postings.
fn drop_series(head: &Head, s: &Arc<Series>) {
    let hash = s.hash();
    let mut st = head.series.hash_stripe(hash).write();
    let mut refs = head.series.ref_stripe(s.id()).write();
    {
        let _d = s.data.lock();
        s.removed().store(true, Relaxed);
    }
    st.remove_hash(hash, s);
    refs.remove(&s.id());
    head.postings.write().remove(s.id() as u32, s.labels.iter());
}

/// A series the head dropped after a batch took it lock-free (the race the commit's fence
/// catches) loses no sample: the commit moves its samples to a series of the same labels,
/// new or already in the batch.
#[test]
fn a_series_dropped_between_append_and_commit_keeps_its_samples() {
    for also_by_labels in [false, true] {
        let head = Arc::new(Head::in_memory(1 << 20, 0));
        let l = labels("dropped");
        let mut app = HeadAppender::new(head.clone());
        let r = app.append(None, &l, 10, 1.0).unwrap();
        app.commit().unwrap();
        let handle = app.handle(r);
        let old = head.series.get(r.0).unwrap();
        // Held, as remote write appends (a scrape's `append_handle` checks under the lock,
        // where the drop is seen, so the race cannot leave it a dropped series).
        let held = handle.hold().unwrap();
        assert_eq!(app.append_held(held, 20, 2.0).unwrap(), Some(r));
        drop_series(&head, &old);
        assert!(head.series.get(r.0).is_none());
        if also_by_labels {
            // Appended by labels after the drop: a new series, also in the batch.
            app.append(None, &l, 30, 3.0).unwrap();
        }
        app.commit().unwrap();
        let (id, got) = stored(&head, &l);
        assert_ne!(id, r.0);
        let mut want = vec![(20, 2f64.to_bits())];
        if also_by_labels {
            want.push((30, 3f64.to_bits()));
        }
        assert_eq!(got, want, "by labels too: {also_by_labels}");
        assert_eq!(
            head.metrics.samples_appended.load(Relaxed),
            want.len() as u64 + 1
        );
        // The dropped series got nothing.
        assert!(
            old.data
                .lock()
                .open
                .as_ref()
                .is_some_and(|o| o.max_t() == 10)
        );
    }
}

/// A truncation that empties a series a batch holds (taken lock-free) keeps it, leaves no
/// removed mark behind, and the commit applies into it.
#[test]
fn truncation_keeps_a_series_a_batch_holds() {
    let head = Arc::new(Head::in_memory(1_000, 0));
    let l = labels("held");
    let mut app = HeadAppender::new(head.clone());
    let r = app.append(None, &l, 10, 1.0).unwrap();
    app.commit().unwrap();
    let handle = app.handle(r);
    assert_eq!(app.append_handle(&handle, 5_000, 2.0).unwrap(), Some(r));
    head.truncate(2_000);
    let s = head.series.get(r.0).expect("a held series stays");
    assert!(!s.removed().load(Relaxed));
    app.commit().unwrap();
    assert_eq!(stored(&head, &l), (r.0, vec![(5_000, 2f64.to_bits())]));
    // Not held: the next truncation drops it, and its handle no longer appends.
    drop(s);
    head.truncate(6_000);
    assert!(head.series.get(r.0).is_none());
    assert_eq!(app.append_handle(&handle, 7_000, 3.0).unwrap(), None);
}

/// Series repeating in one batch get the verdicts of the rules, against the batch's pending
/// sample, whether the batch index finds them in their slot or in its spill map (refs one
/// table apart), by ref, by handle or by labels: a float repeating the pending sample is accepted
/// once (a histogram is not), another value at its time is a duplicate, an older time out of order (or accepted in
/// the window), a float older than a pending histogram out of order; and the commit stores
/// exactly the accepted floats.
#[test]
fn repeats_in_one_batch_are_checked_against_the_pending_sample() {
    for window in [0, 1000] {
        let head = Arc::new(Head::in_memory(7_200_000, window));
        let n = 3000;
        let name = |i: usize| format!("m{i}");
        let mut app = HeadAppender::new(head.clone());
        let mut refs = Vec::new();
        for i in 0..n {
            refs.push(app.append(None, &labels(&name(i)), 10, 0.0).unwrap());
        }
        app.commit().unwrap();
        // Every 256th ref (one slot of a small table, then of larger ones) and a dense run.
        let mut chosen: Vec<usize> = (0..n).step_by(256).collect();
        chosen.extend(1000..1040);
        let hist_series: Vec<usize> = chosen.iter().copied().filter(|i| i % 3 == 0).collect();
        let res = |r: Result<SeriesRef>| r.map(|_| ()).map_err(|e| error_name(&e));
        let mut got: Vec<(usize, usize, std::result::Result<(), &str>)> = Vec::new();
        for round in 0..9 {
            for &i in &chosen {
                let (r, l) = (refs[i], labels(&name(i)));
                let v = i as f64;
                let float = |app: &mut HeadAppender, t: Timestamp, v: f64| match i % 4 {
                    0 => app.append_ref(r, t, v).map(Option::unwrap),
                    1 => {
                        let h = app.handle(r);
                        app.append_handle(&h, t, v).map(Option::unwrap)
                    }
                    _ => app.append(None, &l, t, v),
                };
                let out = if hist_series.contains(&i) {
                    let h = |c: f64| hist(c + v);
                    match round {
                        0 | 1 => app.append_histogram(None, &l, 100, &h(1.0)),
                        2 => app.append_histogram(None, &l, 100, &h(2.0)),
                        3 => app.append_histogram(None, &l, 50, &h(1.0)),
                        4 => app.append_histogram(None, &l, 200, &h(3.0)),
                        5 => float(&mut app, 150, v),
                        6 => float(&mut app, 200, v),
                        _ => app.append_histogram(None, &l, 300 + round as i64, &h(4.0)),
                    }
                } else {
                    match round {
                        0 | 1 => float(&mut app, 100, v),
                        2 => float(&mut app, 100, v + 0.5),
                        3 | 4 => float(&mut app, 50, v),
                        5 => float(&mut app, 200, v),
                        6 => float(&mut app, 150, v),
                        _ => float(&mut app, 300 + round as i64, v),
                    }
                };
                got.push((round, i, res(out)));
            }
        }
        let want = |hist: bool, round: usize| -> std::result::Result<(), &str> {
            match (hist, round) {
                // A histogram at its pending one's time is a duplicate whatever its buckets
                // (the batch keeps no pending histogram to compare with).
                (true, 1) | (_, 2) => Err("duplicate"),
                (_, 3) | (false, 4) if window == 0 => Err("out of order"),
                (true, 5) | (false, 6) if window == 0 => Err("out of order"),
                (true, 6) => Err("duplicate"),
                _ => Ok(()),
            }
        };
        let wrong: Vec<_> = got
            .iter()
            .filter(|&&(round, i, r)| r != want(hist_series.contains(&i), round))
            .map(|&(round, i, r)| (round, i, hist_series.contains(&i), r))
            .collect();
        assert!(
            wrong.is_empty(),
            "window {window}: (round, series, hist, got) {wrong:?}"
        );
        app.commit().unwrap();
        for &i in chosen.iter().filter(|i| !hist_series.contains(i)) {
            let (_, floats) = stored(&head, &labels(&name(i)));
            let v = (i as f64).to_bits();
            let mut want = vec![(10, 0f64.to_bits()), (100, v), (200, v)];
            want.extend((7..9).map(|r| (300 + r, v)));
            if window > 0 {
                // The out-of-order buffer, after the chunks.
                want.extend([(50, v), (150, v)]);
            }
            assert_eq!(floats, want, "window {window} series {i}");
        }
    }
}
