//! Remote read's `STREAMED_XOR_CHUNKS` response: one `prometheus.ChunkedReadResponse` per
//! frame, each holding (part of) one series, series in label order per query.
//!
//! ```text
//! frame: ┌──────────────────┬──────────────────────────────┬──────────────────────────────┐
//!        │ len uvarint      │ CRC32-Castagnoli(msg) u32 BE │ msg: ChunkedReadResponse     │
//!        └──────────────────┴──────────────────────────────┴──────────────────────────────┘
//! ```
//! As Prometheus's `StreamChunkedReadResponses`: a series is cut into chunks of at most
//! [`SAMPLES_PER_CHUNK`] samples (Prometheus XOR encoding; Argus's storage chunks may use
//! another encoding, so samples are re-encoded), and a frame is closed once its labels and chunks
//! reach `max_bytes_in_frame` (so a frame exceeds it by at most one chunk). Only samples inside
//! the query's `[start, end]` are sent. The whole response is bounded by a deadline.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::read::{ReadError, ReadRequest, prepare, with_external};
use crate::ingest::prompb;
use argus_storage::{Labels, Queryable, Timestamp, encode_prometheus_xor};
use prost::Message;
use std::time::Instant;

/// Content type of a streamed response.
pub const CONTENT_TYPE: &str =
    "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";
/// Samples per chunk, as Prometheus's head chunks.
pub const SAMPLES_PER_CHUNK: usize = 120;
/// `prometheus.Chunk.Encoding.XOR`.
pub const ENCODING_XOR: i32 = 1;

/// `prometheus.ChunkedReadResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkedReadResponse {
    /// Field 1 (one series per message here, as in Prometheus).
    #[prost(message, repeated, tag = "1")]
    pub chunked_series: Vec<ChunkedSeries>,
    /// Field 2: index of the query in the request.
    #[prost(int64, tag = "2")]
    pub query_index: i64,
}

/// `prometheus.ChunkedSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkedSeries {
    /// Field 1, sorted.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<prompb::Label>,
    /// Field 2, in time order.
    #[prost(message, repeated, tag = "2")]
    pub chunks: Vec<Chunk>,
}

/// `prometheus.Chunk`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Chunk {
    /// Field 1, ms (inclusive).
    #[prost(int64, tag = "1")]
    pub min_time_ms: i64,
    /// Field 2, ms (inclusive).
    #[prost(int64, tag = "2")]
    pub max_time_ms: i64,
    /// Field 3: [`ENCODING_XOR`].
    #[prost(int32, tag = "3")]
    pub r#type: i32,
    /// Field 4: Prometheus XOR chunk bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
}

/// Appends one frame holding `msg` to `dst`.
pub fn frame_into(msg: &[u8], dst: &mut Vec<u8>) {
    prost::encoding::encode_varint(msg.len() as u64, dst);
    let crc = crc32c::crc32c(msg);
    dst.extend_from_slice(&[
        (crc >> 24) as u8,
        (crc >> 16) as u8,
        (crc >> 8) as u8,
        crc as u8,
    ]);
    dst.extend_from_slice(msg);
}

/// Answers every query of `req` from `db`, handing each frame to `emit` as soon as it is full;
/// `emit` returns false when the client went away (streaming then stops). `Ok(true)` when every
/// frame was handed over, `Ok(false)` when `emit` refused one. Matchers are checked before the
/// first frame, so a bad request gets an error and no frame.
pub fn stream(
    db: &dyn Queryable,
    req: &ReadRequest,
    external: &Labels,
    max_bytes_in_frame: usize,
    deadline: Instant,
    emit: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<bool, ReadError> {
    let prepared = prepare(req, external)?;
    let mut samples: Vec<(Timestamp, f64)> = Vec::with_capacity(SAMPLES_PER_CHUNK);
    let mut msg = Vec::new();
    for (index, (q, ms)) in req.queries.iter().zip(prepared).enumerate() {
        let Some(ms) = ms else { continue };
        let querier = db
            .querier(q.start_timestamp_ms, q.end_timestamp_ms)
            .map_err(|e| ReadError::Storage(e.to_string()))?;
        let mut set = querier.select(&ms);
        while set.next() {
            if Instant::now() > deadline {
                return Err(ReadError::Timeout);
            }
            let mut series = ChunkedSeries {
                labels: with_external(set.labels(), external),
                chunks: Vec::new(),
            };
            let labels_size: usize = series.labels.iter().map(Message::encoded_len).sum();
            let mut frame_bytes = labels_size;
            let mut it = set.samples();
            loop {
                let more = it.next();
                if more {
                    samples.push(it.at());
                }
                if samples.len() == SAMPLES_PER_CHUNK || (!more && !samples.is_empty()) {
                    let chunk = xor_chunk(&samples);
                    samples.clear();
                    frame_bytes += chunk.encoded_len();
                    series.chunks.push(chunk);
                }
                if !series.chunks.is_empty() && (frame_bytes >= max_bytes_in_frame || !more) {
                    let resp = ChunkedReadResponse {
                        chunked_series: vec![series],
                        query_index: index as i64,
                    };
                    msg.clear();
                    resp.encode(&mut msg).unwrap_or_else(|e| {
                        unreachable!("BUG: encoding into a Vec cannot fail: {e}")
                    });
                    series = resp
                        .chunked_series
                        .into_iter()
                        .next()
                        .unwrap_or_else(|| unreachable!("BUG: the frame holds one series"));
                    series.chunks.clear();
                    frame_bytes = labels_size;
                    let mut frame = Vec::with_capacity(msg.len() + 16);
                    frame_into(&msg, &mut frame);
                    if !emit(frame) {
                        return Ok(false);
                    }
                }
                if !more {
                    break;
                }
            }
            if let Some(e) = it.err() {
                return Err(ReadError::Storage(e.to_string()));
            }
        }
        if let Some(e) = set.err() {
            return Err(ReadError::Storage(e.to_string()));
        }
    }
    Ok(true)
}

fn xor_chunk(samples: &[(Timestamp, f64)]) -> Chunk {
    let mut data = Vec::new();
    encode_prometheus_xor(samples, &mut data);
    Chunk {
        min_time_ms: samples.first().map_or(0, |s| s.0),
        max_time_ms: samples.last().map_or(0, |s| s.0),
        r#type: ENCODING_XOR,
        data,
    }
}

/// Splits a streamed body into its messages, checking lengths and CRCs; at most `max_frame`
/// bytes per message.
pub fn decode_frames(
    mut body: &[u8],
    max_frame: usize,
) -> Result<Vec<ChunkedReadResponse>, String> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let len = prost::encoding::decode_varint(&mut body).map_err(|e| e.to_string())?;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= max_frame)
            .ok_or_else(|| format!("frame of {len} bytes, at most {max_frame}"))?;
        let (crc, rest) = body
            .split_first_chunk::<4>()
            .ok_or("truncated frame checksum")?;
        let msg = rest.get(..len).ok_or("truncated frame")?;
        let want = u32::from(crc[0]) << 24
            | u32::from(crc[1]) << 16
            | u32::from(crc[2]) << 8
            | u32::from(crc[3]);
        if crc32c::crc32c(msg) != want {
            return Err("frame checksum mismatch".into());
        }
        out.push(ChunkedReadResponse::decode(msg).map_err(|e| e.to_string())?);
        body = rest.get(len..).unwrap_or_default();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::remote::read::{LabelMatcher, Query};
    use argus_storage::decode_prometheus_xor;
    use argus_storage::testing::MemStorage;
    use std::time::Duration;

    fn run(db: &MemStorage, frame: usize, start: i64, end: i64) -> Vec<ChunkedReadResponse> {
        let req = ReadRequest {
            queries: vec![
                Query {
                    start_timestamp_ms: start,
                    end_timestamp_ms: end,
                    matchers: vec![LabelMatcher {
                        r#type: 0,
                        name: "__name__".into(),
                        value: "m".into(),
                    }],
                },
                Query {
                    start_timestamp_ms: start,
                    end_timestamp_ms: end,
                    matchers: vec![LabelMatcher {
                        r#type: 0,
                        name: "job".into(),
                        value: "b".into(),
                    }],
                },
            ],
            accepted_response_types: vec![1],
        };
        let ext = Labels::from_pairs(&[("cluster", "x")]);
        let mut body = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let complete = stream(db, &req, &ext, frame, deadline, &mut |f| {
            body.extend_from_slice(&f);
            true
        })
        .unwrap();
        assert!(complete);
        decode_frames(&body, 1 << 24).unwrap()
    }

    /// Query index, labels as text, and every sample of the series' frames.
    type Decoded = (i64, String, Vec<(i64, f64)>);

    /// Per (query index, labels): every sample of its frames, in order.
    fn samples(frames: &[ChunkedReadResponse]) -> Vec<Decoded> {
        let mut out: Vec<Decoded> = Vec::new();
        for f in frames {
            assert_eq!(f.chunked_series.len(), 1);
            let s = &f.chunked_series[0];
            let key: Vec<String> = s
                .labels
                .iter()
                .map(|l| format!("{}={}", l.name, l.value))
                .collect();
            let key = key.join(",");
            if out.last().map(|o| (o.0, &o.1)) != Some((f.query_index, &key)) {
                out.push((f.query_index, key, Vec::new()));
            }
            let dst = &mut out.last_mut().unwrap().2;
            for c in &s.chunks {
                assert_eq!(c.r#type, ENCODING_XOR);
                let before = dst.len();
                decode_prometheus_xor(dst, &c.data).unwrap();
                assert!(dst.len() - before <= SAMPLES_PER_CHUNK);
                assert_eq!(dst[before].0, c.min_time_ms);
                assert_eq!(dst.last().unwrap().0, c.max_time_ms);
            }
        }
        out
    }

    #[test]
    fn streams_sorted_series_in_framed_xor_chunks() {
        let db = MemStorage::new();
        for t in 0..1000i64 {
            for job in ["b", "a"] {
                let l = Labels::from_pairs(&[("__name__", "m"), ("job", job)]);
                db.insert(l, t * 1000, (t as f64) * 0.5);
            }
        }
        let other = Labels::from_pairs(&[("__name__", "other"), ("job", "b")]);
        db.insert(other.clone(), 5000, 7.0);
        db.insert(other, 20_000, 8.0);
        let want = |from: i64, to: i64| -> Vec<(i64, f64)> {
            (from..=to).map(|t| (t * 1000, t as f64 * 0.5)).collect()
        };
        // Small frames: every chunk closes its frame; large: one frame per series.
        for frame in [1, 1 << 20] {
            let frames = run(&db, frame, 10_000, 500_000);
            let got = samples(&frames);
            let keys: Vec<(i64, &str)> = got.iter().map(|g| (g.0, g.1.as_str())).collect();
            assert_eq!(
                keys,
                vec![
                    (0, "__name__=m,cluster=x,job=a"),
                    (0, "__name__=m,cluster=x,job=b"),
                    (1, "__name__=m,cluster=x,job=b"),
                    (1, "__name__=other,cluster=x,job=b"),
                ]
            );
            assert_eq!(got[0].2, want(10, 500));
            assert_eq!(got[1].2, want(10, 500));
            assert_eq!(got[2].2, want(10, 500));
            assert_eq!(got[3].2, vec![(20_000, 8.0)]);
            let per_series = frames.iter().filter(|f| f.query_index == 0).count();
            if frame == 1 {
                assert_eq!(per_series, 2 * 491usize.div_ceil(SAMPLES_PER_CHUNK));
            } else {
                assert_eq!(per_series, 2);
            }
        }
    }

    #[test]
    fn corrupt_frames_are_errors() {
        let mut body = Vec::new();
        frame_into(b"\x10\x03", &mut body);
        assert_eq!(decode_frames(&body, 100).unwrap()[0].query_index, 3);
        let mut bad = body.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(decode_frames(&bad, 100).is_err());
        assert!(decode_frames(&body[..body.len() - 1], 100).is_err());
        assert!(decode_frames(&body, 1).is_err());
    }

    proptest::proptest! {
        #[test]
        fn frames_round_trip(
            msgs in proptest::collection::vec(
                (any_label(), proptest::collection::vec((any::<i64>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..4), any::<i64>()),
                0..5,
            )
        ) {
            let want: Vec<ChunkedReadResponse> = msgs
                .into_iter()
                .map(|(name, chunks, index)| ChunkedReadResponse {
                    chunked_series: vec![ChunkedSeries {
                        labels: vec![prompb::Label { name, value: "v".into() }],
                        chunks: chunks
                            .into_iter()
                            .map(|(t, data)| Chunk { min_time_ms: t, max_time_ms: t, r#type: 1, data })
                            .collect(),
                    }],
                    query_index: index,
                })
                .collect();
            let mut body = Vec::new();
            for m in &want {
                frame_into(&m.encode_to_vec(), &mut body);
            }
            proptest::prop_assert_eq!(decode_frames(&body, 1 << 20).unwrap(), want);
        }
    }

    fn any_label() -> impl proptest::strategy::Strategy<Value = String> {
        "[a-z_]{1,8}"
    }

    use proptest::prelude::any;
}
