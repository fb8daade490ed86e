//! Remote read server logic (`prometheus.ReadRequest` → `prometheus.ReadResponse`, the
//! `SAMPLES` response type): decoding under size bounds, running each query's matchers over a
//! [`Queryable`], and encoding the answer. The HTTP edge is `api::read`.
//!
//! As Prometheus's read handler: matchers on an external label are checked against its value
//! and removed (the stored series do not carry external labels), and the external labels are
//! added to every returned series. The samples returned across all queries are bounded by
//! `max_samples`; a request over the bound is refused whole.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::ingest::prompb::{self, TimeSeries};
use crate::ingest::remote_write::{DecodeError, Decoder};
use argus_storage::{Labels, MatchType, Matcher, Queryable};
use prost::Message;

/// Largest accepted decompressed request.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;
/// Most queries in one request.
pub const MAX_QUERIES: usize = 64;

/// `prometheus.ReadRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadRequest {
    /// Field 1.
    #[prost(message, repeated, tag = "1")]
    pub queries: Vec<Query>,
    /// Field 2: `ResponseType` (0 `SAMPLES`, 1 `STREAMED_XOR_CHUNKS`); empty means `SAMPLES`.
    #[prost(int32, repeated, tag = "2")]
    pub accepted_response_types: Vec<i32>,
}

/// `prometheus.Query` (read hints are ignored).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Query {
    /// Field 1, ms.
    #[prost(int64, tag = "1")]
    pub start_timestamp_ms: i64,
    /// Field 2, ms.
    #[prost(int64, tag = "2")]
    pub end_timestamp_ms: i64,
    /// Field 3.
    #[prost(message, repeated, tag = "3")]
    pub matchers: Vec<LabelMatcher>,
}

/// `prometheus.LabelMatcher`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LabelMatcher {
    /// Field 1: 0 `EQ`, 1 `NEQ`, 2 `RE`, 3 `NRE`.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// Field 2.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Field 3.
    #[prost(string, tag = "3")]
    pub value: String,
}

/// `prometheus.ReadResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadResponse {
    /// Field 1: one per query, in order.
    #[prost(message, repeated, tag = "1")]
    pub results: Vec<QueryResult>,
}

/// `prometheus.QueryResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryResult {
    /// Field 1.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// Why a read request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadError {
    /// Size or snappy (400).
    #[error(transparent)]
    Body(#[from] DecodeError),
    /// Not a `ReadRequest` or invalid content (400).
    #[error("{0}")]
    BadRequest(String),
    /// Only streamed chunks were accepted by the client (400).
    #[error("none of the accepted response types is supported: Argus answers SAMPLES only")]
    UnsupportedResponseType,
    /// More samples than `--query.max-samples` in one request (400).
    #[error("exceeded sample limit ({0})")]
    SampleLimit(usize),
    /// Storage failure (500).
    #[error("cannot read: {0}")]
    Storage(String),
}

/// Decodes a snappy-compressed `ReadRequest`.
pub fn decode(body: &[u8]) -> Result<ReadRequest, ReadError> {
    let mut dec = Decoder::new();
    let bytes = dec.decompress(body, MAX_REQUEST_BYTES)?;
    let req = ReadRequest::decode(bytes)
        .map_err(|e| ReadError::BadRequest(format!("cannot decode ReadRequest: {e}")))?;
    if req.queries.len() > MAX_QUERIES {
        return Err(ReadError::BadRequest(format!(
            "{} queries in one request, at most {MAX_QUERIES}",
            req.queries.len()
        )));
    }
    if !req.accepted_response_types.is_empty() && !req.accepted_response_types.contains(&0) {
        return Err(ReadError::UnsupportedResponseType);
    }
    Ok(req)
}

/// The query's matchers without those on external labels; `None` when a matcher on an external
/// label rejects its value (the query matches nothing).
fn matchers(q: &Query, external: &Labels) -> Result<Option<Vec<Matcher>>, ReadError> {
    let mut out = Vec::with_capacity(q.matchers.len());
    for m in &q.matchers {
        let kind = match m.r#type {
            0 => MatchType::Equal,
            1 => MatchType::NotEqual,
            2 => MatchType::Regex,
            3 => MatchType::NotRegex,
            t => return Err(ReadError::BadRequest(format!("unknown matcher type {t}"))),
        };
        let matcher = Matcher::new(kind, m.name.clone(), m.value.clone())
            .map_err(|e| ReadError::BadRequest(e.to_string()))?;
        match external.get(&m.name) {
            Some(v) if matcher.matches(v) => {}
            Some(_) => return Ok(None),
            None => out.push(matcher),
        }
    }
    Ok(Some(out))
}

/// Answers every query of `req` from `db` with at most `max_samples` samples in all.
pub fn answer(
    db: &dyn Queryable,
    req: &ReadRequest,
    external: &Labels,
    max_samples: usize,
) -> Result<ReadResponse, ReadError> {
    let mut total = 0usize;
    let mut results = Vec::with_capacity(req.queries.len());
    for q in &req.queries {
        let mut result = QueryResult::default();
        let Some(ms) = matchers(q, external)? else {
            results.push(result);
            continue;
        };
        if ms.is_empty() || argus_storage::validate_selector(&ms).is_err() {
            return Err(ReadError::BadRequest(
                "a query needs at least one matcher that does not match the empty string".into(),
            ));
        }
        let querier = db
            .querier(q.start_timestamp_ms, q.end_timestamp_ms)
            .map_err(|e| ReadError::Storage(e.to_string()))?;
        let mut set = querier.select(&ms);
        while set.next() {
            let mut labels = set.labels().clone();
            for e in external.iter() {
                if labels.get(&e.name).is_none() {
                    labels.set(&e.name, &e.value);
                }
            }
            let mut ts = TimeSeries {
                labels: labels
                    .iter()
                    .map(|l| prompb::Label {
                        name: l.name.clone(),
                        value: l.value.clone(),
                    })
                    .collect(),
                samples: Vec::new(),
                exemplars: Vec::new(),
                histograms: Vec::new(),
            };
            let mut it = set.samples();
            while it.next() {
                total += 1;
                if total > max_samples {
                    return Err(ReadError::SampleLimit(max_samples));
                }
                let (timestamp, value) = it.at();
                if let Some(h) = it.at_histogram() {
                    ts.histograms.push(
                        crate::ingest::remote_write_histogram::from_float_histogram(timestamp, h),
                    );
                    continue;
                }
                ts.samples.push(prompb::Sample { value, timestamp });
            }
            if let Some(e) = it.err() {
                return Err(ReadError::Storage(e.to_string()));
            }
            if !ts.samples.is_empty() || !ts.histograms.is_empty() {
                result.timeseries.push(ts);
            }
        }
        if let Some(e) = set.err() {
            return Err(ReadError::Storage(e.to_string()));
        }
        results.push(result);
    }
    Ok(ReadResponse { results })
}

/// Encodes a response: protobuf, then snappy block format.
pub fn encode(resp: &ReadResponse) -> Vec<u8> {
    let raw = resp.encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_else(|e| unreachable!("BUG: snappy refused {} bytes: {e}", raw.len()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use argus_storage::testing::MemStorage;

    fn req(matchers: Vec<LabelMatcher>, types: Vec<i32>) -> Vec<u8> {
        let r = ReadRequest {
            queries: vec![Query {
                start_timestamp_ms: 0,
                end_timestamp_ms: 10_000,
                matchers,
            }],
            accepted_response_types: types,
        };
        snap::raw::Encoder::new()
            .compress_vec(&r.encode_to_vec())
            .unwrap()
    }

    fn m(t: i32, n: &str, v: &str) -> LabelMatcher {
        LabelMatcher {
            r#type: t,
            name: n.into(),
            value: v.into(),
        }
    }

    #[test]
    fn answers_with_external_labels_and_limits() {
        let db = MemStorage::new();
        for t in 1..=3 {
            db.insert(
                Labels::from_pairs(&[("__name__", "up"), ("job", "a")]),
                t * 1000,
                1.0,
            );
            db.insert(
                Labels::from_pairs(&[("__name__", "up"), ("job", "b")]),
                t * 1000,
                0.0,
            );
        }
        let ext = Labels::from_pairs(&[("cluster", "x")]);
        let r = decode(&req(
            vec![
                m(0, "__name__", "up"),
                m(2, "job", "a|c"),
                m(0, "cluster", "x"),
            ],
            vec![],
        ))
        .unwrap();
        let resp = answer(&db, &r, &ext, 100).unwrap();
        let ts = &resp.results[0].timeseries;
        assert_eq!(ts.len(), 1);
        let names: Vec<(&str, &str)> = ts[0]
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![("__name__", "up"), ("cluster", "x"), ("job", "a")]
        );
        assert_eq!(ts[0].samples.len(), 3);
        // A matcher on an external label that rejects its value matches nothing.
        let r = decode(&req(
            vec![m(0, "__name__", "up"), m(0, "cluster", "y")],
            vec![],
        ))
        .unwrap();
        assert!(
            answer(&db, &r, &ext, 100).unwrap().results[0]
                .timeseries
                .is_empty()
        );
        let r = decode(&req(vec![m(0, "__name__", "up")], vec![])).unwrap();
        assert_eq!(answer(&db, &r, &ext, 5), Err(ReadError::SampleLimit(5)));
        let r = decode(&req(vec![m(2, "job", ".*")], vec![])).unwrap();
        assert!(matches!(
            answer(&db, &r, &ext, 100),
            Err(ReadError::BadRequest(_))
        ));
        assert_eq!(
            decode(&req(vec![], vec![1])),
            Err(ReadError::UnsupportedResponseType)
        );
        assert!(matches!(
            decode(b"\x01\x00"),
            Err(ReadError::Body(_)) | Err(ReadError::BadRequest(_))
        ));
        let r = decode(&req(vec![m(7, "a", "b")], vec![0, 1])).unwrap();
        assert!(matches!(
            answer(&db, &r, &ext, 100),
            Err(ReadError::BadRequest(_))
        ));
    }
}
