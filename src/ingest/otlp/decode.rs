//! OTLP/HTTP request bodies → `ExportMetricsServiceRequest`: binary protobuf
//! (`application/x-protobuf`) or OTLP/JSON (`application/json`), optionally gzip-compressed,
//! under a size bound that also applies after decompression.
//!
//! OTLP/JSON per the spec: lowerCamelCase field names (the proto's snake_case names are
//! accepted too, as protojson does), 64-bit integers as strings or numbers, trace and span ids
//! as hex, enum fields as integers or as their names (`"AGGREGATION_TEMPORALITY_CUMULATIVE"`).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;

/// The two OTLP/HTTP encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

impl Encoding {
    /// The media type, for the response's `Content-Type`.
    pub fn media_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }

    /// The encoding named by a `Content-Type` header (parameters ignored). An error names the
    /// supported types (HTTP 415).
    pub fn from_content_type(ct: &str) -> Result<Self, DecodeError> {
        let media = ct.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("application/x-protobuf") {
            Ok(Encoding::Protobuf)
        } else if media.eq_ignore_ascii_case("application/json") {
            Ok(Encoding::Json)
        } else {
            Err(DecodeError::ContentType(ct.to_string()))
        }
    }
}

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Neither protobuf nor JSON (HTTP 415).
    #[error(
        "unsupported content type: {0:?}, supported: [application/json, application/x-protobuf]"
    )]
    ContentType(String),
    /// A `Content-Encoding` other than gzip (HTTP 415).
    #[error("unsupported content encoding: {0:?}, supported: [gzip]")]
    ContentEncoding(String),
    /// Decompressed body over the bound (HTTP 413).
    #[error("decompressed body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The bound, bytes.
        limit: usize,
    },
    /// Broken gzip stream (HTTP 400).
    #[error("cannot decompress gzip body: {0}")]
    Gzip(String),
    /// Not a valid protobuf `ExportMetricsServiceRequest` (HTTP 400).
    #[error("cannot decode protobuf ExportMetricsServiceRequest: {0}")]
    Protobuf(String),
    /// Not a valid OTLP/JSON `ExportMetricsServiceRequest` (HTTP 400).
    #[error("cannot decode OTLP/JSON ExportMetricsServiceRequest: {0}")]
    Json(String),
}

/// Decompresses a gzip body into `buf`, reading at most `limit` bytes.
pub fn gunzip(body: &[u8], limit: usize, buf: &mut Vec<u8>) -> Result<(), DecodeError> {
    use crate::util::gzip::{GunzipError, gunzip};
    gunzip(body, limit as u64, buf).map_err(|e| match e {
        GunzipError::TooLarge => DecodeError::TooLarge { limit },
        GunzipError::Invalid(msg) => DecodeError::Gzip(msg),
    })
}

/// Decodes an uncompressed body.
pub fn decode(body: &[u8], enc: Encoding) -> Result<ExportMetricsServiceRequest, DecodeError> {
    match enc {
        Encoding::Protobuf => ExportMetricsServiceRequest::decode(body)
            .map_err(|e| DecodeError::Protobuf(e.to_string())),
        Encoding::Json => {
            let mut v: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
            normalize_json(&mut v);
            serde_json::from_value(v).map_err(|e| DecodeError::Json(e.to_string()))
        }
    }
}

/// Encodes a request (tests, benchmarks, the fuzz target's round trip).
pub fn encode(req: &ExportMetricsServiceRequest, enc: Encoding) -> Vec<u8> {
    match enc {
        Encoding::Protobuf => req.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(req)
            .unwrap_or_else(|e| unreachable!("BUG: OTLP request not serialisable: {e}")),
    }
}

/// Encodes the response in the request's encoding.
pub fn encode_response(resp: &ExportMetricsServiceResponse, enc: Encoding) -> Vec<u8> {
    match enc {
        Encoding::Protobuf => resp.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(resp)
            .unwrap_or_else(|e| unreachable!("BUG: OTLP response not serialisable: {e}")),
    }
}

/// Enum value of an `AggregationTemporality` name.
fn temporality(name: &str) -> Option<i64> {
    match name {
        "AGGREGATION_TEMPORALITY_UNSPECIFIED" => Some(0),
        "AGGREGATION_TEMPORALITY_DELTA" => Some(1),
        "AGGREGATION_TEMPORALITY_CUMULATIVE" => Some(2),
        _ => None,
    }
}

fn camel_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Rewrites snake_case keys to lowerCamelCase and enum names to their numbers, in place.
/// Iterative (serde_json already bounded the nesting depth while parsing).
fn normalize_json(root: &mut serde_json::Value) {
    use serde_json::Value;
    let mut stack: Vec<&mut Value> = vec![root];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                if map.keys().any(|k| k.contains('_')) {
                    let old = std::mem::take(map);
                    for (k, val) in old {
                        let k = if k.contains('_') { camel_case(&k) } else { k };
                        map.insert(k, val);
                    }
                }
                if let Some(t) = map.get_mut("aggregationTemporality")
                    && let Some(n) = t.as_str().and_then(temporality)
                {
                    *t = Value::from(n);
                }
                stack.extend(map.values_mut());
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;

    #[test]
    fn content_types() {
        let check = |ct: &str, want: Option<Encoding>| {
            assert_eq!(Encoding::from_content_type(ct).ok(), want, "{ct}");
        };
        check("application/x-protobuf", Some(Encoding::Protobuf));
        check("application/json; charset=utf-8", Some(Encoding::Json));
        check("text/plain", None);
        check("", None);
    }

    #[test]
    fn json_with_names_and_snake_case() {
        let body = br#"{"resource_metrics":[{"scopeMetrics":[{"metrics":[{"name":"c","sum":{
            "aggregationTemporality":"AGGREGATION_TEMPORALITY_CUMULATIVE","isMonotonic":true,
            "dataPoints":[{"timeUnixNano":"1700000000000000000","asInt":"42"}]}}]}]}]}"#;
        let req = decode(body, Encoding::Json).unwrap();
        let m = &req.resource_metrics[0].scope_metrics[0].metrics[0];
        let Some(Data::Sum(s)) = &m.data else {
            panic!("not a sum: {m:?}")
        };
        assert_eq!(s.aggregation_temporality, 2);
        assert!(s.is_monotonic);
        assert_eq!(s.data_points[0].time_unix_nano, 1_700_000_000_000_000_000);
        let err = decode(b"{\"resourceMetrics\": 3}", Encoding::Json).unwrap_err();
        assert!(matches!(err, DecodeError::Json(_)), "{err:?}");
    }

    #[test]
    fn gzip_is_bounded() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&[0u8; 10_000]).unwrap();
        let gz = enc.finish().unwrap();
        let mut buf = Vec::new();
        gunzip(&gz, 10_000, &mut buf).unwrap();
        assert_eq!(buf.len(), 10_000);
        assert_eq!(
            gunzip(&gz, 9_999, &mut buf),
            Err(DecodeError::TooLarge { limit: 9_999 })
        );
        assert!(matches!(
            gunzip(b"not gzip", 100, &mut buf),
            Err(DecodeError::Gzip(_))
        ));
    }
}
