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

/// Scrapes `body` at `ts` into `s`, committing; returns stats or the error (after the failure
/// path: rollback + stale markers).
fn scrape(
    c: &mut SeriesCache,
    s: &MemStorage,
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
