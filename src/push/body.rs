//! Push request bodies: `Content-Encoding` (gzip, snappy framed), then either delimited protobuf
//! `MetricFamily` messages or text format 0.0.4, chosen by `Content-Type` as Pushgateway does.
//! Every size is bounded by the caller's limit.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::text::{TextError, normalize_histograms, parse_text};
use crate::expose::proto::MetricFamily;
use crate::util::gzip::{GunzipError, gunzip};
use prost::Message;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::Read;

/// Why a body was refused. `Display` is the text sent back to the client.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Body (or its decompressed form) exceeds the limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Broken gzip or snappy stream.
    #[error("{0}")]
    Encoding(String),
    /// Text format error.
    #[error(transparent)]
    Text(#[from] TextError),
    /// Protobuf framing or message error.
    #[error("{0}")]
    Proto(String),
}

/// The media type Pushgateway recognises for delimited protobuf.
pub fn is_delimited_protobuf(content_type: &str) -> bool {
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/vnd.google.protobuf") {
        return false;
    }
    let (mut proto, mut encoding) = (false, false);
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            return false; // mime.ParseMediaType fails on a parameter without '='.
        };
        let v = v.trim().trim_matches('"');
        match k.trim().to_ascii_lowercase().as_str() {
            "proto" => proto = v == "io.prometheus.client.MetricFamily",
            "encoding" => encoding = v == "delimited",
            _ => {}
        }
    }
    proto && encoding
}

/// Undoes `Content-Encoding` (gzip or snappy framed; anything else passes through), bounding the
/// decoded size by `limit`. Gzip goes through the one bounded decoder ([`gunzip`]), which reads
/// every member of the body as Pushgateway's Go `gzip.Reader` does.
pub fn decode_content_encoding(
    encoding: Option<&str>,
    body: &[u8],
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    let enc = encoding.unwrap_or("").trim().to_ascii_lowercase();
    let mut out = Vec::new();
    match enc.as_str() {
        "gzip" => gunzip(body, limit as u64, &mut out).map_err(|e| match e {
            GunzipError::TooLarge => BodyError::TooLarge { limit },
            GunzipError::Invalid(msg) => BodyError::Encoding(msg),
        })?,
        "snappy" => {
            snap::read::FrameDecoder::new(body)
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| BodyError::Encoding(e.to_string()))?;
            if out.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
        }
        _ => {
            if body.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
            out.extend_from_slice(body);
        }
    }
    Ok(out)
}

/// Decodes a sequence of varint-length-delimited `MetricFamily` messages. A later family with
/// the same name replaces an earlier one (Pushgateway keys them by name), keeping the first
/// one's position. Linear in the body: names are found through a hash map (a linear search
/// per family made a 16 MiB body of 2 M tiny families take hours).
pub fn decode_delimited(mut src: &[u8]) -> Result<Vec<MetricFamily>, BodyError> {
    let mut out: Vec<MetricFamily> = Vec::new();
    let mut by_name: HashMap<Option<String>, usize> = HashMap::new();
    while !src.is_empty() {
        let len = prost::encoding::decode_varint(&mut src)
            .map_err(|e| BodyError::Proto(format!("invalid length prefix: {e}")))?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= src.len())
            .ok_or_else(|| BodyError::Proto("unexpected EOF".into()))?;
        let (msg, rest) = src.split_at(len);
        src = rest;
        let mf = MetricFamily::decode(msg).map_err(|e| BodyError::Proto(e.to_string()))?;
        match by_name.entry(mf.name.clone()) {
            Entry::Occupied(e) => {
                if let Some(slot) = out.get_mut(*e.get()) {
                    *slot = mf;
                }
            }
            Entry::Vacant(e) => {
                e.insert(out.len());
                out.push(mf);
            }
        }
    }
    Ok(out)
}

/// Encodes families as delimited protobuf (for tests, fuzzing and the exposition).
pub fn encode_delimited(families: &[MetricFamily], dst: &mut Vec<u8>) {
    for f in families {
        // Encoding into a Vec cannot fail.
        let _ = f.encode_length_delimited(dst);
    }
}

/// Decodes a push body (after content decoding) into families.
pub fn decode_body(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<MetricFamily>, BodyError> {
    if content_type.is_some_and(is_delimited_protobuf) {
        decode_delimited(body)
    } else {
        let mut fams = parse_text(body)?;
        normalize_histograms(&mut fams);
        Ok(fams)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn content_type_detection() {
        let check = |ct: &str, want: bool| assert_eq!(is_delimited_protobuf(ct), want, "{ct}");
        check(
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
            true,
        );
        check(
            "application/vnd.google.protobuf;encoding=delimited;proto=io.prometheus.client.MetricFamily",
            true,
        );
        check(
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily",
            false,
        );
        check("text/plain; version=0.0.4", false);
    }

    #[test]
    fn gzip_bounded() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&[b'#'; 10_000]).expect("write");
        let gz = enc.finish().expect("finish");
        assert!(matches!(
            decode_content_encoding(Some("gzip"), &gz, 100),
            Err(BodyError::TooLarge { limit: 100 })
        ));
        assert_eq!(
            decode_content_encoding(Some("GZIP"), &gz, 10_000)
                .expect("fits")
                .len(),
            10_000
        );
        assert!(matches!(
            decode_content_encoding(Some("gzip"), b"not gzip", 100),
            Err(BodyError::Encoding(_))
        ));
        // Every member is read (Go's gzip reader does), within the limit of the whole.
        let mut two = gz.clone();
        two.extend_from_slice(&gz);
        assert_eq!(
            decode_content_encoding(Some("gzip"), &two, 20_000)
                .expect("fits")
                .len(),
            20_000
        );
        assert!(matches!(
            decode_content_encoding(Some("gzip"), &two, 19_999),
            Err(BodyError::TooLarge { limit: 19_999 })
        ));
    }

    /// The error text sent back for a broken gzip stream is the one the single-member reader
    /// the push API used before gave (the shared decoder is multi-member).
    #[test]
    fn gzip_errors_keep_their_text() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"x 1\n").expect("write");
        let gz = enc.finish().expect("finish");
        let cut = gz.get(..gz.len() / 2).expect("half");
        let mut bad_crc = gz.clone();
        if let Some(b) = bad_crc.get_mut(gz.len() - 8) {
            *b ^= 1;
        }
        for src in [&b"not gzip"[..], b"\x1f\x8b", cut, &bad_crc] {
            let mut want = Vec::new();
            let want = flate2::read::GzDecoder::new(src)
                .read_to_end(&mut want)
                .expect_err("broken stream");
            match decode_content_encoding(Some("gzip"), src, 100) {
                Err(BodyError::Encoding(got)) => assert_eq!(got, want.to_string(), "{src:?}"),
                got => panic!("{src:?}: want Encoding({want}), got {got:?}"),
            }
        }
    }

    #[test]
    fn delimited_truncated_is_error() {
        let fam = MetricFamily {
            name: Some("x".into()),
            ..Default::default()
        };
        let mut buf = Vec::new();
        encode_delimited(&[fam.clone(), fam], &mut buf);
        assert_eq!(
            decode_delimited(&buf).expect("ok").len(),
            1,
            "same name replaces"
        );
        let cut = buf.get(..buf.len() - 1).expect("non-empty");
        assert!(decode_delimited(cut).is_err());
    }

    #[test]
    fn delimited_later_family_replaces_in_place() {
        let fam = |name: Option<&str>, help: &str| MetricFamily {
            name: name.map(str::to_string),
            help: Some(help.into()),
            ..Default::default()
        };
        let mut buf = Vec::new();
        encode_delimited(
            &[
                fam(Some("a"), "1"),
                fam(Some("b"), "1"),
                fam(None, "1"),
                fam(Some("a"), "2"),
                fam(Some(""), "1"),
                fam(None, "2"),
            ],
            &mut buf,
        );
        let got: Vec<(Option<String>, Option<String>)> = decode_delimited(&buf)
            .expect("ok")
            .into_iter()
            .map(|f| (f.name, f.help))
            .collect();
        let s = |x: &str| Some(x.to_string());
        assert_eq!(
            got,
            [
                (s("a"), s("2")),
                (s("b"), s("1")),
                (None, s("2")),
                (s(""), s("1")),
            ]
        );
    }
}
