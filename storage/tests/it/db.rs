//! The Db over its head: appends, rejections, matchers, reopen, deletion, stats.

use crate::common::{all, dump, lbl, opts};
use argus_storage::{
    Appendable, Db, Error, MatchType, Matcher, Options, Queryable, SeriesHandle, SeriesRef,
    SyncMode,
};

fn m(kind: MatchType, name: &str, value: &str) -> Matcher {
    Matcher::new(kind, name, value).unwrap()
}

#[test]
fn append_commit_query_and_matchers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut app = db.appender();
    for i in 0..4 {
        let job = if i % 2 == 0 { "a" } else { "b" };
        let inst = i.to_string();
        let mut pairs = vec![
            ("__name__", "up"),
            ("job", job),
            ("instance", inst.as_str()),
        ];
        if i == 3 {
            pairs.push(("env", "prod"));
        }
        for t in 0..10 {
            app.append(None, &lbl(&pairs), t * 1000, (i * 100 + t) as f64)
                .unwrap();
        }
    }
    // Not visible before commit.
    assert!(dump(&db, &all(), 0, 100_000).is_empty());
    app.commit().unwrap();
    let got = dump(&db, &all(), 0, 100_000);
    assert_eq!(got.len(), 4);
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "not sorted by labels"
    );
    assert_eq!(got[0].1.len(), 10);

    let count = |ms: Vec<Matcher>| dump(&db, &ms, 0, 100_000).len();
    assert_eq!(count(vec![Matcher::equal("job", "a")]), 2);
    assert_eq!(
        count(vec![m(MatchType::NotEqual, "job", "a"), all().remove(0)]),
        2
    );
    assert_eq!(count(vec![m(MatchType::Regex, "instance", "1|2")]), 2);
    assert_eq!(count(vec![m(MatchType::Regex, "instance", "[0-2]")]), 3);
    assert_eq!(
        count(vec![
            m(MatchType::NotRegex, "instance", "[0-2]"),
            all().remove(0)
        ]),
        1
    );
    // Empty-matching matchers select series lacking the label.
    assert_eq!(count(vec![Matcher::equal("env", ""), all().remove(0)]), 3);
    assert_eq!(
        count(vec![m(MatchType::Regex, "env", "prod|"), all().remove(0)]),
        4
    );
    assert_eq!(
        count(vec![m(MatchType::NotEqual, "env", ""), all().remove(0)]),
        1
    );
    assert_eq!(count(vec![Matcher::equal("job", "zzz")]), 0);

    // Time range restriction, closed interval.
    let got = dump(&db, &[Matcher::equal("instance", "0")], 2000, 4000);
    assert_eq!(
        got[0].1.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![2000, 3000, 4000]
    );
    assert!(dump(&db, &all(), 20_000, 30_000).is_empty());

    let q = db.querier(0, 100_000).unwrap();
    assert_eq!(
        q.label_names(&[]).unwrap(),
        vec!["__name__", "env", "instance", "job"]
    );
    assert_eq!(q.label_values("job", &[]).unwrap(), vec!["a", "b"]);
    assert_eq!(
        q.label_values("instance", &[Matcher::equal("job", "b")])
            .unwrap(),
        vec!["1", "3"]
    );
    assert_eq!(
        q.label_names(&[Matcher::equal("job", "a")]).unwrap(),
        vec!["__name__", "instance", "job"]
    );
}

#[test]
fn seek_on_series_samples() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut app = db.appender();
    let l = lbl(&[("__name__", "x")]);
    for t in 0..500 {
        app.append(None, &l, t * 10, t as f64).unwrap();
    }
    app.commit().unwrap();
    let q = db.querier(100, 4000).unwrap();
    let mut set = q.select(&all());
    assert!(set.next());
    let mut it = set.samples();
    assert!(it.seek(0));
    assert_eq!(it.at(), (100, 10.0));
    assert!(it.seek(2345));
    assert_eq!(it.at(), (2350, 235.0));
    assert!(it.seek(2350));
    assert_eq!(it.at().0, 2350);
    assert!(it.next());
    assert_eq!(it.at().0, 2360);
    assert!(it.seek(4000));
    assert!(!it.next());
    assert!(!it.seek(5000));
}

/// `i64::MIN` marks "no newest sample" in a head series (it keeps `SeriesData` in a smaller
/// allocation class), so no sample is stored there: a float at it is out of bounds, in a new
/// series, in one with samples, and with the out-of-order window open.
#[test]
fn a_float_at_i64_min_is_out_of_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let l = lbl(&[("__name__", "x")]);
    let other = lbl(&[("__name__", "y")]);
    let mut app = db.appender();
    assert!(matches!(
        app.append(None, &l, i64::MIN, 1.0),
        Err(Error::OutOfBounds)
    ));
    // The timestamp after it is an ordinary one.
    app.append(None, &other, i64::MIN + 1, 2.0).unwrap();
    let r = app.append(None, &l, 10_000, 1.0).unwrap();
    assert!(matches!(
        app.append(Some(r), &l, i64::MIN, 1.0),
        Err(Error::OutOfBounds)
    ));
    app.commit().unwrap();
    let mm = db.metrics();
    let get = |k: &str| mm.samples_rejected.iter().find(|(n, _)| n == k).unwrap().1;
    assert_eq!(get("out_of_bounds"), 2);
    assert_eq!(mm.samples_appended, 2);
}

#[test]
fn rejections_are_typed_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let l = lbl(&[("__name__", "x")]);
    let mut app = db.appender();
    let r = app.append(None, &l, 10_000, 1.0).unwrap();
    // Within one batch: order is checked against the pending samples.
    assert!(matches!(
        app.append(Some(r), &l, 9_000, 1.0),
        Err(Error::OutOfOrder)
    ));
    assert!(matches!(
        app.append(Some(r), &l, 10_000, 2.0),
        Err(Error::DuplicateSample)
    ));
    // Same value at same timestamp is accepted silently.
    assert_eq!(app.append(Some(r), &l, 10_000, 1.0).unwrap(), r);
    app.append(Some(r), &l, 11_000, 3.0).unwrap();
    app.commit().unwrap();
    let mut app = db.appender();
    assert!(matches!(
        app.append(Some(r), &l, 10_500, 1.0),
        Err(Error::OutOfOrder)
    ));
    assert!(matches!(
        app.append(None, &l, 11_000, 9.0),
        Err(Error::DuplicateSample)
    ));
    // Far behind the head's newest sample (more than half a block range): out of bounds.
    let other = lbl(&[("__name__", "y")]);
    assert!(matches!(
        app.append(None, &other, 11_000 - 2 * 3_600_000, 1.0),
        Err(Error::OutOfBounds)
    ));
    // Invalid labels.
    assert!(matches!(
        app.append(None, &argus_storage::Labels::empty(), 1, 1.0),
        Err(Error::InvalidLabels(_))
    ));
    // A stale or foreign ref falls back to the labels.
    let r2 = app
        .append(Some(SeriesRef(987_654)), &other, 12_000, 1.0)
        .unwrap();
    assert_ne!(r2, r);
    app.commit().unwrap();
    let mm = db.metrics();
    let get = |k: &str| mm.samples_rejected.iter().find(|(n, _)| n == k).unwrap().1;
    assert_eq!(get("out_of_order"), 2);
    assert_eq!(get("duplicate"), 2);
    assert_eq!(get("out_of_bounds"), 1);
    assert_eq!(mm.samples_appended, 3);
    assert_eq!(mm.head_series, 2);
    assert_eq!(
        dump(&db, &all(), 0, 20_000)[0].1,
        vec![(10_000, 1.0), (11_000, 3.0)]
    );
}

#[test]
fn out_of_order_window() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        out_of_order_window_ms: 60_000,
        ..opts()
    };
    let db = Db::open(dir.path(), o.clone()).unwrap();
    let l = lbl(&[("__name__", "x")]);
    let mut app = db.appender();
    for t in [100_000, 110_000, 120_000] {
        app.append(None, &l, t, t as f64).unwrap();
    }
    app.commit().unwrap();
    let mut app = db.appender();
    app.append(None, &l, 105_000, 105.0).unwrap();
    app.append(None, &l, 61_000, 61.0).unwrap();
    assert!(matches!(
        app.append(None, &l, 59_000, 1.0),
        Err(Error::TooOld)
    ));
    assert!(matches!(
        app.append(None, &l, 110_000, 5.0),
        Err(Error::DuplicateSample)
    ));
    app.commit().unwrap();
    let mut app = db.appender();
    assert!(matches!(
        app.append(None, &l, 105_000, 7.0),
        Err(Error::DuplicateSample)
    ));
    app.rollback();
    let want = vec![
        (61_000, 61.0),
        (100_000, 100_000.0),
        (105_000, 105.0),
        (110_000, 110_000.0),
        (120_000, 120_000.0),
    ];
    assert_eq!(dump(&db, &all(), 0, 200_000)[0].1, want);
    assert_eq!(
        dump(&db, &all(), 100_000, 106_000)[0].1,
        want[1..3].to_vec()
    );
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), o).unwrap();
    assert_eq!(dump(&db, &all(), 0, 200_000)[0].1, want, "after WAL replay");
}

#[test]
fn reopen_replays_wal_and_rollback_discards() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut app = db.appender();
    for s in 0..50 {
        let name = format!("s{s}");
        for t in 0..300 {
            app.append(
                None,
                &lbl(&[("__name__", "m"), ("s", &name)]),
                t * 15_000,
                (s * t) as f64,
            )
            .unwrap();
        }
    }
    app.commit().unwrap();
    app.append(None, &lbl(&[("__name__", "gone")]), 4_400_000, 1.0)
        .unwrap();
    app.rollback();
    let before = dump(&db, &all(), i64::MIN, i64::MAX);
    assert_eq!(before.len(), 50);
    // Appends after close fail.
    db.close().unwrap();
    let mut app = db.appender();
    assert!(matches!(
        app.append(None, &lbl(&[("__name__", "m")]), 1, 1.0),
        Err(Error::Closed)
    ));
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(dump(&db, &all(), i64::MIN, i64::MAX), before);
    // A second open of the same directory is refused while the first holds the lock.
    assert!(Db::open(dir.path(), opts()).is_err());
}

#[test]
fn delete_series_in_head_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut app = db.appender();
    for s in ["a", "b"] {
        for t in 0..10 {
            app.append(None, &lbl(&[("__name__", "m"), ("s", s)]), t, t as f64)
                .unwrap();
        }
    }
    app.commit().unwrap();
    db.delete_series(&[Matcher::equal("s", "a")], 3, 5).unwrap();
    let check = |db: &Db| {
        let got = dump(db, &all(), 0, 100);
        assert_eq!(
            got[0].1.iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![0, 1, 2, 6, 7, 8, 9]
        );
        assert_eq!(got[1].1.len(), 10);
    };
    check(&db);
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db);
}

#[test]
fn stats_report_top_entries() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut app = db.appender();
    for i in 0..5 {
        let v = i.to_string();
        app.append(None, &lbl(&[("__name__", "a"), ("i", &v)]), 1, 1.0)
            .unwrap();
    }
    app.append(None, &lbl(&[("__name__", "b")]), 1, 1.0)
        .unwrap();
    app.commit().unwrap();
    let st = db.stats(1);
    assert_eq!(st.num_series, 6);
    assert_eq!(st.series_count_by_metric_name, vec![("a".to_string(), 5)]);
    assert_eq!(
        st.label_value_count_by_label_name,
        vec![("i".to_string(), 5)]
    );
    assert_eq!(
        st.series_count_by_label_value_pair,
        vec![("__name__=a".to_string(), 5)]
    );
    assert_eq!((st.min_time, st.max_time), (1, 1));
    assert!(db.metrics().head_bytes > 0);
}

#[test]
fn concurrent_appenders() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    std::thread::scope(|s| {
        for w in 0..4 {
            let db = db.clone();
            s.spawn(move || {
                let mut app = db.appender();
                let mut refs = vec![None; 100];
                for t in 0..50 {
                    for (i, r) in refs.iter_mut().enumerate() {
                        let iv = i.to_string();
                        let wv = w.to_string();
                        let l = lbl(&[("__name__", "c"), ("i", &iv), ("w", &wv)]);
                        *r = Some(app.append(*r, &l, t * 1000, 1.0).unwrap());
                    }
                    app.commit().unwrap();
                }
            });
        }
    });
    let got = dump(&db, &all(), 0, i64::MAX);
    assert_eq!(got.len(), 400);
    assert!(got.iter().all(|(_, s)| s.len() == 50));
}

#[test]
fn ooo_window_admits_series_lagging_behind_the_head() {
    // Remote-write shards progress at different speeds: a series whose first samples lie more
    // than half a block range behind the head's newest sample is out of bounds without an
    // out-of-order window, and accepted within one (as Prometheus's OOO head does).
    let hour = 3_600_000;
    let check = |window: i64, want_ok: bool| {
        let dir = tempfile::tempdir().unwrap();
        let o = Options {
            out_of_order_window_ms: window,
            ..opts()
        };
        let db = Db::open(dir.path(), o).unwrap();
        let mut app = db.appender();
        app.append(None, &lbl(&[("__name__", "ahead")]), 3 * hour, 1.0)
            .unwrap();
        app.commit().unwrap();
        let lag = lbl(&[("__name__", "lagging")]);
        let mut app = db.appender();
        let got = app.append(None, &lag, hour, 2.0);
        if want_ok {
            got.unwrap();
            app.append(None, &lag, hour + 15_000, 3.0).unwrap();
            app.commit().unwrap();
            let series = dump(&db, &[Matcher::equal("__name__", "lagging")], 0, 4 * hour);
            assert_eq!(series[0].1, vec![(hour, 2.0), (hour + 15_000, 3.0)]);
        } else {
            assert!(
                matches!(got, Err(Error::OutOfBounds)),
                "window {window}: {got:?}"
            );
        }
    };
    check(0, false);
    check(24 * hour, true);
    check(hour, false);
}

#[test]
fn wal_fsyncs_are_counted_per_sync_mode() {
    for (mode, per_commit) in [(SyncMode::Buffer, false), (SyncMode::Data, true)] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(
            dir.path(),
            Options {
                background: false,
                sync: mode,
                ..Options::default()
            },
        )
        .unwrap();
        let before = db.metrics().wal_fsyncs;
        let l = lbl(&[("__name__", "m")]);
        for t in 0..5 {
            let mut app = db.appender();
            app.append(None, &l, t, 1.0).unwrap();
            app.commit().unwrap();
        }
        let m = db.metrics();
        if per_commit {
            assert!(m.wal_fsyncs >= before + 5, "{mode:?}: {m:?}");
            assert!(m.wal_fsync_seconds > 0.0, "{mode:?}: {m:?}");
        } else {
            assert_eq!(m.wal_fsyncs, before, "{mode:?}: no fsync per commit");
        }
    }
}

#[test]
fn unsynced_appender_skips_the_fsync_but_not_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        sync: SyncMode::Data,
        ..opts()
    };
    let db = Db::open(dir.path(), o.clone()).unwrap();
    let up = lbl(&[("__name__", "rule_out")]);
    let synced_before = db.metrics().wal_fsyncs;
    let mut app = db.appender_unsynced();
    for t in 0..20 {
        app.append(None, &up, t * 1000, t as f64).unwrap();
        app.commit().unwrap();
    }
    assert_eq!(
        db.metrics().wal_fsyncs,
        synced_before,
        "unsynced commits fsynced"
    );
    assert_eq!(dump(&db, &all(), 0, 100_000)[0].1.len(), 20);
    // The ordinary appender still syncs every commit under SyncMode::Data.
    let mut app = db.appender();
    app.append(None, &up, 30_000, 1.0).unwrap();
    app.commit().unwrap();
    assert!(db.metrics().wal_fsyncs > synced_before);
    // Written to the WAL: a reopen (replay) has every sample.
    drop(app);
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), o).unwrap();
    assert_eq!(dump(&db, &all(), 0, 100_000)[0].1.len(), 21);
}

/// `append_ref` appends by a ref `append` returned, with the same checks; an unknown ref is
/// `None` (the caller falls back to labels), and refs survive commits.
#[test]
fn append_ref_by_known_refs_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut app = db.appender();
    let a = app
        .append(None, &lbl(&[("__name__", "a")]), 1000, 1.0)
        .unwrap();
    assert_eq!(app.append_ref(a, 2000, 2.0).unwrap(), Some(a));
    assert!(matches!(
        app.append_ref(a, 1500, 0.0),
        Err(Error::OutOfOrder)
    ));
    assert_eq!(
        app.append_ref(SeriesRef(a.0 + 1000), 2000, 2.0).unwrap(),
        None
    );
    app.commit().unwrap();
    let mut app = db.appender();
    assert_eq!(app.append_ref(a, 3000, 3.0).unwrap(), Some(a));
    assert!(matches!(
        app.append_ref(a, 3000, 4.0),
        Err(Error::DuplicateSample)
    ));
    app.commit().unwrap();
    let got = dump(&db, &all(), 0, 10_000);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, vec![(1000, 1.0), (2000, 2.0), (3000, 3.0)]);
    // After a restart the WAL replay brings the samples back (the ref's record was logged).
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(dump(&db, &all(), 0, 10_000), got);
}

/// A handle from `Appender::handle` appends to its series without a lookup. When the head drops
/// the series (a compaction cut all its samples into a block), the handle goes stale: `Ok(None)`,
/// and appending by labels makes a new series. A handle whose series a pending batch holds keeps
/// the series from being dropped, so that batch's samples land in the head.
#[test]
fn append_handle_goes_stale_when_the_head_drops_the_series() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            block_range_ms: 10_000,
            ..opts()
        },
    )
    .unwrap();
    let (a, b, c) = (
        lbl(&[("__name__", "a")]),
        lbl(&[("__name__", "b")]),
        lbl(&[("__name__", "c")]),
    );
    let mut app = db.appender();
    let ra = app.append(None, &a, 1000, 1.0).unwrap();
    let rb = app.append(None, &b, 1000, 1.0).unwrap();
    let rc = app.append(None, &c, 1000, 1.0).unwrap();
    let (ha, hb, hc) = (app.handle(ra), app.handle(rb), app.handle(rc));
    assert_eq!(
        (ha.series_ref(), hb.series_ref(), hc.series_ref()),
        (ra, rb, rc)
    );
    assert_eq!(app.append_handle(&ha, 2000, 2.0).unwrap(), Some(ra));
    assert!(matches!(
        app.append_handle(&ha, 1500, 0.0),
        Err(Error::OutOfOrder)
    ));
    app.commit().unwrap();
    let mut app = db.appender();
    assert_eq!(app.append_handle(&hb, 25_000, 3.0).unwrap(), Some(rb));
    app.commit().unwrap();
    // c's next sample waits in a batch while the compaction cuts [0, 10 s) into a block,
    // leaving a and c without samples in the head.
    let mut held = db.appender();
    assert_eq!(held.append_handle(&hc, 26_000, 4.0).unwrap(), Some(rc));
    db.compact().unwrap();
    assert_eq!(db.metrics().blocks, 1);
    assert_eq!(
        db.metrics().head_series,
        2,
        "a dropped; b has data, c is held"
    );
    held.commit().unwrap();
    let mut app = db.appender();
    assert_eq!(app.append_handle(&ha, 30_000, 5.0).unwrap(), None);
    let ra2 = app.append(None, &a, 30_000, 5.0).unwrap();
    assert_ne!(ra2, ra, "a new series");
    let ha2 = app.handle(ra2);
    assert_eq!(app.append_handle(&ha2, 31_000, 6.0).unwrap(), Some(ra2));
    assert_eq!(app.append_handle(&hc, 31_000, 7.0).unwrap(), Some(rc));
    app.commit().unwrap();
    let want = vec![
        (
            a.clone(),
            vec![(1000, 1.0), (2000, 2.0), (30_000, 5.0), (31_000, 6.0)],
        ),
        (b.clone(), vec![(1000, 1.0), (25_000, 3.0)]),
        (c.clone(), vec![(1000, 1.0), (26_000, 4.0), (31_000, 7.0)]),
    ];
    assert_eq!(dump(&db, &all(), 0, 100_000), want);
    // A handle of a ref the head does not know appends nothing.
    let mut app = db.appender();
    let unknown = app.handle(SeriesRef(ra2.0 + 1000));
    assert_eq!(app.append_handle(&unknown, 40_000, 1.0).unwrap(), None);
    app.commit().unwrap();
    drop(db);
    let db = Db::open(
        dir.path(),
        Options {
            block_range_ms: 10_000,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(dump(&db, &all(), 0, 100_000), want, "after replay");
}

/// `SeriesHandle::hold` takes hold of a handle's series for one batch: while held, the head
/// does not drop it, and `append_held` lands in it. Once the head dropped a series, its old
/// handle holds nothing (`None`) and the series made again under the same labels, with another
/// ref, receives its samples; no sample reaches another series through a stale handle.
#[test]
fn held_series_are_kept_and_stale_handles_hold_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let o = || Options {
        block_range_ms: 10_000,
        ..opts()
    };
    let db = Db::open(dir.path(), o()).unwrap();
    let (a, b) = (lbl(&[("__name__", "a")]), lbl(&[("__name__", "b")]));
    let mut app = db.appender();
    let ra = app.append(None, &a, 1000, 1.0).unwrap();
    let rb = app.append(None, &b, 1000, 1.0).unwrap();
    let (ha, hb) = (app.handle(ra), app.handle(rb));
    app.commit().unwrap();
    // b gets data past the cut; a is only held while the compaction cuts [0, 10 s).
    let mut app = db.appender();
    assert_eq!(
        app.append_held(hb.hold().unwrap(), 25_000, 2.0).unwrap(),
        Some(rb)
    );
    app.commit().unwrap();
    let pa = ha.hold().unwrap();
    assert_eq!(pa.series_ref(), ra);
    db.compact().unwrap();
    assert_eq!(db.metrics().head_series, 2, "a is held");
    let mut app = db.appender();
    assert_eq!(app.append_held(pa, 26_000, 3.0).unwrap(), Some(ra));
    app.commit().unwrap();
    // Nothing holds a now: once its samples are cut, the head drops it.
    let mut app = db.appender();
    assert_eq!(
        app.append_held(hb.hold().unwrap(), 41_000, 4.0).unwrap(),
        Some(rb)
    );
    app.commit().unwrap();
    db.compact().unwrap();
    assert_eq!(db.metrics().head_series, 1, "a dropped, b has data");
    assert!(ha.hold().is_none(), "a stale handle holds nothing");
    let mut app = db.appender();
    let ra2 = app.append(None, &a, 42_000, 5.0).unwrap();
    assert_ne!(ra2, ra);
    let ha2 = app.handle(ra2);
    assert!(ha.hold().is_none(), "still stale after a is made again");
    assert_eq!(
        app.append_held(ha2.hold().unwrap(), 43_000, 6.0).unwrap(),
        Some(ra2)
    );
    // A handle without a series (`from_ref`) is held by its ref and appends by it.
    let by_ref = SeriesHandle::from_ref(rb).hold().unwrap();
    assert_eq!(app.append_held(by_ref, 43_000, 7.0).unwrap(), Some(rb));
    app.commit().unwrap();
    let want = vec![
        (
            a.clone(),
            vec![(1000, 1.0), (26_000, 3.0), (42_000, 5.0), (43_000, 6.0)],
        ),
        (
            b.clone(),
            vec![(1000, 1.0), (25_000, 2.0), (41_000, 4.0), (43_000, 7.0)],
        ),
    ];
    assert_eq!(dump(&db, &all(), 0, 100_000), want);
    drop(db);
    let db = Db::open(dir.path(), o()).unwrap();
    assert_eq!(dump(&db, &all(), 0, 100_000), want, "after replay");
}
