#![no_main]
//! `--web.config.file` parser. Properties: no panic or hang on any input; an accepted config
//! is consistent (TLS paths resolved against the base directory, min version ≤ max version,
//! client CA present exactly when certificates are verified, every user has a bcrypt hash).
use argus::web::{ClientAuth, WebConfig};
use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let base = Path::new("/etc/argus");
    let Ok(cfg) = WebConfig::parse(&text, base) else {
        return;
    };
    if let Some(t) = &cfg.tls {
        for p in [Some(&t.cert_file), Some(&t.key_file), t.client_ca_file.as_ref()]
            .into_iter()
            .flatten()
        {
            assert!(p.is_absolute(), "unresolved path {p:?}");
        }
        assert!(t.min_version <= t.max_version);
        let verifies = matches!(
            t.client_auth,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        );
        if verifies {
            assert!(t.client_ca_file.is_some());
        }
        if t.client_auth == ClientAuth::NoClientCert {
            assert!(t.client_ca_file.is_none());
        }
    }
    for (user, hash) in &cfg.users {
        assert!(!user.contains(':'));
        assert!(hash.parse::<bcrypt::HashParts>().is_ok());
    }
});
