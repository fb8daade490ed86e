//! The rustls server config of a [`TlsSettings`] (ring provider): protocol versions, cipher
//! suites, key-exchange groups, client certificate policy, and a certificate resolver that
//! re-reads the certificate and key when their files change, so rotation needs no restart.

use super::config::{ClientAuth, TlsSettings, TlsVersion, WebConfigError};
use parking_lot::Mutex;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The ALPN protocol id of HTTP/2.
pub(crate) const ALPN_H2: &[u8] = b"h2";

/// How often, at most, a handshake looks at the certificate files' modification times.
const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Builds the server config, reading the certificate, key and client CA files once; fails
/// with a message naming the file when one cannot be read or used.
/// With `http2`, ALPN offers `h2` before `http/1.1`.
pub(crate) fn server_config(
    t: &TlsSettings,
    http2: bool,
) -> Result<Arc<ServerConfig>, WebConfigError> {
    let provider = Arc::new(provider(t));
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (t.min_version..=t.max_version).contains(v))
    .map(|(_, p)| p)
    .collect();
    let verifier = client_verifier(t, &provider)?;
    let resolver = ReloadingCert::new(&t.cert_file, &t.key_file, provider.clone())?;
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| WebConfigError(format!("tls_server_config: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(resolver));
    cfg.alpn_protocols = if http2 {
        vec![ALPN_H2.to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(cfg))
}

/// The ring provider restricted to the configured cipher suites and groups. TLS 1.3 suites are
/// always kept: as in Go, `cipher_suites` applies to TLS 1.2 only.
fn provider(t: &TlsSettings) -> CryptoProvider {
    let mut p = rustls::crypto::ring::default_provider();
    if let Some(names) = &t.cipher_suites {
        p.cipher_suites.retain(|s| {
            s.tls13().is_some() || names.iter().any(|n| *n == format!("{:?}", s.suite()))
        });
    }
    if let Some(names) = &t.curve_preferences {
        let go_name = |g: rustls::NamedGroup| match g {
            rustls::NamedGroup::secp256r1 => "CurveP256",
            rustls::NamedGroup::secp384r1 => "CurveP384",
            rustls::NamedGroup::X25519 => "X25519",
            _ => "",
        };
        p.kx_groups
            .retain(|g| names.iter().any(|n| n == go_name(g.name())));
    }
    p
}

fn client_verifier(
    t: &TlsSettings,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, WebConfigError> {
    let roots = || -> Result<Arc<RootCertStore>, WebConfigError> {
        let Some(path) = &t.client_ca_file else {
            return Err(WebConfigError(
                "tls_server_config: client_ca_file is required".into(),
            ));
        };
        let mut store = RootCertStore::empty();
        for c in read_certs(path)? {
            store.add(c).map_err(|e| {
                WebConfigError(format!("cannot use client CA {}: {e}", path.display()))
            })?;
        }
        Ok(Arc::new(store))
    };
    let build = |b: rustls::server::ClientCertVerifierBuilder| {
        b.build()
            .map_err(|e| WebConfigError(format!("tls_server_config: client CA: {e}")))
    };
    Ok(match t.client_auth {
        ClientAuth::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => Arc::new(AnyCert {
            mandatory: t.client_auth == ClientAuth::RequireAnyClientCert,
            algorithms: provider.signature_verification_algorithms,
        }),
        ClientAuth::VerifyClientCertIfGiven => build(
            WebPkiClientVerifier::builder_with_provider(roots()?, provider.clone())
                .allow_unauthenticated(),
        )?,
        ClientAuth::RequireAndVerifyClientCert => build(
            WebPkiClientVerifier::builder_with_provider(roots()?, provider.clone()),
        )?,
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
    let err = |e: &dyn std::fmt::Display| {
        WebConfigError(format!("cannot read certificate {}: {e}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(&e))?;
    if certs.is_empty() {
        return Err(err(&"no PEM certificate found"));
    }
    Ok(certs)
}

fn load_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, WebConfigError> {
    let chain = read_certs(cert)?;
    let der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| WebConfigError(format!("cannot read private key {}: {e}", key.display())))?;
    let ck = CertifiedKey::from_der(chain, der, provider).map_err(|e| {
        WebConfigError(format!(
            "cannot use certificate {} with key {}: {e}",
            cert.display(),
            key.display()
        ))
    })?;
    Ok(Arc::new(ck))
}

/// Modification times and sizes of the certificate and key files.
type Stamp = [Option<(SystemTime, u64)>; 2];

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let one = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    };
    [one(cert), one(key)]
}

/// Serves the current certificate; on a handshake at most once per
/// [`RELOAD_CHECK_INTERVAL`], re-reads both files when either changed. A pair that cannot be
/// loaded (a rotation half done) keeps the old certificate and is retried on the next check.
struct ReloadingCert {
    // Immutable after construction.
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    /// Guards the current key, the stamp it was loaded with and the last check.
    state: Mutex<CertState>,
}

struct CertState {
    key: Arc<CertifiedKey>,
    stamp: Stamp,
    checked: Instant,
}

impl ReloadingCert {
    fn new(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> Result<Self, WebConfigError> {
        let stamp = stamp(cert, key);
        let ck = load_key(cert, key, &provider)?;
        Ok(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            state: Mutex::new(CertState {
                key: ck,
                stamp,
                checked: Instant::now(),
            }),
        })
    }
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut st = self.state.lock();
        if st.checked.elapsed() >= RELOAD_CHECK_INTERVAL {
            st.checked = Instant::now();
            let now = stamp(&self.cert, &self.key);
            if now != st.stamp {
                match load_key(&self.cert, &self.key, &self.provider) {
                    Ok(k) => {
                        tracing::info!(cert = %self.cert.display(), "reloaded TLS certificate");
                        st.key = k;
                        st.stamp = now;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reload TLS certificate; keeping the old one");
                    }
                }
            }
        }
        Some(st.key.clone())
    }
}

/// `RequestClientCert` / `RequireAnyClientCert`: any certificate is accepted without chain
/// verification (as Go's), but the handshake signature is still checked by the provider.
#[derive(Debug)]
struct AnyCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
