//! Argus's PromQL evaluator. Parses with `promql-parser`; evaluates over the
//! `argus_storage::Queryable` trait with the semantics of Prometheus 3.x.
//!
//! [`Engine`] runs instant and range queries and returns [`Value`]s in the shapes of the
//! Prometheus HTTP API. Each query opens one `Querier` over the whole time range it needs,
//! selects each selector's series once, and walks the steps forward with moving windows.
//!
//! ```
//! use argus_query::{Engine, EngineOptions, Value};
//! use argus_storage::{Labels, testing::MemStorage};
//! let db = MemStorage::new();
//! let up = Labels::from_pairs(&[("__name__", "up"), ("job", "a")]);
//! db.insert(up.clone(), 0, 1.0);
//! let engine = Engine::new(EngineOptions::default());
//! let v = engine.instant_query(&db, "up * 2", 10_000).unwrap();
//! let Value::Vector(v) = v else { panic!() };
//! assert_eq!(v[0].v, 2.0);
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod analyze;
mod annotations;
pub mod calendar;
mod error;
mod eval;
mod functions;
pub mod gofloat;
mod limits;
pub mod names;
mod parse;
pub mod promqltest;
mod value;

pub use annotations::Annotations;
pub use error::{Error, ErrorKind};
pub use limits::CancelToken;
pub use parse::{parse as parse_expr, parse_selector};
pub use value::{MatrixSeries, Value, VectorSample};

use argus_storage::Queryable;
use eval::{Ctx, Evaluator};
use limits::Limits;
use std::time::Duration;
use value::{Series, Val};

/// A PromQL function Argus evaluates, as its function table describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionInfo {
    /// The function's name.
    pub name: &'static str,
    /// Its signature as Prometheus's docs write it, e.g.
    /// `quantile_over_time(scalar, range-vector) instant-vector`.
    pub signature: String,
    /// Experimental in Prometheus (behind `--enable-feature=promql-experimental-functions`);
    /// Argus evaluates these without a flag.
    pub experimental: bool,
}

/// Every PromQL function Argus evaluates, sorted by name: the same table the parse check and
/// the evaluator dispatch through (for docs and query editors).
pub fn functions() -> impl Iterator<Item = FunctionInfo> {
    functions::table::all().iter().map(|d| FunctionInfo {
        name: d.name,
        signature: d.signature(),
        experimental: d.experimental,
    })
}

/// Engine limits and defaults.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Lookback delta for instant vector selectors, ms (default 5 m).
    pub lookback_delta_ms: i64,
    /// Per-query wall-clock limit (default 2 m).
    pub timeout: Duration,
    /// Maximum samples loaded into memory at once by one query (default 50,000,000).
    pub max_samples: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_delta_ms: 5 * 60 * 1000,
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
        }
    }
}

/// The PromQL engine. Cheap to share; queries may run concurrently.
pub struct Engine {
    opts: EngineOptions,
}

/// Maximum number of steps of a range query (Prometheus's limit).
const MAX_STEPS: i64 = 11_000;

impl Engine {
    /// Builds an engine.
    pub fn new(opts: EngineOptions) -> Self {
        Self { opts }
    }

    /// The options this engine was built with.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Evaluates `query` at time `t` (ms).
    pub fn instant_query(
        &self,
        storage: &dyn Queryable,
        query: &str,
        t: i64,
    ) -> Result<Value, Error> {
        self.instant_query_with(storage, query, t, &CancelToken::new())
    }

    /// [`Engine::instant_query`] that stops with a `canceled` error once `cancel` is set.
    pub fn instant_query_with(
        &self,
        storage: &dyn Queryable,
        query: &str,
        t: i64,
        cancel: &CancelToken,
    ) -> Result<Value, Error> {
        self.instant_query_annotated(storage, query, t, cancel)
            .map(|r| r.0)
    }

    /// [`Engine::instant_query_with`] that also returns the query's warnings and infos.
    pub fn instant_query_annotated(
        &self,
        storage: &dyn Queryable,
        query: &str,
        t: i64,
        cancel: &CancelToken,
    ) -> Result<(Value, Annotations), Error> {
        let expr = parse::parse(query)?;
        let c = Ctx {
            start: t,
            end: t,
            step: 1,
        };
        let (v, annos) = self.run(storage, &expr, c, cancel)?;
        let v = match v {
            Val::Scalar(s) => Value::Scalar(t, s.first().copied().unwrap_or(f64::NAN)),
            Val::String(s) => Value::String(t, s),
            Val::Vector(ss) => Value::Vector(
                ss.into_iter()
                    .filter_map(|mut s| {
                        if let Some(p) = s.points.first() {
                            return Some(VectorSample {
                                labels: s.labels,
                                t,
                                v: p.1,
                                h: None,
                            });
                        }
                        let h = s.hists.pop()?;
                        Some(VectorSample {
                            labels: s.labels,
                            t,
                            v: 0.0,
                            h: Some(Box::new(h.1)),
                        })
                    })
                    .collect(),
            ),
            Val::Matrix(ss) => Value::Matrix(to_matrix(ss)),
        };
        Ok((v, annos))
    }

    /// Evaluates `query` at `start, start+step, …, end` (ms); returns a `Matrix` (or an error).
    pub fn range_query(
        &self,
        storage: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Value, Error> {
        self.range_query_with(storage, query, start, end, step, &CancelToken::new())
    }

    /// [`Engine::range_query`] that stops with a `canceled` error once `cancel` is set.
    pub fn range_query_with(
        &self,
        storage: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        cancel: &CancelToken,
    ) -> Result<Value, Error> {
        self.range_query_annotated(storage, query, start, end, step, cancel)
            .map(|r| r.0)
    }

    /// [`Engine::range_query_with`] that also returns the query's warnings and infos.
    pub fn range_query_annotated(
        &self,
        storage: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        cancel: &CancelToken,
    ) -> Result<(Value, Annotations), Error> {
        if step <= 0 {
            return Err(Error::bad_data(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if end < start {
            return Err(Error::bad_data(
                "end timestamp must not be before start time",
            ));
        }
        // Checked: `end - start` overflows i64 for a range over ~292 million years, and a
        // wrapped (negative) span would slip past the points limit.
        let Some(span) = end.checked_sub(start) else {
            return Err(Error::bad_data(
                "time range too large: end - start does not fit in 64-bit milliseconds",
            ));
        };
        if span / step >= MAX_STEPS {
            return Err(Error::bad_data(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        let expr = parse::parse(query)?;
        if matches!(
            expr.value_type(),
            promql_parser::parser::value::ValueType::Matrix
        ) {
            return Err(Error::bad_data(
                "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector",
            ));
        }
        if matches!(
            expr.value_type(),
            promql_parser::parser::value::ValueType::String
        ) {
            return Err(Error::bad_data(
                "invalid expression type \"string\" for range query, must be Scalar or instant Vector",
            ));
        }
        let c = Ctx { start, end, step };
        let (v, annos) = self.run(storage, &expr, c, cancel)?;
        let v = match v {
            Val::Scalar(s) => Value::Matrix(vec![MatrixSeries {
                labels: argus_storage::Labels::empty(),
                points: s.iter().enumerate().map(|(i, v)| (c.t(i), *v)).collect(),
                histograms: Vec::new(),
            }]),
            Val::String(_) => {
                return Err(Error::bad_data("string is not a valid range query result"));
            }
            Val::Vector(ss) | Val::Matrix(ss) => Value::Matrix(to_matrix(ss)),
        };
        Ok((v, annos))
    }

    /// Opens the querier, evaluates, and applies the delayed `__name__` removal.
    fn run(
        &self,
        storage: &dyn Queryable,
        expr: &promql_parser::parser::Expr,
        c: Ctx,
        cancel: &CancelToken,
    ) -> Result<(Val, Annotations), Error> {
        let lookback = self.opts.lookback_delta_ms;
        let querier = match analyze::time_bounds(expr, c.start, c.end, lookback) {
            Some((mint, maxt)) => Some(
                storage
                    .querier(mint, maxt)
                    .map_err(|e| Error::internal(e.to_string()))?,
            ),
            None => None,
        };
        let ev = Evaluator {
            querier,
            lookback,
            query_start: c.start,
            query_end: c.end,
            query_step: if c.start == c.end { 0 } else { c.step },
            limits: Limits::new(self.opts.timeout, self.opts.max_samples, cancel.clone()),
            annos: Default::default(),
            stats_selectors: analyze::histogram_stats_selectors(expr),
        };
        ev.limits.check_now()?;
        let v = ev.eval(expr, c)?;
        let v = match v {
            Val::Vector(ss) => Val::Vector(finish(ss, c.n() == 1)?),
            Val::Matrix(ss) => Val::Matrix(finish(ss, true)?),
            other => other,
        };
        let mut annos = ev.annos.take();
        // Storage warnings (a failed remote read endpoint) come first, as in Prometheus.
        if let Some(q) = &ev.querier {
            let mut w = q.warnings();
            w.retain(|m| !annos.warnings.contains(m));
            w.append(&mut annos.warnings);
            annos.warnings = w;
        }
        Ok((v, annos))
    }
}

/// Drops names marked for delayed removal; fails when two series end with the same labels
/// (for range results, series with the same labels and disjoint points are merged).
fn finish(ss: Vec<Series>, instant: bool) -> Result<Vec<Series>, Error> {
    let mut out: Vec<Series> = Vec::with_capacity(ss.len());
    let mut any_drop = false;
    for mut s in ss {
        any_drop |= s.drop_name;
        s.finish_name();
        out.push(s);
    }
    if !any_drop {
        return Ok(out);
    }
    if instant {
        // A strictly increasing list has no duplicates: the usual case, one selector's series
        // (read in label order) without their shared name; no hashing needed.
        if out
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.labels < b.labels))
        {
            return Ok(out);
        }
        let mut seen: std::collections::HashSet<
            &argus_storage::Labels,
            foldhash::fast::RandomState,
        > = Default::default();
        for s in &out {
            if !seen.insert(&s.labels) {
                return Err(Error::execution(
                    "vector cannot contain metrics with the same labelset",
                ));
            }
        }
        return Ok(out);
    }
    functions::merge_same_labels(out)
}

fn to_matrix(mut ss: Vec<Series>) -> Vec<MatrixSeries> {
    ss.retain(|s| !s.is_empty());
    ss.sort_by(|a, b| a.labels.cmp(&b.labels));
    ss.into_iter()
        .map(|s| MatrixSeries {
            labels: s.labels,
            points: s.points,
            histograms: s.hists,
        })
        .collect()
}
