//! What Pushgateway does to a push before storing it: grouping-key labels forced onto every
//! metric, `instance=""` added, labels sorted; then the consistency rules its gatherer enforces
//! over all groups (types, suffix collisions, label names, duplicate series).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::store::GroupingKey;
use crate::expose::proto::{LabelPair, Metric, MetricFamily, MetricType};
use crate::scrape::protobuf::{is_native, to_native};
use argus_query::names::is_legacy_label_name as valid_label_name;
use argus_storage::histogram::MAX_BUCKETS;
use std::collections::HashSet;

/// Overwrites grouping-key labels, adds missing ones and `instance=""`, sorts labels by name.
pub fn sanitize(mf: &mut MetricFamily, key: &GroupingKey) {
    for m in &mut mf.metric {
        let mut pending: Vec<(&String, &String)> = key.iter().collect();
        let mut has_instance = false;
        for lp in &mut m.label {
            let name = lp.name.as_deref().unwrap_or("");
            if let Some(i) = pending.iter().position(|(k, _)| k.as_str() == name) {
                let (_, v) = pending.swap_remove(i);
                lp.value = Some(v.clone());
            }
            has_instance |= name == "instance";
        }
        for (k, v) in pending {
            has_instance |= k == "instance";
            m.label.push(LabelPair::new(k, v));
        }
        if !has_instance {
            m.label.push(LabelPair::new("instance", ""));
        }
        m.label.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

/// True if any metric carries an explicit timestamp.
pub fn has_timestamps<'a>(families: impl IntoIterator<Item = &'a MetricFamily>) -> bool {
    families
        .into_iter()
        .any(|f| f.metric.iter().any(|m| m.timestamp_ms.is_some()))
}

fn has_value_for(kind: MetricType, m: &Metric) -> bool {
    match kind {
        MetricType::Counter => m.counter.is_some(),
        MetricType::Gauge => m.gauge.is_some(),
        MetricType::Summary => m.summary.is_some(),
        MetricType::Untyped => m.untyped.is_some(),
        MetricType::Histogram | MetricType::GaugeHistogram => m.histogram.is_some(),
    }
}

fn same_kind(a: MetricType, b: MetricType) -> bool {
    let norm = |t| match t {
        MetricType::GaugeHistogram => MetricType::Histogram,
        t => t,
    };
    norm(a) == norm(b)
}

fn labels_text(m: &Metric) -> String {
    let parts: Vec<String> = m
        .label
        .iter()
        .map(|l| {
            format!(
                "{}={:?}",
                l.name.as_deref().unwrap_or(""),
                l.value.as_deref().unwrap_or("")
            )
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// Checks one metric on its own (label names, reserved labels).
fn check_metric(name: &str, kind: MetricType, m: &Metric) -> Result<(), String> {
    if !has_value_for(kind, m) {
        return Err(format!(
            "collected metric {name:?} {} is not a {}",
            labels_text(m),
            kind.go_name()
        ));
    }
    let mut prev: Option<&str> = None;
    for lp in &m.label {
        let ln = lp.name.as_deref().unwrap_or("");
        if prev == Some(ln) {
            return Err(format!(
                "collected metric {name:?} {} has two or more labels with the same name: {ln}",
                labels_text(m)
            ));
        }
        if !valid_label_name(ln) || ln.starts_with("__") {
            return Err(format!(
                "collected metric {name:?} {} has a label with an invalid name: {ln}",
                labels_text(m)
            ));
        }
        if m.summary.is_some() && ln == "quantile" || m.histogram.is_some() && ln == "le" {
            return Err(format!(
                "collected metric {name:?} {} must not have an explicit {ln:?} label",
                labels_text(m)
            ));
        }
        prev = Some(ln);
    }
    check_native(name, kind, m)
}

/// A native histogram must be one the storage can hold: a known schema, spans matching the
/// buckets, at most [`MAX_BUCKETS`] buckets. (Pushgateway stores any; Argus appends pushed
/// histograms to its own storage, so it refuses what it could not append.)
fn check_native(name: &str, kind: MetricType, m: &Metric) -> Result<(), String> {
    let Some(h) = m.histogram.as_ref().filter(|h| is_native(h)) else {
        return Ok(());
    };
    let invalid = |why: String| {
        format!(
            "collected metric {name:?} {} has an invalid native histogram: {why}",
            labels_text(m)
        )
    };
    let buckets = h.positive_span.len()
        + h.negative_span.len()
        + h.positive_delta.len().max(h.positive_count.len())
        + h.negative_delta.len().max(h.negative_count.len());
    if buckets > MAX_BUCKETS {
        return Err(invalid(format!(
            "more than {MAX_BUCKETS} buckets and spans"
        )));
    }
    to_native(h, kind == MetricType::GaugeHistogram)
        .map(drop)
        .map_err(invalid)
}

/// Checks the families of one group (already sanitized) against each other and against the
/// families of the other groups, as Pushgateway's gatherer would over the union. `others` yields
/// the families of every other group.
pub fn check_consistency<'a>(
    new: &[&MetricFamily],
    others: impl Fn(&str) -> Vec<&'a MetricFamily>,
) -> Result<(), String> {
    let new_names: HashSet<&str> = new.iter().map(|f| f.name()).collect();
    let exists = |n: &str| new_names.contains(n) || !others(n).is_empty();
    for f in new {
        let name = f.name();
        let kind = f.kind();
        let peers = others(name);
        // The merged family takes one type; metrics of another type fail the gather.
        for p in &peers {
            if !p.metric.is_empty() && !f.metric.is_empty() && !same_kind(p.kind(), kind) {
                let m = f.metric.first().map(labels_text).unwrap_or_default();
                return Err(format!(
                    "collected metric {name:?} {m} is not a {}",
                    p.kind().go_name()
                ));
            }
        }
        for m in &f.metric {
            check_metric(name, kind, m)?;
        }
        // Suffix collisions with summaries and histograms.
        let base = [("_count", 6), ("_sum", 4), ("_bucket", 7)]
            .iter()
            .find(|(s, n)| name.len() > *n && name.ends_with(s))
            .and_then(|(s, n)| name.get(..name.len() - n).map(|b| (*s, b)));
        if let Some((suffix, base)) = base {
            let mut base_kinds: Vec<MetricType> = others(base).iter().map(|f| f.kind()).collect();
            base_kinds.extend(new.iter().filter(|f| f.name() == base).map(|f| f.kind()));
            for bk in base_kinds {
                if bk == MetricType::Histogram || bk == MetricType::Summary && suffix != "_bucket" {
                    let what = if bk == MetricType::Histogram {
                        "histogram"
                    } else {
                        "summary"
                    };
                    return Err(format!(
                        "collected metric named {name:?} collides with previously collected {what} named {base:?}"
                    ));
                }
            }
        }
        let mut sufs = vec![];
        if matches!(kind, MetricType::Summary | MetricType::Histogram) {
            sufs.extend(["_count", "_sum"]);
        }
        if kind == MetricType::Histogram {
            sufs.push("_bucket");
        }
        for s in sufs {
            let other = format!("{name}{s}");
            if exists(&other) {
                return Err(format!(
                    "collected histogram or summary named {name:?} collides with previously collected metric named {other:?}"
                ));
            }
        }
        // Duplicate series: same name and identical label set, within this push or across groups.
        let mut seen: HashSet<Vec<(&str, &str)>> = HashSet::new();
        let key = |m: &'a Metric| -> Vec<(&'a str, &'a str)> {
            m.label
                .iter()
                .map(|l| {
                    (
                        l.name.as_deref().unwrap_or(""),
                        l.value.as_deref().unwrap_or(""),
                    )
                })
                .collect()
        };
        for p in &peers {
            for m in &p.metric {
                seen.insert(key(m));
            }
        }
        for m in &f.metric {
            let k: Vec<(&str, &str)> = m
                .label
                .iter()
                .map(|l| {
                    (
                        l.name.as_deref().unwrap_or(""),
                        l.value.as_deref().unwrap_or(""),
                    )
                })
                .collect();
            if !seen.insert(k) {
                return Err(format!(
                    "collected metric {name:?} {} was collected before with the same name and label values",
                    labels_text(m)
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::push::text::parse_text;

    fn key(pairs: &[(&str, &str)]) -> GroupingKey {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn sanitize_overwrites_and_adds_instance() {
        let mut fams =
            parse_text(b"a{job=\"other\",x=\"1\"} 1\nb{instance=\"i\"} 2\n").expect("parse");
        let k = key(&[("job", "j"), ("zone", "z")]);
        for f in &mut fams {
            sanitize(f, &k);
        }
        let labels = |i: usize| -> Vec<(String, String)> {
            fams[i].metric[0]
                .label
                .iter()
                .map(|l| {
                    (
                        l.name.clone().unwrap_or_default(),
                        l.value.clone().unwrap_or_default(),
                    )
                })
                .collect()
        };
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            labels(0),
            vec![
                s("instance", ""),
                s("job", "j"),
                s("x", "1"),
                s("zone", "z")
            ]
        );
        assert_eq!(
            labels(1),
            vec![s("instance", "i"), s("job", "j"), s("zone", "z")]
        );
    }

    #[test]
    fn consistency_rules() {
        let fams = |src: &str, k: &GroupingKey| {
            let mut f = parse_text(src.as_bytes()).expect("parse");
            f.iter_mut().for_each(|f| sanitize(f, k));
            f
        };
        let ka = key(&[("job", "a")]);
        let kb = key(&[("job", "b")]);
        let existing = fams(
            "# TYPE m counter\nm 1\n# TYPE s summary\ns_sum 1\ns_count 1\n",
            &ka,
        );
        let others = |n: &str| {
            existing
                .iter()
                .filter(|f| f.name() == n)
                .collect::<Vec<_>>()
        };
        let check = |src: &str, k: &GroupingKey, ok: bool| {
            let new = fams(src, k);
            let refs: Vec<&MetricFamily> = new.iter().collect();
            let got = check_consistency(&refs, others);
            assert_eq!(got.is_ok(), ok, "{src}: {got:?}");
        };
        check("# TYPE m counter\nm 2\n", &kb, true);
        check("# TYPE m gauge\nm 2\n", &kb, false);
        check("m 2\n", &kb, false);
        check("# TYPE m counter\nm 2\n", &ka, false); // duplicate series vs existing group a
        check("x 1\nx 2\n", &kb, false); // duplicate within the push
        check("s_count 3\n", &kb, false); // collides with summary s
        check("s_bucket 3\n", &kb, true);
        check("# TYPE m_sum counter\nm_sum 1\n", &kb, true); // m is a counter: no collision
        check("# TYPE m summary\nm_sum 1\n", &kb, false);
    }
}
