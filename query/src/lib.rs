//! Argus's PromQL evaluator. Parses with `promql-parser`; evaluates over the
//! `argus_storage::Queryable` trait. OWNER: query helper. (API stub: the signatures of `Engine`,
//! `EngineOptions`, `Value` and `Error` are the contract the HTTP API builds against.)
#![deny(unsafe_code)]
#![warn(missing_docs)]

use argus_storage::{Labels, Queryable};
use std::time::Duration;

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

/// One series in an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSample {
    /// Labels (metric name included unless dropped by the expression).
    pub labels: Labels,
    /// Timestamp, ms.
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// One series in a range vector / range query result.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixSeries {
    /// Labels.
    pub labels: Labels,
    /// `(t ms, value)` in time order.
    pub points: Vec<(i64, f64)>,
}

/// A query result, in the shapes of Prometheus's HTTP API (`resultType`).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `scalar`: `(t ms, value)`.
    Scalar(i64, f64),
    /// `string`: `(t ms, value)`.
    String(i64, String),
    /// `vector`.
    Vector(Vec<VectorSample>),
    /// `matrix`, series sorted by labels.
    Matrix(Vec<MatrixSeries>),
}

/// Class of a query error, mapped to Prometheus's `errorType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// `bad_data` (HTTP 400): parse errors, bad arguments.
    BadData,
    /// `execution` (HTTP 422): runtime failures such as many-to-many matching.
    Execution,
    /// `timeout` (HTTP 503).
    Timeout,
    /// `canceled` (HTTP 503).
    Canceled,
    /// `internal` (HTTP 500): storage failures.
    Internal,
}

/// A query error with a Prometheus-style message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// Class.
    pub kind: ErrorKind,
    /// Message, as Prometheus words it where possible.
    pub message: String,
}

/// The PromQL engine. Cheap to share; queries may run concurrently.
pub struct Engine {
    _opts: EngineOptions,
}

impl Engine {
    /// Builds an engine.
    pub fn new(opts: EngineOptions) -> Self {
        Self { _opts: opts }
    }

    /// Evaluates `query` at time `t` (ms).
    pub fn instant_query(
        &self,
        _storage: &dyn Queryable,
        _query: &str,
        _t: i64,
    ) -> Result<Value, Error> {
        todo!()
    }

    /// Evaluates `query` at `start, start+step, …, end` (ms); returns a `Matrix` (or an error).
    pub fn range_query(
        &self,
        _storage: &dyn Queryable,
        _query: &str,
        _start: i64,
        _end: i64,
        _step: i64,
    ) -> Result<Value, Error> {
        todo!()
    }
}
