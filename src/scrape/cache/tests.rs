use super::*;
use argus_storage::testing::MemStorage;
use argus_storage::{Appendable, is_stale_nan};

fn opts() -> AppendOptions {
    AppendOptions {
        target_labels: vec![Label::new("instance", "h:1"), Label::new("job", "j")],
        honor_timestamps: true,
        ..Default::default()
    }
}

/// [`scrape_into`] a [`MemStorage`].
fn scrape(
    c: &mut SeriesCache,
    s: &MemStorage,
    body: &str,
    ts: i64,
    o: &AppendOptions,
) -> Result<AppendStats, String> {
    scrape_into(c, s, body, ts, o)
}

fn series(s: &MemStorage, name: &str) -> Vec<(Labels, Vec<(i64, f64)>)> {
    s.dump()
        .into_iter()
        .filter(|(l, _)| l.metric_name() == Some(name))
        .collect()
}

#[test]
fn steady_state_hits_cache_and_staleness_on_disappear() {
    let s = MemStorage::new();
    let mut c = SeriesCache::new();
    let o = opts();
    let st = scrape(&mut c, &s, "a{x=\"1\"} 1\nb 2\n", 1000, &o).unwrap();
    assert_eq!((st.scraped, st.post_relabel, st.added), (2, 2, 2));
    let st = scrape(&mut c, &s, "a{x=\"1\"} 3\nb 4\n", 2000, &o).unwrap();
    assert_eq!(
        (st.added, st.stale),
        (0, 0),
        "second scrape is all cache hits"
    );
    // b disappears: one stale marker at the scrape time.
    let st = scrape(&mut c, &s, "a{x=\"1\"} 5\n", 3000, &o).unwrap();
    assert_eq!(st.stale, 1);
    let b = series(&s, "b");
    assert_eq!(b.len(), 1);
    let pts = &b[0].1;
    assert_eq!(pts.len(), 3);
    assert_eq!(pts[2].0, 3000);
    assert!(
        is_stale_nan(pts[2].1),
        "last point of b is the stale marker"
    );
    assert_eq!(
        b[0].0,
        Labels::from_pairs(&[("__name__", "b"), ("instance", "h:1"), ("job", "j")])
    );
    // Not marked twice; cache forgot it.
    let st = scrape(&mut c, &s, "a{x=\"1\"} 6\n", 4000, &o).unwrap();
    assert_eq!(st.stale, 0);
    assert_eq!(c.len(), 1);
    // b comes back: a new series entry, appended after its stale marker.
    let st = scrape(&mut c, &s, "a{x=\"1\"} 7\nb 8\n", 5000, &o).unwrap();
    assert_eq!(st.added, 1);
    assert_eq!(series(&s, "b")[0].1.last(), Some(&(5000, 8.0)));
}

#[test]
fn failed_scrape_marks_everything_stale() {
    let s = MemStorage::new();
    let mut c = SeriesCache::new();
    let o = opts();
    scrape(&mut c, &s, "a 1\nb 2\n", 1000, &o).unwrap();
    let e = scrape(&mut c, &s, "a 1\nb 2\nbad_value abc\n", 2000, &o).unwrap_err();
    assert!(e.contains("bad_value abc"), "{e}");
    for n in ["a", "b"] {
        let pts = &series(&s, n)[0].1;
        assert_eq!(
            pts.len(),
            2,
            "{n}: sample + stale marker, failed batch rolled back"
        );
        assert!(is_stale_nan(pts[1].1) && pts[1].0 == 2000);
    }
    // Another failure writes nothing more.
    scrape(&mut c, &s, "garbage{\n", 3000, &o).unwrap_err();
    assert_eq!(series(&s, "a")[0].1.len(), 2);
    // Recovery appends normally.
    scrape(&mut c, &s, "a 1\n", 4000, &o).unwrap();
    assert_eq!(series(&s, "a")[0].1.last(), Some(&(4000, 1.0)));
}

#[test]
fn explicit_timestamps_honored_and_not_stale_marked() {
    let s = MemStorage::new();
    let mut c = SeriesCache::new();
    let mut o = opts();
    scrape(&mut c, &s, "t 1 500\nu 1\n", 1000, &o).unwrap();
    assert_eq!(series(&s, "t")[0].1, vec![(500, 1.0)]);
    let st = scrape(&mut c, &s, "", 2000, &o).unwrap();
    assert_eq!(st.stale, 1, "only u; t had an explicit timestamp");
    o.honor_timestamps = false;
    let mut c = SeriesCache::new();
    let s = MemStorage::new();
    scrape(&mut c, &s, "t 1 500\n", 1000, &o).unwrap();
    assert_eq!(series(&s, "t")[0].1, vec![(1000, 1.0)]);
}

#[test]
fn honor_labels_and_exported_prefix() {
    let s = MemStorage::new();
    let mut c = SeriesCache::new();
    let o = opts();
    scrape(
        &mut c,
        &s,
        "m{job=\"inner\",exported_job=\"x\"} 1\n",
        1000,
        &o,
    )
    .unwrap();
    assert_eq!(
        series(&s, "m")[0].0,
        Labels::from_pairs(&[
            ("__name__", "m"),
            ("exported_exported_job", "inner"),
            ("exported_job", "x"),
            ("instance", "h:1"),
            ("job", "j")
        ])
    );
    let s = MemStorage::new();
    let mut c = SeriesCache::new();
    let o = AppendOptions {
        honor_labels: true,
        ..opts()
    };
    scrape(&mut c, &s, "m{job=\"inner\"} 1\n", 1000, &o).unwrap();
    assert_eq!(
        series(&s, "m")[0].0,
        Labels::from_pairs(&[("__name__", "m"), ("instance", "h:1"), ("job", "inner")])
    );
}

#[test]
fn metric_relabel_drops_and_rewrites() {
    let s = MemStorage::new();
    let mut c = SeriesCache::new();
    let o = AppendOptions {
        metric_relabel: serde_yaml_ng::from_str(
            r#"
- {source_labels: [__name__], regex: "go_.*", action: drop}
- {source_labels: [__name__], regex: "(.*)_total", target_label: __name__, replacement: "${1}_count"}
"#,
        )
        .unwrap(),
        ..opts()
    };
    let body = "go_goroutines 5\nreq_total 3\n";
    let st = scrape(&mut c, &s, body, 1000, &o).unwrap();
    assert_eq!((st.scraped, st.post_relabel, st.added), (2, 1, 1));
    assert!(series(&s, "go_goroutines").is_empty());
    assert_eq!(series(&s, "req_count").len(), 1);
    // The dropped series stays cached as dropped: second scrape adds nothing, no stale marker.
    let st = scrape(&mut c, &s, body, 2000, &o).unwrap();
    assert_eq!((st.post_relabel, st.added, st.stale), (1, 0, 0));
}

#[test]
fn limits_fail_the_scrape() {
    let check = |o: AppendOptions, body: &str, want: &str| {
        let s = MemStorage::new();
        let mut c = SeriesCache::new();
        let e = scrape(&mut c, &s, body, 1000, &o).unwrap_err();
        assert!(e.contains(want), "want {want:?}, got {e:?}");
        assert!(s.dump().is_empty(), "nothing appended");
    };
    check(
        AppendOptions {
            sample_limit: 2,
            ..opts()
        },
        "a 1\nb 1\nc 1\n",
        "sample limit exceeded",
    );
    check(
        AppendOptions {
            label_limit: 3,
            ..opts()
        },
        "a{x=\"1\"} 1\n",
        "label_limit exceeded (metric: a, number of labels: 4, limit: 3)",
    );
    check(
        AppendOptions {
            label_name_length_limit: 4,
            ..opts()
        },
        "a{longname=\"1\"} 1\n",
        "label_name_length_limit exceeded",
    );
    check(
        AppendOptions {
            label_value_length_limit: 3,
            ..opts()
        },
        "a{x=\"toolong\"} 1\n",
        "label_value_length_limit exceeded",
    );
    check(
        opts(),
        "dup{a=\"1\",a=\"2\"} 1\n",
        "label name \"a\" is not unique",
    );
}

#[test]
fn duplicate_series_keeps_first() {
    let s = MemStorage::new();
    let mut c = SeriesCache::new();
    let st = scrape(&mut c, &s, "d{a=\"1\"} 1\nd{a=\"1\"} 2\n", 1000, &opts()).unwrap();
    assert_eq!((st.post_relabel, st.rejected), (1, 1));
    assert_eq!(series(&s, "d")[0].1, vec![(1000, 1.0)]);
}

#[test]
fn metadata_tracked_only_on_change() {
    let s = MemStorage::new();
    let mut c = SeriesCache::new();
    let body = "# HELP a Help a.\n# TYPE a counter\na 1\n";
    scrape(&mut c, &s, body, 1000, &opts()).unwrap();
    let m = c
        .take_metadata_update()
        .expect("first scrape changes metadata");
    assert_eq!(
        m["a"],
        Metadata {
            kind: "counter".into(),
            help: "Help a.".into(),
            unit: String::new()
        }
    );
    scrape(&mut c, &s, body, 2000, &opts()).unwrap();
    assert!(c.take_metadata_update().is_none());
    scrape(&mut c, &s, "# HELP a New.\na 1\n", 3000, &opts()).unwrap();
    assert_eq!(c.take_metadata_update().unwrap()["a"].help, "New.");
}

#[test]
fn fetch_failure_marks_everything_stale() {
    let s = MemStorage::new();
    let mut c = SeriesCache::new();
    let o = opts();
    scrape(&mut c, &s, "a 1\nb 2\n", 1000, &o).unwrap();
    // A failed fetch never reaches append_body.
    let mut app = s.appender();
    assert_eq!(c.mark_all_stale(2000, app.as_mut(), &o).unwrap(), 2);
    app.commit().unwrap();
    for n in ["a", "b"] {
        let pts = &series(&s, n)[0].1;
        assert!(
            pts.len() == 2 && is_stale_nan(pts[1].1) && pts[1].0 == 2000,
            "{n}: {pts:?}"
        );
    }
}

#[test]
fn reordered_and_churning_bodies_keep_series_straight() {
    let s = MemStorage::new();
    let mut c = SeriesCache::new();
    let o = opts();
    scrape(&mut c, &s, "a 1\nb 1\nc 1\nd 1\n", 1000, &o).unwrap();
    // Reversed order: every lookup misses the positional fast path, all still hits.
    let st = scrape(&mut c, &s, "d 2\nc 2\nb 2\na 2\n", 2000, &o).unwrap();
    assert_eq!((st.added, st.stale), (0, 0));
    // b leaves (compaction), e arrives in the middle.
    let st = scrape(&mut c, &s, "d 3\ne 3\nc 3\na 3\n", 3000, &o).unwrap();
    assert_eq!((st.added, st.stale), (1, 1));
    assert_eq!(c.len(), 4);
    let st = scrape(&mut c, &s, "d 4\ne 4\nc 4\na 4\n", 4000, &o).unwrap();
    assert_eq!((st.added, st.stale), (0, 0));
    for (n, want) in [("a", 4.0), ("c", 4.0), ("d", 4.0), ("e", 4.0)] {
        assert_eq!(series(&s, n)[0].1.last(), Some(&(4000, want)), "{n}");
    }
    assert!(is_stale_nan(series(&s, "b")[0].1.last().unwrap().1));
}

#[test]
fn a_steady_target_holds_no_index_or_order_list_and_lookups_still_find_its_series() {
    let s = MemStorage::new();
    let mut c = SeriesCache::new();
    let o = opts();
    let body = "a 1\nb 1\nc 1\nd 1\n";
    scrape(&mut c, &s, body, 1000, &o).unwrap();
    assert_eq!(c.index.len(), 4, "adding series builds the index");
    // The same series in the same order: every one where the order said, no lookup.
    let st = scrape(&mut c, &s, body, 2000, &o).unwrap();
    assert_eq!((st.added, st.stale, st.post_relabel), (0, 0, 4));
    assert!(c.index.is_empty(), "an index no lookup needed is let go");
    assert!(!c.order.has_list() && !c.next_order.has_list());
    assert_eq!(c.next_order.list_capacity(), 0);
    // Without an index: a reordered body, a duplicate and a new series. The lookups rebuild it.
    let st = scrape(&mut c, &s, "c 3\na 3\nc 9\ne 3\nb 3\nd 3\n", 3000, &o).unwrap();
    assert_eq!((st.added, st.rejected, st.stale), (1, 1, 0));
    assert_eq!(c.index.len(), 5);
    assert!(c.order.has_list());
    for (n, want) in [("a", 3.0), ("b", 3.0), ("c", 3.0), ("d", 3.0), ("e", 3.0)] {
        assert_eq!(series(&s, n)[0].1.last(), Some(&(3000, want)), "{n}");
    }
    // The order held the duplicate's position, so this body misses once more; the next one
    // is where the order says throughout, and the index goes again.
    scrape(&mut c, &s, "c 4\na 4\ne 4\nb 4\nd 4\n", 4000, &o).unwrap();
    assert_eq!(c.index.len(), 5);
    scrape(&mut c, &s, "c 5\na 5\ne 5\nb 5\nd 5\n", 5000, &o).unwrap();
    assert!(c.index.is_empty());
    // The last series leaves: stale-marked and compacted away without an index.
    let st = scrape(&mut c, &s, "c 6\na 6\ne 6\nb 6\n", 6000, &o).unwrap();
    assert_eq!((st.added, st.stale), (0, 1));
    assert_eq!(c.len(), 4);
    assert!(c.index.is_empty());
    // It comes back: a new entry, and the index is built again with it.
    let st = scrape(&mut c, &s, "c 7\na 7\ne 7\nb 7\nd 7\n", 7000, &o).unwrap();
    assert_eq!((st.added, st.stale), (1, 0));
    assert_eq!(c.index.len(), 5);
    for (n, want) in [("a", 7.0), ("b", 7.0), ("c", 7.0), ("d", 7.0), ("e", 7.0)] {
        assert_eq!(series(&s, n)[0].1.last(), Some(&(7000, want)), "{n}");
    }
    let d = &series(&s, "d")[0].1;
    assert_eq!(d.iter().filter(|x| is_stale_nan(x.1)).count(), 1, "{d:?}");
    assert!(
        is_stale_nan(d[d.len() - 2].1),
        "d stale-marked at 6000: {d:?}"
    );
}

/// A `Db` whose head cuts a block every second of sample time (also `report`'s tests).
pub(in crate::scrape) fn open_db(dir: &std::path::Path) -> argus_storage::Db {
    argus_storage::Db::open(
        dir,
        argus_storage::Options {
            block_range_ms: 1000,
            background: false,
            sync: argus_storage::SyncMode::Buffer,
            retention_ms: None,
            ..Default::default()
        },
    )
    .unwrap()
}

use argus_storage::testing::dump_floats as dump;

/// Scrapes `body` at `ts` into `s`, committing; returns stats or the error (after the failure
/// path: rollback + stale markers).
fn scrape_into(
    c: &mut SeriesCache,
    s: &dyn Appendable,
    body: &str,
    ts: i64,
    o: &AppendOptions,
) -> Result<AppendStats, String> {
    let mut app = s.appender();
    match c.append_body(body.as_bytes(), Format::Text, ts, app.as_mut(), o) {
        Ok(st) => {
            app.commit().unwrap();
            Ok(st)
        }
        Err(e) => {
            app.rollback();
            let mut app = s.appender();
            c.mark_all_stale(ts, app.as_mut(), o).unwrap();
            app.commit().unwrap();
            Err(e.to_string())
        }
    }
}

/// Against a real head the cache appends known series by ref and keeps no labels; what it
/// stores equals what the label path stores (MemStorage knows no refs), scrape after scrape:
/// changed values and exposed timestamps, relabeling, series leaving, coming back and moving,
/// duplicates, a failed scrape and its staleness markers.
#[test]
fn by_ref_stores_what_the_label_path_stores() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    let mem = MemStorage::new();
    let mut o = opts();
    o.metric_relabel = serde_yaml_ng::from_str(
        r#"
- {source_labels: [__name__], regex: "dropped", action: drop}
- {source_labels: [x], target_label: y}
"#,
    )
    .unwrap();
    let bodies: &[(&str, i64)] = &[
        ("a{x=\"1\"} 1\nb 2\ndropped 3\nts 4 900\n", 1000),
        ("a{x=\"1\"} 5\nb 6\ndropped 7\nts 8 1900\n", 2000),
        ("b 9\na{x=\"1\"} 10\nts 11 2900\nts 12 2950\n", 3000),
        ("a{x=\"1\"} 13\n", 4000),
        ("a{x=\"1\"} 14\nb 15\nc{x=\"2\"} 16\n", 5000),
        ("a{x=\"1\"} 17\nb 18\nc{x=\"2\"} oops\n", 6000),
        ("a{x=\"1\"} 19\nc{x=\"2\"} 20\n", 7000),
        ("a{x=\"1\"} 19\nc{x=\"2\"} 21\nb 22\n", 8000),
    ];
    let mut by_ref = SeriesCache::new();
    let mut by_labels = SeriesCache::new();
    for &(body, ts) in bodies {
        let got = scrape_into(&mut by_ref, &db, body, ts, &o);
        let want = scrape_into(&mut by_labels, &mem, body, ts, &o);
        assert_eq!(got, want, "scrape at {ts}");
        assert!(
            by_ref.kept.is_empty() && by_ref.entries.iter().all(|e| !e.kept()),
            "text series against a head keep no labels (at {ts})"
        );
    }
    let (got, want) = (dump(&db), dump(&mem));
    assert_eq!(got, want, "\nexpected:\n{want:#?}\ngot:\n{got:#?}");
    assert!(got.len() >= 4, "{got:?}");
}

/// When the head no longer knows a cached ref (the series went into a block and left the head),
/// the next sample is still written under the right labels (rebuilt from the body line). A
/// series that left the body meanwhile gets no staleness marker: the cache keeps no text or
/// labels to write one under, and the head dropped it because it has no sample since the
/// head's truncation point, so no query's lookback reaches it any more.
#[test]
fn head_forgetting_a_ref_rebuilds_the_labels() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    let o = opts();
    let mut c = SeriesCache::new();
    scrape_into(&mut c, &db, "a{x=\"1\"} 1\nb 2\n", 1000, &o).unwrap();
    // Another series moves the head on; the cut takes a and b into a block.
    let mut app = db.appender();
    app.append(
        None,
        &Labels::from_pairs(&[("__name__", "other")]),
        10_000,
        0.0,
    )
    .unwrap();
    app.commit().unwrap();
    db.compact().unwrap();
    let refs: Vec<SeriesRef> = c
        .entries
        .iter()
        .filter_map(|e| e.sref.as_ref().map(SeriesHandle::series_ref))
        .collect();
    assert_eq!(refs.len(), 2);
    let mut app = db.appender();
    for r in &refs {
        assert!(
            app.append_ref(*r, 10_000, 0.0).unwrap().is_none(),
            "the cut must have dropped the cached series from the head"
        );
    }
    app.rollback();
    let st = scrape_into(&mut c, &db, "a{x=\"1\"} 3\n", 10_001, &o).unwrap();
    assert_eq!((st.post_relabel, st.stale, st.rejected), (1, 0, 0));
    let got = dump(&db);
    let series = |name: &str| {
        got.iter()
            .find(|(l, _)| l.starts_with(&format!("{{__name__=\"{name}\"")))
            .unwrap_or_else(|| panic!("no {name} in {got:?}"))
            .clone()
    };
    let (la, pa) = series("a");
    assert_eq!(
        la,
        Labels::from_pairs(&[
            ("__name__", "a"),
            ("instance", "h:1"),
            ("job", "j"),
            ("x", "1")
        ])
        .to_string()
    );
    assert_eq!(pa, vec![(1000, 1f64.to_bits()), (10_001, 3f64.to_bits())]);
    let (_, pb) = series("b");
    assert_eq!(
        pb,
        vec![(1000, 2f64.to_bits())],
        "b: no marker, nothing else"
    );
    // a goes on by its new ref; b is gone from the cache.
    let st = scrape_into(&mut c, &db, "a{x=\"1\"} 4\n", 11_000, &o).unwrap();
    assert_eq!((st.post_relabel, st.stale, st.added), (1, 0, 0));
    assert_eq!(c.len(), 1);
}

/// Against a head, a series that leaves the body is stale-marked by its handle (the cache keeps
/// neither its text nor its labels), in both text formats, and comes back on the same series.
#[test]
fn leaving_series_are_stale_marked_by_handle() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    let o = opts();
    for (k, format) in [Format::Text, Format::OpenMetrics].into_iter().enumerate() {
        let eof = if format == Format::OpenMetrics {
            "# EOF\n"
        } else {
            ""
        };
        let name = format!("m{k}_total");
        let body = |with_b: bool, v: u32| {
            let mut s = format!("{name}{{x=\"1\"}} {v}\n");
            if with_b {
                s.push_str(&format!("{name}{{x=\"b c\"}} {v}\n"));
            }
            s + eof
        };
        let mut c = SeriesCache::new();
        let t0 = 100_000 * (k as i64 + 1);
        for (i, with_b) in [true, true, false, false, true].into_iter().enumerate() {
            let ts = t0 + 100 * i as i64;
            let mut app = db.appender();
            let st = c
                .append_body(
                    body(with_b, i as u32).as_bytes(),
                    format,
                    ts,
                    app.as_mut(),
                    &o,
                )
                .unwrap();
            app.commit().unwrap();
            assert_eq!(st.stale, u64::from(i == 2), "{format:?} scrape {i}");
            // b comes back as a new series: the cache forgot it once it was stale-marked.
            let added = [2, 0, 0, 0, 1][i];
            assert_eq!(st.added, added, "{format:?} scrape {i}");
        }
        let got = dump(&db);
        let b = got
            .iter()
            .find(|(l, _)| l.contains(&name) && l.contains("b c"))
            .unwrap_or_else(|| panic!("no b in {got:?}"));
        let pts: Vec<(i64, bool)> =
            b.1.iter()
                .map(|&(t, v)| (t, is_stale_nan(f64::from_bits(v))))
                .collect();
        assert_eq!(
            pts,
            vec![
                (t0, false),
                (t0 + 100, false),
                (t0 + 200, true),
                (t0 + 400, false)
            ],
            "{format:?}"
        );
    }
}

/// Labels kept apart by position (a storage without handles keeps every series' labels) follow
/// their entry when the cache forgets series that left and renumbers the rest: samples and
/// staleness markers after that go under each series' own labels.
#[test]
fn kept_labels_follow_their_entry_through_compaction() {
    let s = MemStorage::new();
    let o = opts();
    let mut c = SeriesCache::new();
    scrape_into(&mut c, &s, "a 1\nb 2\nc 3\n", 1000, &o).unwrap();
    assert_eq!(c.kept.len(), 3);
    // a and b are stale-marked and forgotten: c moves from position 2 to 0.
    scrape_into(&mut c, &s, "c 4\n", 2000, &o).unwrap();
    assert_eq!((c.len(), c.kept.len()), (1, 1));
    assert!(c.kept.contains_key(&0) && c.entries.iter().all(CacheEntry::kept));
    scrape_into(&mut c, &s, "d 5\nc 6\n", 3000, &o).unwrap();
    scrape_into(&mut c, &s, "d 7\n", 4000, &o).unwrap();
    let stale = f64::to_bits(stale_nan());
    let one = |v: f64| v.to_bits();
    let name = |n: &str| format!("{{__name__=\"{n}\", instance=\"h:1\", job=\"j\"}}");
    let want = vec![
        (name("a"), vec![(1000, one(1.0)), (2000, stale)]),
        (name("b"), vec![(1000, one(2.0)), (2000, stale)]),
        (
            name("c"),
            vec![
                (1000, one(3.0)),
                (2000, one(4.0)),
                (3000, one(6.0)),
                (4000, stale),
            ],
        ),
        (name("d"), vec![(3000, one(5.0)), (4000, one(7.0))]),
    ];
    let got = dump(&s);
    assert_eq!(got, want, "\nexpected:\n{want:#?}\ngot:\n{got:#?}");
}

#[test]
fn a_cached_handle_costs_no_more_than_a_cached_ref() {
    assert_eq!(
        std::mem::size_of::<Option<SeriesHandle>>(),
        std::mem::size_of::<Option<SeriesRef>>()
    );
}

#[test]
fn an_entry_is_40_bytes() {
    // 400,000 scraped series: 64-byte entries and a box per key were 45 MiB; 40-byte entries
    // and the texts end to end 36 MiB; 48-byte entries with a 128-bit key and no text 18 MiB;
    // without the labels' box (kept apart, by position) 15 MiB.
    assert!(
        std::mem::size_of::<CacheEntry>() <= 40,
        "CacheEntry is {} bytes",
        std::mem::size_of::<CacheEntry>()
    );
}

#[test]
fn iterations_renumber_before_they_run_out() {
    let s = MemStorage::new();
    let mut c = SeriesCache::new();
    let o = opts();
    c.iter = Iter::MAX - 1;
    scrape(&mut c, &s, "a 1\nb 2\nc 3\n", 1000, &o).unwrap();
    assert_eq!(c.iter, Iter::MAX);
    // Renumbered first: b and c of the last scrape are still known, a duplicate still counts.
    let st = scrape(&mut c, &s, "a 2\nb 2\nb 3\n", 2000, &o).unwrap();
    assert_eq!((c.iter, st.added, st.stale, st.rejected), (2, 0, 1, 1));
    assert!(is_stale_nan(series(&s, "c")[0].1.last().unwrap().1));
    // A failure right after renumbering still marks what the last success saw.
    c.iter = Iter::MAX;
    let e = scrape(&mut c, &s, "a 3\nbad_value abc\n", 3000, &o).unwrap_err();
    assert!(e.contains("bad_value abc"), "{e}");
    for n in ["a", "b"] {
        let pts = &series(&s, n)[0].1;
        assert_eq!(pts.last().map(|p| p.0), Some(3000), "{n}: {pts:?}");
        assert!(is_stale_nan(pts.last().unwrap().1), "{n}: {pts:?}");
    }
    let st = scrape(&mut c, &s, "a 4\n", 4000, &o).unwrap();
    assert_eq!((st.added, st.stale), (0, 0));
    assert_eq!(series(&s, "a")[0].1.last(), Some(&(4000, 4.0)));
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    const NAMES: [&str; 6] = [
        "a",
        "a{x=\"1\"}",
        "a{x=\"10\"}",
        "b_total",
        "b_total{y=\"a b\"}",
        "c",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Bodies that reorder, drop, bring back and repeat series (keys move when the cache
        /// compacts) append every sample to its own series and stale-mark exactly the series
        /// that left.
        #[test]
        fn churning_bodies_land_on_their_series(scrapes in proptest::collection::vec(
            proptest::collection::vec(0..NAMES.len(), 0..10), 1..12)) {
            let s = MemStorage::new();
            let mut c = SeriesCache::new();
            let o = opts();
            let mut prev: Vec<usize> = Vec::new();
            for (k, lines) in scrapes.iter().enumerate() {
                let ts = 1000 * (k as i64 + 1);
                let mut body = String::new();
                for &i in lines {
                    body.push_str(&format!("{} {}\n", NAMES[i], 100 * k + i));
                }
                let st = scrape(&mut c, &s, &body, ts, &o).unwrap();
                let mut now: Vec<usize> = lines.clone();
                now.sort_unstable();
                now.dedup();
                prop_assert_eq!(st.rejected as usize, lines.len() - now.len());
                let left: Vec<usize> =
                    prev.iter().copied().filter(|i| !now.contains(i)).collect();
                prop_assert_eq!(st.stale as usize, left.len());
                let all = s.dump();
                let exposed = |name: &str| {
                    let line = format!("{name} 0\n");
                    let mut p = Parser::new(line.as_bytes(), Format::Text);
                    assert_eq!(p.next(), Some(Entry::Series));
                    let mut l = Vec::new();
                    p.labels(&mut l).unwrap();
                    l
                };
                for (i, name) in NAMES.iter().enumerate() {
                    let want = exposed(name);
                    let got = all.iter().find(|(l, _)| {
                        l.iter()
                            .filter(|x| x.name != "instance" && x.name != "job")
                            .cloned()
                            .collect::<Vec<_>>()
                            == want
                    });
                    let got = got.and_then(|(_, pts)| pts.last().copied());
                    if now.contains(&i) {
                        prop_assert_eq!(got, Some((ts, (100 * k + i) as f64)), "{}", name);
                    } else if left.contains(&i) {
                        prop_assert!(
                            got.is_some_and(|(t, v)| t == ts && is_stale_nan(v)),
                            "{}: {:?}", name, got
                        );
                    }
                }
                prev = now;
            }
        }
    }
}
