//! Remote write and remote read against a running server, in their wire form (snappy-compressed
//! protobuf both ways), for the tests that put data in or read it back through them.

use super::harness::{Argus, Resp};
use argus::ingest::prompb::{TimeSeries, WriteRequest};
use argus::ingest::remote_write::encode;
use argus::remote::read::{LabelMatcher, Query, ReadRequest, ReadResponse};
use prost::Message;

/// The headers of a remote-write 1.0 request.
pub const WRITE_V1: &[(&str, &str)] = &[
    ("Content-Type", "application/x-protobuf"),
    ("Content-Encoding", "snappy"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
];

/// POSTs `req` as a remote-write 1.0 request; the answer is the caller's to check.
pub fn write(a: &Argus, req: &WriteRequest) -> Resp {
    a.request("POST", "/api/v1/write", WRITE_V1, &encode(req))
}

/// POSTs `series` as a remote-write 1.0 request.
pub fn write_series(a: &Argus, series: Vec<TimeSeries>) -> Resp {
    write(
        a,
        &WriteRequest {
            timeseries: series,
            metadata: vec![],
        },
    )
}

/// Reads back every series named `name` in `[from, to]` ms through remote read (samples
/// response type), asserting a 200.
pub fn read(a: &Argus, name: &str, from: i64, to: i64) -> ReadResponse {
    let req = ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: from,
            end_timestamp_ms: to,
            matchers: vec![LabelMatcher {
                r#type: 0,
                name: "__name__".into(),
                value: name.into(),
            }],
        }],
        accepted_response_types: vec![0],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("snappy");
    let resp = a.request(
        "POST",
        "/api/v1/read",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
        ],
        &body,
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&resp.body)
        .expect("snappy response");
    ReadResponse::decode(raw.as_slice()).expect("ReadResponse")
}

/// The series of a read response, across its query results.
pub fn series(r: &ReadResponse) -> Vec<&TimeSeries> {
    r.results.iter().flat_map(|q| &q.timeseries).collect()
}
