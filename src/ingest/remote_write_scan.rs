//! Zero-copy reading of a Remote Write 1.0 body in the shape senders write: each series' labels
//! first and contiguous, then its float samples; no exemplars, histograms or unknown fields.
//! [`Scan::scan`] records byte ranges and samples without allocating per series; a body of any
//! other shape (or malformed) is left to prost ([`super::remote_write::Decoder::decode_into`]),
//! which decides what it means or why it is invalid, so both paths accept the same bodies.
//!
//! The scan does not look inside the label fields: a series' labels are checked (shape and
//! UTF-8, [`for_each_label`]) only when the series cache does not know their bytes, since bytes
//! it knows passed that check before. A label field that fails it sends the body to prost too.
//!
//! ```text
//! WriteRequest  1: TimeSeries (len)   3: MetricMetadata (len, decoded by prost)
//! TimeSeries    1: Label (len), all before or after each other   2: Sample (len)
//! Label         1: name (len, UTF-8)  2: value (len, UTF-8)       (last occurrence wins)
//! Sample        1: value (fixed64)    2: timestamp (varint)       (last occurrence wins)
//! ```
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::prompb::Sample;
use std::ops::Range;

/// Field 1 (`timeseries` / `labels` / `name`), length-delimited.
const KEY_1_LEN: u64 = 1 << 3 | 2;
/// Field 2 (`samples` / `value`), length-delimited.
const KEY_2_LEN: u64 = 2 << 3 | 2;
/// Field 3 (`metadata`), length-delimited.
const KEY_3_LEN: u64 = 3 << 3 | 2;
/// `Sample.value`: field 1, fixed64.
const KEY_VALUE: u64 = 1 << 3 | 1;
/// `Sample.timestamp`: field 2, varint.
const KEY_TIMESTAMP: u64 = 2 << 3;

/// One series of a scanned body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScannedSeries {
    /// Bytes of the body holding the series' label fields (tags included): the same bytes
    /// always decode to the same labels, so they key the series cache. Not checked inside:
    /// see [`for_each_label`].
    pub labels: Range<usize>,
    /// Its samples, in [`Scan::samples`].
    pub samples: Range<usize>,
}

/// The result of scanning one body; reused across bodies.
#[derive(Debug, Default)]
pub struct Scan {
    /// Series in body order.
    pub series: Vec<ScannedSeries>,
    /// Samples of all series.
    pub samples: Vec<Sample>,
    /// Byte ranges of the `MetricMetadata` messages.
    pub metadata: Vec<Range<usize>>,
}

/// A protobuf varint at `*pos`, advancing it; None when truncated or longer than 10 bytes.
fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            // The tenth byte may only carry the top bit of a u64 (prost's rule).
            return (i < 9 || b <= 1).then_some(v);
        }
    }
    None
}

/// The range of a length-delimited field's payload at `*pos` (after its key), within `end`.
fn payload(buf: &[u8], pos: &mut usize, end: usize) -> Option<Range<usize>> {
    let len = usize::try_from(varint(buf, pos)?).ok()?;
    let start = *pos;
    let stop = start.checked_add(len).filter(|&e| e <= end)?;
    *pos = stop;
    Some(start..stop)
}

/// Calls `f(name, value)` for each label of the label fields `key` (as scanned). Returns false
/// if `key` is not well-formed `Label` messages in the scan's shape with UTF-8 names and values
/// (`f` may have been called for the labels before the bad one).
pub fn for_each_label(key: &[u8], mut f: impl FnMut(&str, &str)) -> bool {
    let mut pos = 0;
    while pos < key.len() {
        if varint(key, &mut pos) != Some(KEY_1_LEN) {
            return false;
        }
        let Some(r) = payload(key, &mut pos, key.len()) else {
            return false;
        };
        match label(key, r) {
            Some((name, value)) => f(name, value),
            None => return false,
        }
    }
    true
}

/// Name and value of the `Label` message in `r` (empty when absent).
fn label(buf: &[u8], r: Range<usize>) -> Option<(&str, &str)> {
    let (mut name, mut value) = (0..0, 0..0);
    let mut pos = r.start;
    while pos < r.end {
        match varint(buf, &mut pos)? {
            KEY_1_LEN => name = payload(buf, &mut pos, r.end)?,
            KEY_2_LEN => value = payload(buf, &mut pos, r.end)?,
            _ => return None,
        }
    }
    let s = |r: Range<usize>| std::str::from_utf8(buf.get(r)?).ok();
    Some((s(name)?, s(value)?))
}

/// The `Sample` message in `r`.
fn sample(buf: &[u8], r: Range<usize>) -> Option<Sample> {
    let mut out = Sample {
        value: 0.0,
        timestamp: 0,
    };
    let mut pos = r.start;
    while pos < r.end {
        match varint(buf, &mut pos)? {
            KEY_VALUE => {
                let bytes = buf.get(pos..pos.checked_add(8).filter(|&e| e <= r.end)?)?;
                out.value = f64::from_le_bytes(bytes.try_into().ok()?);
                pos += 8;
            }
            KEY_TIMESTAMP => out.timestamp = varint(buf, &mut pos).filter(|_| pos <= r.end)? as i64,
            _ => return None,
        }
    }
    Some(out)
}

impl Scan {
    /// Scans a decompressed `WriteRequest`. Returns false when the body is not in the shape
    /// described above (or is malformed): the caller then decodes it with prost.
    pub fn scan(&mut self, buf: &[u8]) -> bool {
        self.series.clear();
        self.samples.clear();
        self.metadata.clear();
        self.scan_request(buf).is_some()
    }

    fn scan_request(&mut self, buf: &[u8]) -> Option<()> {
        let mut pos = 0;
        while pos < buf.len() {
            match varint(buf, &mut pos)? {
                KEY_1_LEN => {
                    let r = payload(buf, &mut pos, buf.len())?;
                    self.scan_series(buf, r)?;
                }
                KEY_3_LEN => {
                    let r = payload(buf, &mut pos, buf.len())?;
                    self.metadata.push(r);
                }
                _ => return None,
            }
        }
        Some(())
    }

    fn scan_series(&mut self, buf: &[u8], r: Range<usize>) -> Option<()> {
        let first = self.samples.len();
        let mut labels: Option<Range<usize>> = None;
        let mut pos = r.start;
        while pos < r.end {
            let field = pos;
            match varint(buf, &mut pos)? {
                KEY_1_LEN => {
                    // The label message itself is checked when the series is not cached.
                    payload(buf, &mut pos, r.end)?;
                    labels = match labels {
                        None => Some(field..pos),
                        Some(l) if l.end == field => Some(l.start..pos),
                        // Labels split by other fields: leave it to prost.
                        Some(_) => return None,
                    };
                }
                KEY_2_LEN => {
                    let p = payload(buf, &mut pos, r.end)?;
                    self.samples.push(sample(buf, p)?);
                }
                _ => return None,
            }
        }
        self.series.push(ScannedSeries {
            labels: labels.unwrap_or(r.start..r.start),
            samples: first..self.samples.len(),
        });
        Some(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use crate::ingest::prompb::{Label, MetricMetadata, TimeSeries, WriteRequest};
    use proptest::prelude::*;
    use prost::Message;

    fn labels_of(buf: &[u8], s: &ScannedSeries) -> Vec<(String, String)> {
        let mut out = Vec::new();
        assert!(for_each_label(&buf[s.labels.clone()], |n, v| out
            .push((n.to_string(), v.to_string()))));
        out
    }

    #[test]
    fn unusual_shapes_are_left_to_prost() {
        let check = |bytes: &[u8], want: bool| {
            assert_eq!(Scan::default().scan(bytes), want, "{bytes:02x?}");
        };
        check(&[], true);
        // A series with one label {a="b"} and one sample of value 1.
        let ok = [
            0x0a, 0x13, 0x0a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, b'b', 0x12, 0x09, 0x09, 0, 0, 0,
            0, 0, 0, 0xf0, 0x3f,
        ];
        check(&ok, true);
        check(&ok[..ok.len() - 1], false);
        // An unknown field in a sample, a label split by a sample, exemplars, a bad varint.
        check(&[0x0a, 0x04, 0x12, 0x02, 0x18, 0x01], false);
        check(
            &[
                0x0a, 0x0c, 0x0a, 0x03, 0x0a, 0x01, b'a', 0x12, 0x00, 0x0a, 0x03, 0x0a, 0x01, b'b',
            ],
            false,
        );
        check(&[0x0a, 0x02, 0x1a, 0x00], false);
        check(&[0xff; 11], false);
        // Invalid UTF-8 in a label, an unknown field in a label: the scan accepts the body,
        // the label check does not.
        for body in [
            &[0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0xff][..],
            &[0x0a, 0x04, 0x0a, 0x02, 0x18, 0x01][..],
        ] {
            let mut scan = Scan::default();
            assert!(scan.scan(body), "{body:02x?}");
            assert!(!for_each_label(
                &body[scan.series[0].labels.clone()],
                |_, _| {}
            ));
        }
    }

    fn arb_request() -> impl Strategy<Value = WriteRequest> {
        let label = ("[a-z_]{0,8}", "\\PC{0,12}").prop_map(|(name, value)| Label { name, value });
        let sample = (any::<i64>(), any::<u64>()).prop_map(|(timestamp, bits)| Sample {
            value: f64::from_bits(bits),
            timestamp,
        });
        let ts = (
            proptest::collection::vec(label, 0..6),
            proptest::collection::vec(sample, 0..8),
        )
            .prop_map(|(labels, samples)| TimeSeries {
                labels,
                samples,
                exemplars: vec![],
                histograms: vec![],
            });
        proptest::collection::vec(ts, 0..5).prop_map(|timeseries| WriteRequest {
            timeseries,
            metadata: vec![],
        })
    }

    proptest! {
        /// What prost encodes, the scan reads back to the same labels and sample bits.
        #[test]
        fn scan_reads_what_prost_writes(req in arb_request()) {
            let buf = req.encode_to_vec();
            let mut scan = Scan::default();
            prop_assert!(scan.scan(&buf));
            prop_assert_eq!(scan.series.len(), req.timeseries.len());
            for (s, ts) in scan.series.iter().zip(&req.timeseries) {
                let want: Vec<_> = ts.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
                prop_assert_eq!(labels_of(&buf, s), want);
                let got: Vec<_> = scan.samples[s.samples.clone()].iter().map(|x| (x.timestamp, x.value.to_bits())).collect();
                let want: Vec<_> = ts.samples.iter().map(|x| (x.timestamp, x.value.to_bits())).collect();
                prop_assert_eq!(got, want);
            }
        }

        /// Whatever the scan and the label check accept, prost decodes to the same series and
        /// samples.
        #[test]
        fn scan_agrees_with_prost(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut scan = Scan::default();
            let meta_ok = |scan: &Scan| scan.metadata.iter().all(|r| MetricMetadata::decode(&bytes[r.clone()]).is_ok());
            let labels_ok = |scan: &Scan| scan.series.iter().all(|s| for_each_label(&bytes[s.labels.clone()], |_, _| {}));
            if scan.scan(&bytes) && meta_ok(&scan) && labels_ok(&scan) {
                let req = WriteRequest::decode(&bytes[..]).unwrap();
                prop_assert_eq!(scan.series.len(), req.timeseries.len());
                for (s, ts) in scan.series.iter().zip(&req.timeseries) {
                    let want: Vec<_> = ts.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
                    prop_assert_eq!(labels_of(&bytes, s), want);
                    let n = s.samples.len();
                    prop_assert_eq!(n, ts.samples.len());
                }
            }
        }
    }
}
