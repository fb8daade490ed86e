#![no_main]
//! Push body decoders: content decoding, delimited protobuf and text format 0.0.4 (the expfmt
//! cursor in its Go-rules mode, `Parser::new_strict`, under `push::text`). Properties:
//! no panic or hang on any input; a text body that decodes re-encodes (text exposition) into a
//! body that decodes again; a delimited body that decodes re-encodes to the same families.
use argus::push::body::{decode_body, decode_content_encoding, decode_delimited, encode_delimited};
use argus::push::text::parse_text;

const PROTO: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let encoding = match mode % 3 {
        0 => None,
        1 => Some("gzip"),
        _ => Some("snappy"),
    };
    let Ok(raw) = decode_content_encoding(encoding, body, 1 << 20) else {
        return;
    };
    if mode & 0x80 != 0 {
        if let Ok(fams) = decode_body(Some(PROTO), &raw) {
            let mut buf = Vec::new();
            encode_delimited(&fams, &mut buf);
            let again = decode_delimited(&buf).expect("re-encoded protobuf must decode");
            assert_eq!(again.len(), fams.len());
        }
    } else if let Ok(fams) = decode_body(None, &raw) {
        let text = argus::push::text_exposition(&fams);
        if let Err(e) = parse_text(text.as_bytes()) {
            panic!("exposition of decoded families does not parse: {e}\n{text}");
        }
    }
});
