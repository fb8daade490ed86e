#![no_main]
//! OAuth 2.0 token answers (`argus::util::oauth2::parse_token`), from an untrusted token
//! endpoint. Properties: no panic or hang on any input; an accepted answer has a token.
use argus::util::oauth2::parse_token;

const TYPES: [&str; 4] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain; charset=utf-8",
    "",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((first, body)) = data.split_first() else {
        return;
    };
    let ct = TYPES[usize::from(*first) % TYPES.len()];
    if let Ok(t) = parse_token(ct, body) {
        assert!(!t.access_token.is_empty());
    }
});
