//! `info(v, [selector])`: enriches series with the data labels of info series (default
//! `target_info`) that share their identifying labels (`instance`, `job`).

use crate::error::{Error, Result};
use crate::eval::{Ctx, Evaluator, offset_ms, unparen};
use crate::value::{Series, Val};
use argus_storage::{Labels, METRIC_NAME, MatchType, Matcher, is_stale_nan};
use promql_parser::label::{MatchOp, Matchers};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{Expr, VectorSelector};
use std::collections::HashMap;

const IDENTIFYING: [&str; 2] = ["instance", "job"];

fn to_matcher(m: &promql_parser::label::Matcher) -> Result<Matcher> {
    let kind = match m.op {
        MatchOp::Equal => MatchType::Equal,
        MatchOp::NotEqual => MatchType::NotEqual,
        MatchOp::Re(_) => MatchType::Regex,
        MatchOp::NotRe(_) => MatchType::NotRegex,
    };
    Matcher::new(kind, m.name.clone(), m.value.clone()).map_err(|e| Error::bad_data(e.to_string()))
}

/// The time the samples of `e` at evaluation time `t` were read at (after `@` and `offset`),
/// following the first vector path down the expression.
fn ref_time(ev: &Evaluator<'_>, e: &Expr, t: i64) -> i64 {
    match unparen(e) {
        Expr::VectorSelector(vs) => ev.at_ms(&vs.at).unwrap_or(t) - offset_ms(&vs.offset),
        Expr::MatrixSelector(ms) => ev.at_ms(&ms.vs.at).unwrap_or(t) - offset_ms(&ms.vs.offset),
        Expr::Subquery(sq) => {
            let r = ev.at_ms(&sq.at).unwrap_or(t) - offset_ms(&sq.offset);
            ref_time(ev, &sq.expr, r)
        }
        Expr::Unary(u) => ref_time(ev, &u.expr, t),
        Expr::Aggregate(a) => ref_time(ev, &a.expr, t),
        Expr::Call(c) => c
            .args
            .args
            .iter()
            .find(|a| matches!(a.value_type(), ValueType::Vector | ValueType::Matrix))
            .map_or(t, |a| ref_time(ev, a, t)),
        Expr::Binary(b) => {
            if b.lhs.value_type() == ValueType::Vector {
                ref_time(ev, &b.lhs, t)
            } else {
                ref_time(ev, &b.rhs, t)
            }
        }
        _ => t,
    }
}

struct InfoSeries {
    labels: Labels,
    samples: Vec<(i64, f64)>,
}

impl InfoSeries {
    /// Timestamp of the sample visible at `r` (lookback window `(r - lookback, r]`), if any.
    fn visible_at(&self, r: i64, lookback: i64) -> Option<i64> {
        let idx = self.samples.partition_point(|p| p.0 <= r);
        let &(t, v) = self.samples.get(idx.checked_sub(1)?)?;
        (t > r - lookback && !is_stale_nan(v)).then_some(t)
    }
}

/// What the second argument of `info` selects: the info metrics' names and the data labels.
struct InfoSelector {
    /// The selector of the info series (their names only; data labels are filtered after).
    selector: VectorSelector,
    /// Matchers on `__name__` (default `target_info`; only negative ones add `.+_info`).
    names: Vec<Matcher>,
    /// Whether a name matcher is positive (`=`/`=~`): base series that match the names are
    /// then info series themselves and are passed through unchanged.
    positive_names: bool,
    /// Matchers on data labels; with any, only the labels they name are added.
    data: Vec<Matcher>,
    /// A data matcher that refuses the empty value drops base series without a match.
    drop_unmatched: bool,
}

impl InfoSelector {
    fn new(sel: Option<&VectorSelector>) -> Result<Self> {
        let mut name_matchers: Vec<promql_parser::label::Matcher> = Vec::new();
        let mut data: Vec<Matcher> = Vec::new();
        if let Some(vs) = sel {
            if let Some(n) = &vs.name {
                name_matchers.push(promql_parser::label::Matcher::new(
                    MatchOp::Equal,
                    METRIC_NAME,
                    n,
                ));
            }
            for m in &vs.matchers.matchers {
                if m.name == METRIC_NAME {
                    name_matchers.push(m.clone());
                } else {
                    data.push(to_matcher(m)?);
                }
            }
        }
        let positive_names = name_matchers
            .iter()
            .any(|m| matches!(m.op, MatchOp::Equal | MatchOp::Re(_)));
        if name_matchers.is_empty() {
            name_matchers.push(promql_parser::label::Matcher::new(
                MatchOp::Equal,
                METRIC_NAME,
                "target_info",
            ));
        } else if !positive_names {
            // Only negative name matchers: they narrow down the info metrics (`*_info`).
            let re =
                regex::Regex::new("^(?:.+_info)$").map_err(|e| Error::internal(e.to_string()))?;
            name_matchers.push(promql_parser::label::Matcher::new(
                MatchOp::Re(re),
                METRIC_NAME,
                ".+_info",
            ));
        }
        Ok(Self {
            selector: VectorSelector {
                name: None,
                matchers: Matchers::new(name_matchers.clone()),
                offset: None,
                at: None,
            },
            names: name_matchers
                .iter()
                .map(to_matcher)
                .collect::<Result<_>>()?,
            positive_names,
            drop_unmatched: data.iter().any(|m| !m.matches_empty()),
            data,
        })
    }

    /// Loads the info series visible at evaluation times `[rmin, rmax]` (with lookback).
    fn load(&self, ev: &Evaluator<'_>, rmin: i64, rmax: i64) -> Result<Vec<InfoSeries>> {
        ev.select(&self.selector, rmin - ev.lookback + 1, rmax, true)?
            .into_iter()
            .filter(|(l, _, _)| {
                self.data
                    .iter()
                    .all(|m| m.matches(l.get(&m.name).unwrap_or("")))
            })
            .map(|(labels, samples, hists)| {
                // Prometheus reads info series as floats only (their value is 1 by convention).
                if hists.is_empty() {
                    Ok(InfoSeries { labels, samples })
                } else {
                    Err(Error::execution(format!(
                        "this should be an info metric, with float samples: {labels}"
                    )))
                }
            })
            .collect()
    }

    /// Whether base series labels `l` belong to an info metric this selector names.
    fn is_info(&self, l: &Labels) -> bool {
        self.positive_names
            && self
                .names
                .iter()
                .all(|m| m.matches(l.get(METRIC_NAME).unwrap_or("")))
    }

    /// The data labels to add to base series `base` from the info series visible at `r`:
    /// per info metric name, the series with the latest sample wins. `None` when no info
    /// series is visible; an error when two info metrics give a label different values.
    fn data_labels<'i>(
        &self,
        base: &Labels,
        candidates: &[&'i InfoSeries],
        r: i64,
        lookback: i64,
    ) -> Result<Option<HashMap<&'i str, &'i str>>> {
        let mut best: HashMap<&str, (i64, &InfoSeries)> = HashMap::new();
        for inf in candidates {
            if let Some(ts) = inf.visible_at(r, lookback) {
                let name = inf.labels.metric_name().unwrap_or("");
                let e = best.entry(name).or_insert((ts, inf));
                if ts > e.0 {
                    *e = (ts, inf);
                }
            }
        }
        if best.is_empty() {
            return Ok(None);
        }
        let mut added: HashMap<&str, &str> = HashMap::new();
        for (_, inf) in best.values() {
            for l in inf.labels.iter() {
                let identifying = l.name == METRIC_NAME || IDENTIFYING.contains(&l.name.as_str());
                let selected = self.data.is_empty() || self.data.iter().any(|m| m.name == l.name);
                if identifying || !selected || base.get(&l.name).is_some() {
                    continue;
                }
                match added.get(l.name.as_str()) {
                    Some(prev) if *prev != l.value => {
                        return Err(Error::execution(format!(
                            "conflicting label: {} has values {prev:?} and {:?} in info metrics",
                            l.name, l.value
                        )));
                    }
                    _ => {
                        added.insert(&l.name, &l.value);
                    }
                }
            }
        }
        Ok(Some(added))
    }
}

pub(crate) fn info(ev: &Evaluator<'_>, args: &[&Expr], c: Ctx) -> Result<Val> {
    let Some(base_expr) = args.first() else {
        return Err(Error::bad_data("info() needs an argument"));
    };
    let sel = match args.get(1).map(|a| unparen(a)) {
        Some(Expr::VectorSelector(vs)) => Some(vs),
        Some(_) => {
            return Err(Error::bad_data(
                "info(): second argument must be a selector",
            ));
        }
        None => None,
    };
    let sel = InfoSelector::new(sel)?;
    let base = ev.eval_vector(base_expr, c)?;
    let refs: Vec<i64> = (0..c.n())
        .map(|i| ref_time(ev, base_expr, c.t(i)))
        .collect();
    let (Some(&rmin), Some(&rmax)) = (refs.iter().min(), refs.iter().max()) else {
        return Ok(Val::Vector(base));
    };
    let infos = sel.load(ev, rmin, rmax)?;
    let mut out: Vec<Series> = Vec::new();
    let mut out_idx: HashMap<Labels, usize> = HashMap::new();
    for s in base {
        ev.limits.check()?;
        let is_info = sel.is_info(&s.labels);
        let ids: Vec<(&str, &str)> = IDENTIFYING
            .iter()
            .filter_map(|n| s.labels.get(n).map(|v| (*n, v)))
            .collect();
        // Info series sharing the base series' identifying labels.
        let candidates: Vec<&InfoSeries> = if is_info || ids.is_empty() {
            Vec::new()
        } else {
            infos
                .iter()
                .filter(|inf| ids.iter().all(|(n, v)| inf.labels.get(n) == Some(*v)))
                .collect()
        };
        for &(t, v) in &s.points {
            let r = refs[c.index(t)];
            let mut labels = s.labels.clone();
            match sel.data_labels(&s.labels, &candidates, r, ev.lookback)? {
                None if sel.drop_unmatched && !is_info => continue,
                None => {}
                Some(added) => {
                    for (n, val) in added {
                        labels.set(n, val);
                    }
                }
            }
            let o = *out_idx.entry(labels.clone()).or_insert_with(|| {
                out.push(Series::new(labels, s.drop_name));
                out.len() - 1
            });
            out[o].points.push((t, v));
        }
    }
    Ok(Val::Vector(out))
}
