//! The common HTTP client options through the real binary: remote write through `proxy_url` with
//! an `oauth2` token (a test-served forward proxy, token endpoint and receiver), and remote
//! read failures answered as `warnings` of a query that still returns local data, with the
//! texts Prometheus 2.42 gives (checked against it: `remote_read: remote server <url>
//! returned HTTP status 503 Service Unavailable: <body>` and `remote_read: error sending
//! request: …`).

#[allow(dead_code, clippy::duplicate_mod)]
#[path = "server/harness.rs"]
mod harness;

use argus::ingest::prompb::{TimeSeries, WriteRequest};
use argus::ingest::remote_write::{Decoder, MAX_DECOMPRESSED_BYTES, encode};
use base64::Engine;
use harness::{Argus, enc, free_port, now_ms, try_request};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request a test server received.
#[derive(Clone, Debug)]
struct Seen {
    /// `METHOD target HTTP/1.1` (the target is absolute when sent to a proxy).
    line: String,
    /// Names lower-cased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

type Answer = dyn Fn(&Seen) -> Vec<u8> + Send + Sync;

/// A test HTTP/1.1 server: one request per connection, recorded, answered by a closure.
struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(answer: impl Fn(&Seen) -> Vec<u8> + Send + Sync + 'static) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (st, answer): (_, Arc<Answer>) = (seen.clone(), Arc::new(answer));
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { return };
                let (st, answer) = (st.clone(), answer.clone());
                std::thread::spawn(move || {
                    let _ = handle(conn, &st, &*answer);
                });
            }
        });
        Server { addr, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn handle(s: TcpStream, st: &Mutex<Vec<Seen>>, answer: &Answer) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0usize);
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    let seen = Seen {
        line: line.trim_end().to_string(),
        headers,
        body,
    };
    st.lock().unwrap().push(seen.clone());
    w.write_all(&answer(&seen))?;
    w.flush()
}

fn reply(status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A forward proxy for `http://` targets: relays an absolute-form request to its host.
fn forward(req: &Seen) -> Vec<u8> {
    let mut parts = req.line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let Some(rest) = target.strip_prefix("http://") else {
        return reply(400, "text/plain", b"not a proxy request");
    };
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Ok(upstream) = host.parse::<SocketAddr>() else {
        return reply(502, "text/plain", b"bad upstream");
    };
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .filter(|(k, _)| !["host", "connection", "content-length"].contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    match try_request(upstream, method, path, &headers, &req.body) {
        Ok(r) => reply(
            r.status,
            r.header("content-type").unwrap_or("text/plain"),
            &r.body,
        ),
        Err(e) => reply(502, "text/plain", e.to_string().as_bytes()),
    }
}

/// Remote-writes `ts` into `a`'s receiver.
fn write(a: &Argus, ts: Vec<TimeSeries>) {
    let body = encode(&WriteRequest {
        timeseries: ts,
        metadata: vec![],
    });
    let r = try_request(
        a.addr,
        "POST",
        "/api/v1/write",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
        &body,
    )
    .unwrap();
    assert_eq!(r.status, 204, "{}", r.text());
}

/// Series names in a remote-write body.
fn names_in(body: &[u8]) -> Vec<String> {
    let mut req = WriteRequest::default();
    Decoder::new()
        .decode_into(body, MAX_DECOMPRESSED_BYTES, &mut req)
        .unwrap();
    req.timeseries
        .iter()
        .flat_map(|t| t.labels.iter())
        .filter(|l| l.name == "__name__")
        .map(|l| l.value.clone())
        .collect()
}

#[test]
fn remote_write_goes_through_proxy_url_with_an_oauth2_token() {
    let token = Server::start(|req| {
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("client-1:s3cr3t")
        );
        let body = String::from_utf8_lossy(&req.body);
        if req.header("authorization") == Some(want.as_str())
            && body.contains("grant_type=client_credentials")
        {
            reply(
                200,
                "application/json",
                br#"{"access_token":"tok-1","token_type":"bearer","expires_in":3600}"#,
            )
        } else {
            reply(401, "application/json", br#"{"error":"invalid_client"}"#)
        }
    });
    let receiver = Server::start(|_| reply(204, "text/plain", b""));
    let proxy = Server::start(forward);
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cr3t\n").unwrap();
    let cfg = dir.path().join("argus.yml");
    std::fs::write(
        &cfg,
        format!(
            "remote_write:\n  - url: http://{}/api/v1/write\n    proxy_url: http://{}\n    \
             oauth2:\n      client_id: client-1\n      client_secret_file: {}\n      \
             token_url: http://{}/oauth/token\n      scopes: [metrics.write, other]\n      \
             endpoint_params: {{audience: argus}}\n    \
             queue_config: {{batch_send_deadline: 100ms, max_samples_per_send: 1}}\n",
            receiver.addr,
            proxy.addr,
            secret.display(),
            token.addr
        ),
    )
    .unwrap();
    let a = Argus::start(
        &dir.path().join("data"),
        &[
            &format!("--config.file={}", cfg.display()),
            "--web.enable-remote-write-receiver",
        ],
    );
    let t = now_ms();
    for (i, name) in ["hc_first", "hc_second"].iter().enumerate() {
        write(
            &a,
            vec![TimeSeries::from_pairs(
                &[("__name__", name), ("job", "hc")],
                &[(t + i as i64, 1.0)],
            )],
        );
        // Bounded wait until the receiver has the series.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !receiver
            .seen()
            .iter()
            .any(|r| names_in(&r.body).contains(&name.to_string()))
        {
            assert!(
                Instant::now() < deadline,
                "{name} never arrived; receiver saw {} requests, proxy {:?}, token {:?}\nlog:\n{}",
                receiver.seen().len(),
                proxy.seen().iter().map(|r| &r.line).collect::<Vec<_>>(),
                token.seen().iter().map(|r| &r.line).collect::<Vec<_>>(),
                a.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Every write went through the proxy, in absolute form, to the receiver.
    let via_proxy = proxy.seen();
    let want_line = format!("POST http://{}/api/v1/write HTTP/1.1", receiver.addr);
    assert!(!via_proxy.is_empty());
    assert!(
        via_proxy.iter().all(|r| r.line == want_line),
        "{:?}",
        via_proxy.iter().map(|r| &r.line).collect::<Vec<_>>()
    );
    assert_eq!(via_proxy.len(), receiver.seen().len());
    // Each carried the token, which was fetched once (cached for its hour) with the scopes
    // and endpoint parameters.
    let got = receiver.seen();
    assert!(got.len() >= 2, "{got:?}");
    for r in &got {
        assert_eq!(r.header("authorization"), Some("Bearer tok-1"), "{r:?}");
    }
    let asked = token.seen();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let form = String::from_utf8_lossy(&asked[0].body).into_owned();
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(form.as_bytes())
        .into_owned()
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            ("audience", "argus"),
            ("grant_type", "client_credentials"),
            ("scope", "metrics.write other"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
    assert_eq!(
        asked[0].line, "POST /oauth/token HTTP/1.1",
        "not via the proxy"
    );
    // The config echo shows the options.
    let echo = a.get("/api/v1/status/config").json();
    let yaml = echo["data"]["yaml"].as_str().unwrap();
    assert!(yaml.contains("client_id: client-1"), "{yaml}");
    assert!(
        yaml.contains(&format!("proxy_url: http://{}", proxy.addr)),
        "{yaml}"
    );
}

#[test]
fn oauth2_client_credentials_fall_back_to_form_parameters() {
    // An endpoint that takes the client credentials only as form parameters, as some do:
    // the first (basic auth) attempt is refused, the second succeeds and is kept.
    let token = Server::start(|req| {
        let body = String::from_utf8_lossy(&req.body);
        if req.header("authorization").is_none()
            && body.contains("client_id=client-2")
            && body.contains("client_secret=pw")
        {
            reply(
                200,
                "application/x-www-form-urlencoded",
                b"access_token=tok-2&token_type=bearer",
            )
        } else {
            reply(400, "application/json", br#"{"error":"invalid_request"}"#)
        }
    });
    let receiver = Server::start(|_| reply(204, "text/plain", b""));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("argus.yml");
    std::fs::write(
        &cfg,
        format!(
            "remote_write:\n  - url: http://{}/api/v1/write\n    oauth2:\n      \
             client_id: client-2\n      client_secret: pw\n      token_url: http://{}/t\n    \
             queue_config: {{batch_send_deadline: 100ms}}\n",
            receiver.addr, token.addr
        ),
    )
    .unwrap();
    let a = Argus::start(
        &dir.path().join("data"),
        &[
            &format!("--config.file={}", cfg.display()),
            "--web.enable-remote-write-receiver",
        ],
    );
    write(
        &a,
        vec![TimeSeries::from_pairs(
            &[("__name__", "hc_params")],
            &[(now_ms(), 1.0)],
        )],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.seen().is_empty() {
        assert!(Instant::now() < deadline, "nothing sent; log:\n{}", a.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        receiver.seen()[0].header("authorization"),
        Some("Bearer tok-2")
    );
    let asked = token.seen();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[0].header("authorization").is_some());
    assert!(asked[1].header("authorization").is_none());
    // The secret never shows in the config echo.
    let echo = a.get("/api/v1/status/config").json();
    let yaml = echo["data"]["yaml"].as_str().unwrap();
    assert!(yaml.contains("client_secret: <secret>"), "{yaml}");
}

#[test]
fn failing_remote_read_endpoints_become_warnings_of_a_local_answer() {
    let down = Server::start(|_| reply(503, "text/plain", b"backend down\n"));
    let closed = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("argus.yml");
    let down_url = format!("http://{}/api/v1/read", down.addr);
    let closed_url = format!("http://127.0.0.1:{closed}/api/v1/read");
    std::fs::write(
        &cfg,
        format!(
            "remote_read:\n  - url: {down_url}\n    read_recent: true\n    \
             authorization: {{credentials: rr-token}}\n  \
             - url: {closed_url}\n    read_recent: true\n    remote_timeout: 5s\n"
        ),
    )
    .unwrap();
    let a = Argus::start(
        &dir.path().join("data"),
        &[
            &format!("--config.file={}", cfg.display()),
            "--web.enable-remote-write-receiver",
        ],
    );
    let t = now_ms();
    write(
        &a,
        vec![TimeSeries::from_pairs(
            &[("__name__", "hc_local"), ("job", "x")],
            &[(t, 42.0)],
        )],
    );
    let want_down = format!(
        "remote_read: remote server {down_url} returned HTTP status 503 Service Unavailable: backend down"
    );
    let check = |path: &str| {
        let r = a.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let v = r.json();
        assert_eq!(v["status"], "success", "{v}");
        let w: Vec<&str> = v["warnings"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: no warnings in {v}"))
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(w[0], want_down);
        // The cause is in reqwest's words, not Go's.
        assert!(
            w[1].starts_with("remote_read: error sending request: ")
                && w[1].contains(&closed.to_string()),
            "{}",
            w[1]
        );
        v
    };
    let v = check(&format!(
        "/api/v1/query?query=hc_local&time={}",
        t as f64 / 1000.0
    ));
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{v}");
    assert_eq!(result[0]["value"][1], "42");
    let v = check(&format!(
        "/api/v1/query_range?query={}&start={}&end={}&step=1",
        enc("hc_local{job=\"x\"}"),
        t / 1000 - 5,
        t / 1000 + 5
    ));
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1, "{v}");
    let v = check(&format!("/api/v1/series?match[]={}", enc("hc_local")));
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");
    // Label names and values come from local storage, each endpoint saying so (Prometheus's
    // remote read querier answers "not implemented").
    for path in ["/api/v1/labels", "/api/v1/label/job/values"] {
        let v = a.get(path).json();
        assert_eq!(v["status"], "success", "{v}");
        assert_eq!(
            v["warnings"],
            serde_json::json!(["not implemented", "not implemented"]),
            "{path}: {v}"
        );
    }
    let v = a.get("/api/v1/label/job/values").json();
    assert_eq!(v["data"], serde_json::json!(["x"]), "{v}");
    // The failing endpoint was asked with its credentials.
    let asked = down.seen();
    assert!(!asked.is_empty());
    assert!(
        asked
            .iter()
            .all(|r| r.header("authorization") == Some("Bearer rr-token"))
    );
    // Without failures there is no warning.
    let r = a.get("/api/v1/query?query=vector(1)");
    assert!(r.json().get("warnings").is_none(), "{}", r.text());
}

#[test]
fn scrapes_go_through_proxy_url_with_their_credentials() {
    let target = Server::start(|_| {
        reply(
            200,
            "text/plain; version=0.0.4",
            b"# TYPE hc_scraped gauge\nhc_scraped 7\n",
        )
    });
    let proxy = Server::start(forward);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("argus.yml");
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n  - job_name: via-proxy\n    scrape_interval: 1s\n    \
             proxy_url: http://{}\n    authorization: {{credentials: scrape-tok}}\n    \
             static_configs: [{{targets: ['{}']}}]\n",
            proxy.addr, target.addr
        ),
    )
    .unwrap();
    let a = Argus::start(
        &dir.path().join("data"),
        &[&format!("--config.file={}", cfg.display())],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = a.get("/api/v1/query?query=hc_scraped").json();
        if v["data"]["result"][0]["value"][1] == "7" {
            break;
        }
        assert!(Instant::now() < deadline, "never scraped: {v}\n{}", a.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let via_proxy = proxy.seen();
    assert!(!via_proxy.is_empty());
    let want = format!("GET http://{}/metrics HTTP/1.1", target.addr);
    assert!(via_proxy.iter().all(|r| r.line == want), "{via_proxy:?}");
    let got = target.seen();
    assert!(!got.is_empty());
    assert!(
        got.iter()
            .all(|r| r.header("authorization") == Some("Bearer scrape-tok")),
        "{got:?}"
    );
}
