//! Web security and request bounds, through HTTP(S) against the real binary: TLS and basic
//! auth from `--web.config.file` (certificates generated here with rcgen), client
//! certificates, certificate rotation, invalid web configs (exit 2), secrets in
//! `/api/v1/status/config`, the remote-write flag, the query timeout, cancellation and
//! concurrency limit, and the read timeout.

use crate::server::harness::{Argus, Resp, enc, free_port, now_ms, parse_response, try_request};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A test CA and the PEM files it signs.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Ca {
            issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// `(cert PEM, key PEM, cert DER)` for `localhost`/127.0.0.1 (server) or a client.
    fn leaf(&self, cn: &str, server: bool) -> (String, String, Vec<u8>) {
        let sans = if server {
            vec!["localhost".to_string(), "127.0.0.1".to_string()]
        } else {
            Vec::new()
        };
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }
}

fn client_config(ca_pem: &str, client: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        }
        None => b.with_no_client_auth(),
    };
    // Full handshakes only: a resumed session reports the certificate it was made with.
    cfg.resumption = rustls::client::Resumption::disabled();
    Arc::new(cfg)
}

/// One HTTPS request over a fresh connection; also returns the server's certificate (DER).
fn https(
    addr: SocketAddr,
    cfg: &Arc<rustls::ClientConfig>,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(Resp, Vec<u8>), String> {
    let mut tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(cfg.clone(), name).map_err(|e| e.to_string())?;
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    tls.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let read = tls.read_to_end(&mut raw);
    if let Err(e) = read
        && (raw.is_empty() || e.kind() != std::io::ErrorKind::UnexpectedEof)
    {
        return Err(e.to_string());
    }
    let peer = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let resp = parse_response(&raw).ok_or_else(|| format!("bad response {raw:?}"))?;
    Ok((resp, peer))
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn write_file(dir: &Path, name: &str, text: &str) {
    // Written whole then renamed, as a rotation tool does.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[test]
fn tls_and_basic_auth_on_both_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("argus test CA");
    let (cert, key, _) = ca.leaf("argus", true);
    write_file(dir.path(), "server.crt", &cert);
    write_file(dir.path(), "server.key", &key);
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    // Relative paths: resolved against the web config's directory, not the working directory.
    write_file(
        dir.path(),
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n\
             basic_auth_users:\n  alice: '{hash}'\n"
        ),
    );
    let push_port = free_port();
    let a = Argus::start(
        &dir.path().join("data"),
        &[
            &format!("--web.config.file={}", dir.path().join("web.yml").display()),
            &format!("--push.listen-address=127.0.0.1:{push_port}"),
        ],
    );
    let cfg = client_config(&ca.pem(), None);
    let push: SocketAddr = format!("127.0.0.1:{push_port}").parse().unwrap();
    for addr in [a.addr, push] {
        let (r, _) = https(addr, &cfg, "/-/healthy", &[]).unwrap();
        assert_eq!(r.status, 401, "{addr}: no credentials: {}", r.text());
        assert_eq!(r.header("www-authenticate"), Some("Basic"));
        assert_eq!(r.header("x-frame-options"), Some("deny"));
        for wrong in [
            basic("alice", "nope"),
            basic("bob", "s3cret"),
            "Bearer x".into(),
        ] {
            let (r, _) = https(addr, &cfg, "/-/healthy", &[("Authorization", &wrong)]).unwrap();
            assert_eq!(r.status, 401, "{addr}: {wrong}");
        }
        let good = basic("alice", "s3cret");
        // Twice: the second check is answered from the cache of verified pairs.
        for _ in 0..2 {
            let (r, _) = https(addr, &cfg, "/metrics", &[("Authorization", &good)]).unwrap();
            assert_eq!(r.status, 200, "{addr}: {}", r.text());
            assert_eq!(r.header("x-frame-options"), Some("deny"));
        }
    }
    let good = basic("alice", "s3cret");
    let (r, _) = https(
        a.addr,
        &cfg,
        "/api/v1/query?query=1%2B1",
        &[("Authorization", &good)],
    )
    .unwrap();
    assert_eq!(r.json()["data"]["result"][1], "2", "{}", r.text());
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = try_request(
        a.addr,
        "GET",
        "/-/healthy",
        &[("Authorization", &good)],
        b"",
    );
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    // A client that does not trust the CA refuses the server.
    let other = client_config(&Ca::new("other CA").pem(), None);
    assert!(https(a.addr, &other, "/-/healthy", &[]).is_err());
}

#[test]
fn client_certificates_are_required_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("argus test CA");
    let (cert, key, _) = ca.leaf("argus", true);
    let (client_cert, client_key, _) = ca.leaf("client", false);
    let rogue = Ca::new("rogue CA");
    let (rogue_cert, rogue_key, _) = rogue.leaf("client", false);
    write_file(dir.path(), "server.crt", &cert);
    write_file(dir.path(), "server.key", &key);
    write_file(dir.path(), "ca.crt", &ca.pem());
    write_file(
        dir.path(),
        "web.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n",
    );
    let a = Argus::start(
        &dir.path().join("data"),
        &[&format!(
            "--web.config.file={}",
            dir.path().join("web.yml").display()
        )],
    );
    let none = client_config(&ca.pem(), None);
    assert!(
        https(a.addr, &none, "/-/healthy", &[]).is_err(),
        "no client cert"
    );
    let bad = client_config(&ca.pem(), Some((&rogue_cert, &rogue_key)));
    assert!(
        https(a.addr, &bad, "/-/healthy", &[]).is_err(),
        "untrusted client cert"
    );
    let good = client_config(&ca.pem(), Some((&client_cert, &client_key)));
    let (r, _) = https(a.addr, &good, "/-/healthy", &[]).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn certificate_rotation_needs_no_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("argus test CA");
    let (cert_a, key_a, der_a) = ca.leaf("first", true);
    let (cert_b, key_b, der_b) = ca.leaf("second", true);
    write_file(dir.path(), "server.crt", &cert_a);
    write_file(dir.path(), "server.key", &key_a);
    write_file(
        dir.path(),
        "web.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    );
    let a = Argus::start(
        &dir.path().join("data"),
        &[&format!(
            "--web.config.file={}",
            dir.path().join("web.yml").display()
        )],
    );
    let cfg = client_config(&ca.pem(), None);
    let (r, peer) = https(a.addr, &cfg, "/-/healthy", &[]).unwrap();
    assert_eq!(r.status, 200);
    assert!(peer == der_a, "first certificate served");
    // A half-done rotation (new key, old cert) keeps the old pair in service.
    write_file(dir.path(), "server.key", &key_b);
    std::thread::sleep(Duration::from_millis(1100));
    let (_, peer) = https(a.addr, &cfg, "/-/healthy", &[]).unwrap();
    assert!(peer == der_a, "mismatched pair must not be loaded");
    write_file(dir.path(), "server.crt", &cert_b);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (r, peer) = https(a.addr, &cfg, "/-/healthy", &[]).unwrap();
        assert_eq!(r.status, 200);
        if peer == der_b {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "new certificate not served in 15 s; log:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs argus with `args` and expects it to exit by itself; returns (code, stderr).
fn run_to_exit(data: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_argus"))
        .arg("--web.listen-address=127.0.0.1:0")
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("argus {args:?} did not exit in 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

#[test]
fn invalid_web_config_stops_the_start_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("argus test CA");
    let (cert, key, _) = ca.leaf("argus", true);
    let (_, other_key, _) = ca.leaf("other", true);
    write_file(dir.path(), "server.crt", &cert);
    write_file(dir.path(), "server.key", &key);
    write_file(dir.path(), "other.key", &other_key);
    write_file(dir.path(), "garbage.crt", "not a certificate\n");
    let check = |name: &str, yaml: &str, want: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, yaml).unwrap();
        let (code, err) = run_to_exit(
            &dir.path().join("data"),
            &[&format!("--web.config.file={}", path.display())],
        );
        assert_eq!(code, Some(2), "{name}: stderr: {err}");
        assert!(
            err.contains(want) && err.contains(&path.display().to_string()),
            "{name}: expected {want:?} and the file name in: {err}"
        );
    };
    check(
        "bad-yaml.yml",
        "tls_server_config: [\n",
        "invalid web config file",
    );
    check(
        "unknown-field.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  bogus: 1\n",
        "unknown field `bogus`",
    );
    check(
        "missing-cert.yml",
        "tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n",
        "cannot read certificate",
    );
    check(
        "garbage-cert.yml",
        "tls_server_config:\n  cert_file: garbage.crt\n  key_file: server.key\n",
        "no PEM certificate found",
    );
    check(
        "wrong-key.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n",
        "cannot use certificate",
    );
    check(
        "bad-hash.yml",
        "basic_auth_users:\n  alice: plaintext-password\n",
        "invalid bcrypt hash for user \"alice\"",
    );
    let missing = dir.path().join("nope.yml");
    let (code, err) = run_to_exit(
        &dir.path().join("data"),
        &[&format!("--web.config.file={}", missing.display())],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot read web config file"), "{err}");
}

#[test]
fn status_config_shows_secrets_as_placeholders() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        "scrape_configs:\n\
         - job_name: a\n  basic_auth: {username: u, password: pw-hunter2}\n  \
           static_configs: [{targets: ['127.0.0.1:1']}]\n\
         - job_name: b\n  authorization: {credentials: cred-xyzzy}\n  \
           static_configs: [{targets: ['127.0.0.1:1']}]\n\
         - job_name: c\n  bearer_token: tok-plugh\n  \
           static_configs: [{targets: ['127.0.0.1:1']}]\n\
         remote_write:\n- url: http://127.0.0.1:1/write\n  \
           basic_auth: {username: u, password: rw-swordfish}\n\
         remote_read:\n- url: http://127.0.0.1:1/read\n  \
           oauth2: {client_id: i, client_secret: oauth-secret, token_url: http://x}\n",
    )
    .unwrap();
    let a = Argus::start(
        &dir.path().join("data"),
        &[&format!("--config.file={}", cfg.display())],
    );
    let r = a.get("/api/v1/status/config");
    assert_eq!(r.status, 200);
    let yaml = r.json()["data"]["yaml"].as_str().unwrap().to_string();
    for secret in [
        "pw-hunter2",
        "cred-xyzzy",
        "tok-plugh",
        "rw-swordfish",
        "oauth-secret",
    ] {
        assert!(!yaml.contains(secret), "{secret} shown:\n{yaml}");
    }
    assert!(yaml.matches("<secret>").count() >= 5, "{yaml}");
    assert!(yaml.contains("username: u"), "{yaml}");
}

#[test]
fn remote_write_receiver_needs_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let body = argus::ingest::remote_write::encode(&argus::ingest::prompb::WriteRequest {
        timeseries: vec![crate::server::series(
            &[("__name__", "rw_test"), ("job", "a")],
            &[(now_ms(), 1.0)],
        )],
        metadata: vec![],
    });
    let headers = [
        ("Content-Type", "application/x-protobuf"),
        ("Content-Encoding", "snappy"),
        ("X-Prometheus-Remote-Write-Version", "0.1.0"),
    ];
    let off = Argus::start(&dir.path().join("off"), &[]);
    let r = off.request("POST", "/api/v1/write", &headers, &body);
    assert_eq!(r.status, 404);
    assert_eq!(
        r.text(),
        "remote write receiver needs to be enabled with --web.enable-remote-write-receiver\n"
    );
    let on = Argus::start(
        &dir.path().join("on"),
        &["--web.enable-remote-write-receiver"],
    );
    let r = on.request("POST", "/api/v1/write", &headers, &body);
    assert_eq!(r.status, 204, "{}", r.text());
}

/// A range query whose subquery runs at 10 ms resolution over hours: far more work than any
/// timeout used here allows (720,000 inner steps; 3,600 windows of 360,000 points, each
/// sorted for its median, which no sliding-window shortcut avoids; `max_over_time` here once
/// finished within 4 s on an idle machine).
fn heavy_query_path(timeout: Option<&str>) -> String {
    let end = now_ms() / 1000;
    let mut p = format!(
        "/api/v1/query_range?query={}&start={}&end={end}&step=1",
        enc("quantile_over_time(0.5, vector(time())[1h:10ms])"),
        end - 3600
    );
    if let Some(t) = timeout {
        p.push_str(&format!("&timeout={t}"));
    }
    p
}

fn assert_timeout(r: &Resp, phase: &str) {
    assert_eq!(r.status, 503, "{}", r.text());
    let v = r.json();
    assert_eq!(v["errorType"], "timeout", "{v}");
    assert_eq!(v["error"], format!("query timed out in {phase}"), "{v}");
}

fn cpu_seconds(a: &Argus) -> f64 {
    let text = a.get("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix("process_cpu_seconds_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no process_cpu_seconds_total in /metrics"))
}

#[test]
fn query_timeout_is_enforced_and_abandoned_queries_stop() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(&dir.path().join("a"), &["--query.timeout=2s"]);
    let addr = a.addr;
    // 8 concurrent heavy queries: each answered with a timeout, well before a generous
    // liveness bound (without enforcement inside evaluation they run for minutes).
    let started = Instant::now();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let r = try_request(addr, "GET", &heavy_query_path(None), &[], b"").unwrap();
                (r, started.elapsed())
            })
        })
        .collect();
    for h in handles {
        let (r, took) = h.join().unwrap();
        assert_timeout(&r, "query execution");
        assert!(took < Duration::from_secs(30), "answered after {took:?}");
    }

    // Clients that go away: their queries are cancelled, and the CPU goes back to idle.
    let b = Argus::start(&dir.path().join("b"), &["--query.timeout=5m"]);
    let mut conns = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(b.addr).unwrap();
        write!(
            s,
            "GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            heavy_query_path(None)
        )
        .unwrap();
        conns.push(s);
    }
    // Generous thresholds: the machine may be shared (4 busy threads on 2 cores give up to
    // 6 CPU s in 3 s; an idle server spends a few hundredths).
    std::thread::sleep(Duration::from_secs(1));
    let busy = cpu_seconds(&b);
    std::thread::sleep(Duration::from_secs(3));
    let busy = cpu_seconds(&b) - busy;
    assert!(
        busy > 0.3,
        "the queries should be running: {busy} CPU s in 3 s"
    );
    drop(conns);
    std::thread::sleep(Duration::from_secs(3));
    let idle = cpu_seconds(&b);
    std::thread::sleep(Duration::from_secs(3));
    let idle = cpu_seconds(&b) - idle;
    assert!(
        idle < 0.3,
        "abandoned queries kept running: {idle} CPU s in 3 s (busy: {busy})"
    );
    assert_eq!(b.get("/-/healthy").status, 200);
}

#[test]
fn max_concurrency_queues_then_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(
        dir.path(),
        &["--query.max-concurrency=1", "--query.timeout=4s"],
    );
    let addr = a.addr;
    let first = std::thread::spawn(move || {
        try_request(addr, "GET", &heavy_query_path(None), &[], b"").unwrap()
    });
    std::thread::sleep(Duration::from_millis(500));
    // The only slot is taken: this query waits in the queue for its 1 s timeout.
    let started = Instant::now();
    let r = try_request(addr, "GET", &heavy_query_path(Some("1s")), &[], b"").unwrap();
    assert_timeout(&r, "query queue");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "did not wait"
    );
    assert_timeout(&first.join().unwrap(), "query execution");
    // The slot is free again.
    let r = a.get("/api/v1/query?query=1");
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Sends `bytes` one per second until the server closes the connection (or answers);
/// returns how many bytes were sent by then.
fn trickle(addr: SocketAddr, head: &[u8], bytes: &[u8]) -> usize {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(head).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 1024];
    for (i, b) in bytes.iter().enumerate() {
        match s.read(&mut buf) {
            Ok(_) => return i,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return i,
            Err(_) => {}
        }
        if s.write_all(&[*b]).is_err() {
            return i;
        }
    }
    bytes.len()
}

#[test]
fn slow_clients_are_dropped_after_the_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(dir.path(), &["--web.read-timeout=2s"]);
    let headers = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let sent = trickle(a.addr, b"", headers);
    assert!(
        sent < 10,
        "slow headers: {sent} bytes accepted over {sent} s"
    );
    let body = "query=1%2B1&time=0&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let head = format!(
        "POST /api/v1/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    let sent = trickle(a.addr, head.as_bytes(), body.as_bytes());
    assert!(sent < 10, "slow body: {sent} bytes accepted over {sent} s");
    // Normal clients are unaffected.
    assert_eq!(a.get("/-/healthy").status, 200);
}

#[test]
fn max_connections_holds_further_clients_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(dir.path(), &["--web.max-connections=2"]);
    // Two idle connections take both slots.
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(a.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // A third client is accepted by the kernel but not served…
    let mut third = TcpStream::connect(a.addr).unwrap();
    third
        .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut buf = Vec::new();
    let early = third.read_to_end(&mut buf);
    assert!(
        early.is_err() && buf.is_empty(),
        "served beyond the limit: {buf:?}"
    );
    // …until a slot frees up.
    drop(idle);
    third
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    third.read_to_end(&mut buf).unwrap();
    let r = parse_response(&buf).expect("a response");
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The HTTP version of `GET /-/healthy` over TLS through reqwest (ALPN offers h2 and
/// http/1.1), or with HTTP/2 prior knowledge over plain TCP; the error text when it fails.
fn version_of(addr: SocketAddr, tls: Option<&str>) -> Result<reqwest::Version, String> {
    // reqwest is built without a provider; another test may have installed one already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
    let (builder, url) = match tls {
        Some(ca_pem) => {
            let mut cfg = (*client_config(ca_pem, None)).clone();
            cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            (
                builder.tls_backend_preconfigured(cfg),
                format!("https://localhost:{}/-/healthy", addr.port()),
            )
        }
        None => (
            builder.http2_prior_knowledge(),
            format!("http://{addr}/-/healthy"),
        ),
    };
    let client = builder.build().map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        if r.status() != 200 {
            return Err(format!("status {}", r.status()));
        }
        Ok(r.version())
    })
}

#[test]
fn http2_is_negotiated_over_tls_unless_disabled() {
    let ca = Ca::new("argus test CA");
    let (cert, key, _) = ca.leaf("argus", true);
    for (http2, want) in [
        (None, reqwest::Version::HTTP_2),
        (Some(true), reqwest::Version::HTTP_2),
        (Some(false), reqwest::Version::HTTP_11),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_file(dir.path(), "server.crt", &cert);
        write_file(dir.path(), "server.key", &key);
        let http = http2.map_or(String::new(), |h| {
            format!("http_server_config:\n  http2: {h}\n")
        });
        write_file(
            dir.path(),
            "web.yml",
            &format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{http}"),
        );
        let a = Argus::start(
            &dir.path().join("data"),
            &[&format!(
                "--web.config.file={}",
                dir.path().join("web.yml").display()
            )],
        );
        let got = version_of(a.addr, Some(&ca.pem()));
        assert_eq!(got, Ok(want), "http2: {http2:?}");
        // HTTP/1.1 clients are served either way.
        let cfg = client_config(&ca.pem(), None);
        let (r, _) = https(a.addr, &cfg, "/-/healthy", &[]).unwrap();
        assert_eq!(r.status, 200, "http2: {http2:?}");
    }
    // Plain text: HTTP/1.1 only, as Prometheus (Go) answers; h2c prior knowledge is refused.
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(dir.path(), &[]);
    let got = version_of(a.addr, None);
    assert!(got.is_err(), "h2c prior knowledge was answered: {got:?}");
    assert_eq!(a.get("/-/healthy").status, 200);
}
