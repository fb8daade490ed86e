//! Remote Write 2.0 (`io.prometheus.write.v2.Request`): decoding under the same size bounds as
//! 1.0 and conversion to the 1.0 shape, so validation and appending stay in one place
//! ([`super::remote_write::append_request`]); and the reverse conversion the sender uses.
//!
//! Per-series problems (a symbol ref out of range, an odd number of label refs, a series with
//! neither samples nor histograms) reject that series and are reported like 1.0's rejections;
//! the rest of the request is written. A request whose `symbols[0]` is not `""` is refused
//! whole. Native histograms are passed on as they are (1.0 and 2.0 share the message).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::prompb::{self, MetricMetadata, WriteRequest};
use super::prompb_v2::{self as v2, Request};
use super::remote_write::{DecodeError, Decoder, Outcome, Reason, StartTimestamps};
use argus_storage::METRIC_NAME;
use prost::Message;
use std::collections::HashMap;

/// The `Content-Type` `proto=` parameter of 2.0.
pub const PROTO_V2: &str = "io.prometheus.write.v2.Request";

/// Why a 2.0 body could not be decoded (HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum V2Error {
    /// Size limit or snappy.
    #[error(transparent)]
    Body(#[from] DecodeError),
    /// Not a valid `Request`.
    #[error("cannot decode protobuf io.prometheus.write.v2.Request: {0}")]
    Protobuf(String),
    /// `symbols[0]` is not the empty string.
    #[error("invalid symbols table: symbols[0] must be the empty string")]
    Symbols,
}

/// Decompresses and decodes a 2.0 body into `req` (cleared first).
pub fn decode_into(
    dec: &mut Decoder,
    body: &[u8],
    limit: usize,
    req: &mut Request,
) -> Result<(), V2Error> {
    let bytes = dec.decompress(body, limit)?;
    req.clear();
    req.merge(bytes)
        .map_err(|e| V2Error::Protobuf(e.to_string()))?;
    if req.symbols.first().is_some_and(|s| !s.is_empty()) {
        return Err(V2Error::Symbols);
    }
    Ok(())
}

fn symbol(symbols: &[String], r: u32) -> Result<&str, String> {
    symbols
        .get(r as usize)
        .map(String::as_str)
        .ok_or_else(|| format!("symbol ref {r} out of range ({} symbols)", symbols.len()))
}

fn labels_of(symbols: &[String], refs: &[u32]) -> Result<Vec<prompb::Label>, String> {
    if !refs.len().is_multiple_of(2) {
        return Err(format!("odd number of label refs ({})", refs.len()));
    }
    refs.chunks_exact(2)
        .map(|p| match p {
            [n, v] => Ok(prompb::Label {
                name: symbol(symbols, *n)?.to_string(),
                value: symbol(symbols, *v)?.to_string(),
            }),
            _ => unreachable!("BUG: chunks_exact(2) yielded a short chunk"),
        })
        .collect()
}

/// Converts a 2.0 request into a 1.0 one (`out` is cleared first) plus its metadata.
/// Series that cannot be converted are counted in the returned [`Outcome`], which the caller
/// merges with the append's.
pub fn to_v1(req: &Request, out: &mut WriteRequest) -> Outcome {
    to_v1_with_starts(req, out, &mut StartTimestamps::default())
}

/// [`to_v1`] that also keeps the start ("created") timestamps, which 1.0 float samples cannot
/// carry, in `starts` (cleared first; one entry per series of `out`). A histogram keeps its own
/// in `Histogram::start_timestamp`. The series-wide `created_timestamp` of older senders stands
/// for the first float sample and every histogram without one, as Prometheus 3.0–3.7 read it.
pub fn to_v1_with_starts(
    req: &Request,
    out: &mut WriteRequest,
    starts: &mut StartTimestamps,
) -> Outcome {
    starts.floats.clear();
    out.clear();
    let mut rejected = Outcome::default();
    let syms = &req.symbols;
    for ts in &req.timeseries {
        let n = (ts.samples.len() + ts.histograms.len()) as u64;
        let labels = match labels_of(syms, &ts.labels_refs) {
            Ok(l) => l,
            Err(msg) => {
                rejected.samples_received += n;
                rejected.reject(Reason::InvalidLabels, n.max(1), || {
                    format!("invalid series: {msg}")
                });
                continue;
            }
        };
        if n == 0 {
            rejected.reject(Reason::InvalidLabels, 1, || {
                "invalid series: no samples or histograms".to_string()
            });
            continue;
        }
        if let Some(m) = &ts.metadata
            && let Some(name) = labels.iter().find(|l| l.name == METRIC_NAME)
            && (m.r#type != 0 || m.help_ref != 0 || m.unit_ref != 0)
        {
            out.metadata.push(MetricMetadata {
                r#type: m.r#type,
                metric_family_name: super::metadata::family_of(&name.value, m.r#type).to_string(),
                help: symbol(syms, m.help_ref).unwrap_or("").to_string(),
                unit: symbol(syms, m.unit_ref).unwrap_or("").to_string(),
            });
        }
        out.timeseries.push(prompb::TimeSeries {
            labels,
            samples: ts
                .samples
                .iter()
                .map(|s| prompb::Sample {
                    value: s.value,
                    timestamp: s.timestamp,
                })
                .collect(),
            exemplars: Vec::new(),
            histograms: ts
                .histograms
                .iter()
                .map(|h| prompb::Histogram {
                    start_timestamp: if h.start_timestamp == 0 {
                        ts.created_timestamp
                    } else {
                        h.start_timestamp
                    },
                    ..h.clone()
                })
                .collect(),
        });
        starts.floats.push(
            ts.samples
                .iter()
                .enumerate()
                .map(|(i, s)| match (s.start_timestamp, i) {
                    (0, 0) => ts.created_timestamp,
                    (st, _) => st,
                })
                .collect(),
        );
    }
    rejected
}

/// Merges the conversion's rejections (its messages first) into the append's outcome.
pub fn merge_outcome(into: &mut Outcome, from: Outcome) {
    into.samples_received += from.samples_received;
    into.rejected_total += from.rejected_total;
    for (reason, n) in from.rejected {
        match into.rejected.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, m)) => *m += n,
            None => into.rejected.push((reason, n)),
        }
    }
    let later = std::mem::replace(&mut into.messages, from.messages);
    into.messages.extend(later);
    into.messages.truncate(MAX_MESSAGES);
}

/// Rejection messages kept after a merge (as 1.0's response).
const MAX_MESSAGES: usize = 5;

/// Builds string tables: the index of each distinct string, `""` first.
#[derive(Default)]
pub struct SymbolTable {
    index: HashMap<String, u32>,
    symbols: Vec<String>,
}

impl SymbolTable {
    /// An empty table holding `""` at 0.
    pub fn new() -> Self {
        let mut t = Self::default();
        t.get("");
        t
    }

    /// The ref of `s`, adding it.
    pub fn get(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = u32::try_from(self.symbols.len()).unwrap_or(u32::MAX);
        self.symbols.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }

    /// The table.
    pub fn into_symbols(self) -> Vec<String> {
        self.symbols
    }
}

/// Converts a 1.0 request into 2.0 (the sender's 2.0 path; metadata is attached to the series
/// of its metric family).
pub fn from_v1(req: &WriteRequest) -> Request {
    let mut syms = SymbolTable::new();
    let meta: HashMap<&str, &MetricMetadata> = req
        .metadata
        .iter()
        .map(|m| (m.metric_family_name.as_str(), m))
        .collect();
    let timeseries = req
        .timeseries
        .iter()
        .map(|ts| {
            let mut refs = Vec::with_capacity(ts.labels.len() * 2);
            let mut name = None;
            for l in &ts.labels {
                refs.push(syms.get(&l.name));
                refs.push(syms.get(&l.value));
                if l.name == METRIC_NAME {
                    name = Some(l.value.as_str());
                }
            }
            let metadata = name.and_then(|n| meta.get(n)).map(|m| v2::Metadata {
                r#type: m.r#type,
                help_ref: if m.help.is_empty() {
                    0
                } else {
                    syms.get(&m.help)
                },
                unit_ref: if m.unit.is_empty() {
                    0
                } else {
                    syms.get(&m.unit)
                },
            });
            v2::TimeSeries {
                labels_refs: refs,
                samples: ts
                    .samples
                    .iter()
                    .map(|s| v2::Sample {
                        value: s.value,
                        timestamp: s.timestamp,
                        start_timestamp: 0,
                    })
                    .collect(),
                histograms: ts.histograms.clone(),
                exemplars: Vec::new(),
                metadata,
                created_timestamp: 0,
            }
        })
        .collect();
    Request {
        symbols: syms.into_symbols(),
        timeseries,
    }
}

/// Encodes a 2.0 request the way senders do (protobuf, then snappy block format).
pub fn encode(req: &Request) -> Vec<u8> {
    let raw = req.encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_else(|e| unreachable!("BUG: snappy refused {} bytes: {e}", raw.len()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::ingest::prompb::TimeSeries;
    use crate::ingest::remote_write::MAX_DECOMPRESSED_BYTES;
    use proptest::prelude::*;

    fn decode(body: &[u8]) -> Result<Request, V2Error> {
        let mut req = Request::default();
        decode_into(&mut Decoder::new(), body, MAX_DECOMPRESSED_BYTES, &mut req)?;
        Ok(req)
    }

    #[test]
    fn bad_refs_reject_the_series_only() {
        let req = Request {
            symbols: vec!["".into(), "__name__".into(), "up".into()],
            timeseries: vec![
                v2::TimeSeries {
                    labels_refs: vec![1, 2],
                    samples: vec![v2::Sample {
                        value: 1.0,
                        timestamp: 5,
                        start_timestamp: 0,
                    }],
                    ..Default::default()
                },
                v2::TimeSeries {
                    labels_refs: vec![1, 9],
                    samples: vec![v2::Sample::default()],
                    ..Default::default()
                },
                v2::TimeSeries {
                    labels_refs: vec![1],
                    samples: vec![v2::Sample::default()],
                    ..Default::default()
                },
                v2::TimeSeries {
                    labels_refs: vec![1, 2],
                    ..Default::default()
                },
            ],
        };
        let req = decode(&encode(&req)).unwrap();
        let mut v1 = WriteRequest::default();
        let out = to_v1(&req, &mut v1);
        assert_eq!(v1.timeseries.len(), 1);
        assert_eq!(out.rejected_total, 3);
        let text = out.error_text().unwrap();
        assert!(text.contains("symbol ref 9 out of range"), "{text}");
        assert!(text.contains("odd number of label refs"), "{text}");
        assert!(text.contains("no samples"), "{text}");
    }

    #[test]
    fn start_timestamps_survive_the_conversion() {
        let sample = |timestamp, start_timestamp| v2::Sample {
            value: 1.0,
            timestamp,
            start_timestamp,
        };
        let hist = |timestamp, start_timestamp| prompb::Histogram {
            timestamp,
            start_timestamp,
            ..Default::default()
        };
        let req = Request {
            symbols: vec!["".into(), "__name__".into(), "a".into(), "b".into()],
            timeseries: vec![
                v2::TimeSeries {
                    labels_refs: vec![1, 2],
                    samples: vec![sample(10, 5), sample(20, 0), sample(30, 25)],
                    histograms: vec![hist(40, 35)],
                    ..Default::default()
                },
                v2::TimeSeries {
                    labels_refs: vec![1, 9],
                    samples: vec![sample(10, 5)],
                    ..Default::default()
                },
                // Prometheus 3.0-3.7: one created timestamp for the series.
                v2::TimeSeries {
                    labels_refs: vec![1, 3],
                    samples: vec![sample(10, 0), sample(20, 0)],
                    histograms: vec![hist(30, 0), hist(40, 0)],
                    created_timestamp: 2,
                    ..Default::default()
                },
            ],
        };
        let req = decode(&encode(&req)).unwrap();
        let mut v1 = WriteRequest::default();
        let mut starts = StartTimestamps::default();
        to_v1_with_starts(&req, &mut v1, &mut starts);
        assert_eq!(starts.floats, vec![vec![5, 0, 25], vec![2, 0]]);
        let hs: Vec<Vec<i64>> = v1
            .timeseries
            .iter()
            .map(|ts| ts.histograms.iter().map(|h| h.start_timestamp).collect())
            .collect();
        assert_eq!(hs, vec![vec![35], vec![2, 2]]);
    }

    #[test]
    fn refuses_bad_bodies() {
        let bad_syms = Request {
            symbols: vec!["x".into()],
            timeseries: vec![],
        };
        assert_eq!(decode(&encode(&bad_syms)), Err(V2Error::Symbols));
        assert!(matches!(decode(b"\x05abc"), Err(V2Error::Body(_))));
        let garbage = snap::raw::Encoder::new()
            .compress_vec(b"\xff\xff\xff")
            .unwrap();
        assert!(matches!(decode(&garbage), Err(V2Error::Protobuf(_))));
        // A 1.0 body decodes as an empty 2.0 request (fields 1-3 are reserved).
        let v1 = crate::ingest::remote_write::encode(&WriteRequest {
            timeseries: vec![TimeSeries::from_pairs(&[("__name__", "a")], &[(1, 1.0)])],
            metadata: vec![],
        });
        assert_eq!(decode(&v1).unwrap().timeseries.len(), 0);
    }

    fn arb_request() -> impl Strategy<Value = WriteRequest> {
        let label = ("[a-z_]{1,6}", "[a-zA-Z0-9 ]{0,6}");
        let series = (
            proptest::collection::btree_map(label.0, label.1, 0..4),
            proptest::collection::vec((any::<i64>(), any::<f64>()), 1..5),
        )
            .prop_map(|(labels, samples)| {
                let mut pairs: Vec<(String, String)> = labels.into_iter().collect();
                pairs.insert(0, ("__name__".into(), "m".into()));
                let pairs: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(a, b)| (a.as_str(), b.as_str()))
                    .collect();
                TimeSeries::from_pairs(&pairs, &samples)
            });
        proptest::collection::vec(series, 0..6).prop_map(|timeseries| WriteRequest {
            timeseries,
            metadata: vec![],
        })
    }

    proptest! {
        #[test]
        fn round_trip_through_v2(req in arb_request()) {
            let body = encode(&from_v1(&req));
            let mut back = WriteRequest::default();
            let out = to_v1(&decode(&body).unwrap(), &mut back);
            prop_assert_eq!(out.rejected_total, 0);
            prop_assert_eq!(back.timeseries.len(), req.timeseries.len());
            for (a, b) in back.timeseries.iter().zip(&req.timeseries) {
                prop_assert_eq!(&a.labels, &b.labels);
                // Bit-exact, except -0.0: proto3 omits a value equal to the default 0.0.
                let bits = |s: &[prompb::Sample]| -> Vec<(i64, u64)> {
                    s.iter()
                        .map(|s| (s.timestamp, (s.value + 0.0).to_bits()))
                        .collect()
                };
                prop_assert_eq!(bits(&a.samples), bits(&b.samples));
            }
        }

        #[test]
        fn arbitrary_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(req) = decode(&bytes) {
                let _ = to_v1(&req, &mut WriteRequest::default());
            }
            let compressed = snap::raw::Encoder::new().compress_vec(&bytes).unwrap();
            if let Ok(req) = decode(&compressed) {
                let _ = to_v1(&req, &mut WriteRequest::default());
            }
        }
    }
}
