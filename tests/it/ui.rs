//! Web UI tests (owner: ui helper). Plain HTTP: every asset's content type, gzip, ETag and 304,
//! and every route under `--web.route-prefix`. Browser: the real argus binary driven in Debian's
//! Chromium through the system `chromedriver` (fantoccini, WebDriver; nothing is downloaded).
//! The browser tests fail under `CI=true` when chromium or chromedriver is missing and are
//! skipped with a printed reason otherwise. Screenshots of every page in light and dark theme
//! go to the test's temp dir and are copied to `$ARGUS_UI_SHOTS` (default `/work/ui-shots`)
//! when that directory can be created.

use crate::server::harness;

use argus::ingest::prompb::{TimeSeries, WriteRequest};
use argus::ingest::remote_write::encode;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use harness::{Argus, Resp, enc, free_port, now_ms};
use serde_json::{Value, json};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// `/api/v1/rules` as Prometheus answers it (`/work/shared/conformance/rules/FORMAT.md` §D.3).
const PROMETHEUS_RULES_EXAMPLE: &str = r#"{"status":"success","data":{"groups":[{"name":"demo","file":"/tmp/amcheck-cO3d/rules.yml","rules":[
 {"name":"demo:value","query":"vector(42)","labels":{"source":"rule"},"health":"ok","evaluationTime":0.000296612,"lastEvaluation":"2026-12-06T02:16:35.8870986Z","type":"recording"},
 {"state":"firing","name":"AlwaysFiring","query":"vector(1.234567e+06)","duration":0,"keepFiringFor":0,
  "labels":{"severity":"page","value_label":"{{ $value }}"},
  "annotations":{"missing":"[{{ $labels.nonexistent }}]","summary":"value={{ $value }} humanize={{ humanize $value }} ext={{ $externalLabels.cluster }} url={{ $externalURL }}"},
  "alerts":[{"labels":{"alertname":"AlwaysFiring","severity":"page","value_label":"1.234567e+06"},
             "annotations":{"missing":"[]","summary":"value=1.234567e+06 humanize=1.235M ext=test url=http://prom.example:9090/prefix"},
             "state":"firing","activeAt":"2026-12-06T02:15:53.886123728Z","value":"1.234567e+06"}],
  "health":"ok","evaluationTime":0.000406498,"lastEvaluation":"2026-12-06T02:16:35.8873991Z","type":"alerting"},
 {"state":"pending","name":"NeverFires","query":"vector(1)","duration":3600,"keepFiringFor":0,"labels":{},"annotations":{},
  "alerts":[{"labels":{"alertname":"NeverFires"},"annotations":{},"state":"pending","activeAt":"2026-12-06T02:15:53.886123728Z","value":"1e+00"}],
  "health":"ok","evaluationTime":3.8651e-05,"lastEvaluation":"2026-12-06T02:16:35.887810739Z","type":"alerting"},
 {"state":"inactive","name":"Flapping","query":"vector(time()) % 20 \u003c 10","duration":0,"keepFiringFor":0,"labels":{},"annotations":{},"alerts":[],
  "health":"ok","evaluationTime":7.0468e-05,"lastEvaluation":"2026-12-06T02:16:35.887849912Z","type":"alerting"}],
 "interval":2,"limit":0,"evaluationTime":0.000841701,"lastEvaluation":"2026-12-06T02:16:35.887080984Z"}]}}"#;

/// One browser at a time: the machine has few cores.
static BROWSER: Mutex<()> = Mutex::new(());

/// Runs a browser test body on its own runtime, one test at a time.
fn in_browser<F: std::future::Future<Output = ()>>(body: impl FnOnce() -> F) {
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(body());
}

fn write_series(a: &Argus, ts: Vec<TimeSeries>) {
    write_series_at(a, "", ts);
}

/// Remote-writes `ts` to the server under route prefix `prefix` (`""` or `/argus`).
fn write_series_at(a: &Argus, prefix: &str, ts: Vec<TimeSeries>) {
    let body = encode(&WriteRequest {
        timeseries: ts,
        metadata: vec![],
    });
    let r = a.request(
        "POST",
        &format!("{prefix}/api/v1/write"),
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
        &body,
    );
    assert_eq!(r.status, 204, "remote write: {}", r.text());
}

/// `ui_test_metric{instance="i<k>",job="ui"}` = k*10 + minute index, one sample a minute for
/// the last 30 minutes.
fn seed(a: &Argus) {
    seed_at(a, "");
}

fn seed_at(a: &Argus, prefix: &str) {
    let base = (now_ms() / 60_000 - 30) * 60_000;
    let ts = (1..=3)
        .map(|k| {
            let inst = format!("i{k}");
            let samples: Vec<(i64, f64)> = (0..=30)
                .map(|i| (base + i * 60_000, (k * 10 + i) as f64))
                .collect();
            TimeSeries::from_pairs(
                &[
                    ("__name__", "ui_test_metric"),
                    ("instance", &inst),
                    ("job", "ui"),
                ],
                &samples,
            )
        })
        .collect();
    write_series_at(a, prefix, ts);
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("gzip body");
    out
}

#[test]
fn assets_have_content_types_gzip_and_etags() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(dir.path(), &["--web.enable-remote-write-receiver"]);
    let r = a.get("/");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/query"));
    let mut checked = 0;
    let mut gz_total = 0;
    let mut paths: Vec<(String, String)> = argus::api::ui::asset_list()
        .into_iter()
        .map(|(n, ct)| (format!("/assets/{n}"), ct.to_string()))
        .collect();
    for p in argus::api::ui::PAGES {
        paths.push((p.to_string(), "text/html; charset=utf-8".into()));
    }
    for (path, ct) in &paths {
        let plain = a.get(path);
        assert_eq!(plain.status, 200, "{path}");
        assert_eq!(plain.header("content-type"), Some(ct.as_str()), "{path}");
        assert_eq!(plain.header("content-encoding"), None, "{path}");
        assert_eq!(plain.header("cache-control"), Some("no-cache"), "{path}");
        let etag = plain
            .header("etag")
            .unwrap_or_else(|| panic!("{path}: no ETag"))
            .to_string();
        let gz = a.request("GET", path, &[("Accept-Encoding", "gzip")], b"");
        assert_eq!(gz.status, 200, "{path}");
        if ct.starts_with("text/") || ct == "image/svg+xml" {
            assert_eq!(gz.header("content-encoding"), Some("gzip"), "{path}");
            assert_eq!(gunzip(&gz.body), plain.body, "{path}: gzip body differs");
            gz_total += gz.body.len();
        }
        let again = a.request("GET", path, &[("If-None-Match", &etag)], b"");
        assert_eq!(again.status, 304, "{path}: revalidation");
        assert!(again.body.is_empty(), "{path}: 304 with a body");
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        let stale = a.request("GET", path, &[("If-None-Match", "\"nope\"")], b"");
        assert_eq!(stale.status, 200, "{path}");
        checked += 1;
    }
    assert_eq!(checked, paths.len());
    // The shell names the script with a content hash, so a new binary's code is fetched at once.
    let shell = a.get("/query").text();
    assert!(
        shell.contains("assets/app.js?v=") && shell.contains("<base href=\"/\">"),
        "{shell}"
    );
    assert!(
        gz_total < 150 * 1024,
        "whole UI is {gz_total} bytes gzipped (limit 150 KiB)"
    );
    println!(
        "UI: {} bytes, {gz_total} bytes gzipped (assets + one shell page each)",
        argus::api::ui::embedded_bytes()
    );
    assert_eq!(a.get("/assets/nope.js").status, 404);
    assert_eq!(a.get("/nope").status, 404);
}

#[test]
fn every_route_is_served_under_the_route_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let a = Argus::start(
        dir.path(),
        &[
            "--web.enable-remote-write-receiver",
            "--web.route-prefix=/argus/",
        ],
    );
    seed_at(&a, "/argus");
    let r = a.get("/");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/argus/"));
    let r = a.get("/argus/");
    assert_eq!(r.status, 302, "{}", r.text());
    assert_eq!(r.header("location"), Some("/argus/query"));
    for p in argus::api::ui::PAGES {
        let r = a.get(&format!("/argus{p}"));
        assert_eq!(r.status, 200, "{p}");
        assert!(r.text().contains("<base href=\"/argus/\">"), "{p}");
        assert_eq!(a.get(p).status, 404, "{p} outside the prefix");
    }
    assert_eq!(a.get("/argus/assets/app.js").status, 200);
    let q = a.get(&format!(
        "/argus/api/v1/query?query={}",
        enc("ui_test_metric")
    ));
    assert_eq!(q.status, 200, "{}", q.text());
    assert_eq!(q.json()["data"]["result"].as_array().unwrap().len(), 3);
    assert_eq!(a.get("/api/v1/query?query=1").status, 404);
    for p in [
        "/argus/-/healthy",
        "/argus/-/ready",
        "/argus/metrics",
        "/argus/api/v1/targets",
        "/argus/api/v1/status/buildinfo",
        "/argus/api/v1/metrics",
    ] {
        assert_eq!(a.get(p).status, 200, "{p}");
    }
    let fed = a.get(&format!(
        "/argus/federate?{}={}",
        enc("match[]"),
        enc("ui_test_metric")
    ));
    assert_eq!(fed.status, 200);
    assert!(fed.text().contains("ui_test_metric"), "{}", fed.text());
    let push = a.request(
        "PUT",
        "/argus/metrics/job/prefixed",
        &[("Content-Type", "text/plain")],
        b"ui_pushed 1\n",
    );
    assert_eq!(push.status, 200, "{}", push.text());
    assert!(a.get("/argus/api/v1/metrics").text().contains("prefixed"));
    // The default prefix is the external URL's path.
    drop(a);
    let dir = tempfile::tempdir().unwrap();
    let b = Argus::start(
        dir.path(),
        &[
            "--web.enable-remote-write-receiver",
            "--web.external-url=http://proxy.example:8080/prom/",
        ],
    );
    assert_eq!(b.get("/prom/query").status, 200);
    assert_eq!(b.get("/prom/-/healthy").status, 200);
    assert_eq!(b.get("/query").status, 404);
}

/// A POST/GET to a chromedriver endpoint that fantoccini has no method for.
#[derive(Debug)]
struct Raw {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for Raw {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or(""),
            self.path
        ))
    }
    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

/// chromedriver plus a session in headless Chromium; killed on drop.
struct Browser {
    driver: Child,
    client: Option<Client>,
    shots: PathBuf,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Returns None (after printing why) when the browser is missing and CI is unset.
async fn browser(shots: &Path) -> Option<Browser> {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        if !crate::server::peer::installed(bin, "chromium and chromium-driver", "browser test") {
            return None;
        }
    }
    let port = free_port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let profile = tempfile::tempdir().unwrap();
    let caps = json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--disable-component-update",
                     format!("--user-data-dir={}", profile.path().display())],
        },
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    let caps = match caps {
        Value::Object(m) => m,
        _ => unreachable!("BUG: capabilities are an object"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        match c {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot start a Chromium session through chromedriver: {e}"),
        }
    };
    Some(Browser {
        driver,
        client: Some(client),
        shots: shots.to_path_buf(),
        _profile: profile,
    })
}

impl Browser {
    fn c(&self) -> &Client {
        self.client.as_ref().expect("client")
    }

    async fn goto(&self, a: &Argus, path: &str) {
        self.c()
            .goto(&format!("http://{}{path}", a.addr))
            .await
            .expect("goto");
    }

    /// Waits (bounded) until `js` (an expression) is truthy; returns its value.
    async fn wait_js(&self, js: &str, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self
                .c()
                .execute(&format!("return {js};"), vec![])
                .await
                .expect("execute");
            let truthy = match &v {
                Value::Null | Value::Bool(false) => false,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let html = self
                    .c()
                    .execute("return document.body.innerText;", vec![])
                    .await
                    .unwrap_or_default();
                panic!("timed out waiting for {what} ({js}); page text:\n{html}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn text(&self) -> String {
        self.c()
            .execute("return document.getElementById('app').innerText;", vec![])
            .await
            .expect("text")
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    async fn loaded(&self) {
        self.wait_js("document.getElementById('app').dataset.loaded", "page load")
            .await;
    }

    /// Console messages at level SEVERE (errors, uncaught exceptions, failed loads) since the
    /// last call.
    async fn console_errors(&self) -> Vec<String> {
        let v = self
            .c()
            .issue_cmd(Raw {
                path: "se/log",
                body: json!({"type": "browser"}),
            })
            .await
            .expect("read the browser log");
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn dark(&self, on: bool) {
        let scheme = if on { "dark" } else { "light" };
        self.c()
            .issue_cmd(Raw {
                path: "goog/cdp/execute",
                body: json!({"cmd": "Emulation.setEmulatedMedia",
                    "params": {"features": [{"name": "prefers-color-scheme", "value": scheme}]}}),
            })
            .await
            .expect("emulate prefers-color-scheme");
    }

    async fn shot(&self, name: &str) {
        let png = self.c().screenshot().await.expect("screenshot");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, &png).expect("write screenshot");
        let copy = std::env::var("ARGUS_UI_SHOTS").unwrap_or_else(|_| "/work/ui-shots".into());
        if std::fs::create_dir_all(&copy).is_ok() {
            let _ = std::fs::write(Path::new(&copy).join(format!("{name}.png")), &png);
        }
    }

    async fn close(mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.close().await;
        }
    }
}

fn scrape_config(dir: &Path, self_port: u16, dead_port: u16) -> PathBuf {
    let path = dir.join("argus.yml");
    std::fs::write(
        &path,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n\
             - job_name: argus\n  static_configs:\n  - targets: ['127.0.0.1:{self_port}']\n\
             - job_name: dead\n  basic_auth:\n    username: ui\n    password: hunter2-secret\n  \
             static_configs:\n  - targets: ['127.0.0.1:{dead_port}']\n    labels: {{team: ui}}\n\
             - job_name: filtered\n  static_configs:\n  - targets: ['127.0.0.2:9']\n  \
             relabel_configs:\n  - {{source_labels: [__address__], regex: '127.0.0.2:.*', action: drop}}\n"
        ),
    )
    .unwrap();
    path
}

fn wait_http(a: &Argus, what: &str, ok: impl Fn(&Resp) -> bool, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = a.get(path);
        if ok(&r) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every page in Chromium against a server with known data: the query editor (typing, Enter,
/// Shift+Enter, completion), table rows, one graph line per series, Prometheus 2 and 3 URLs,
/// targets up and down with the error, service discovery, push groups (with delete), status
/// pages, no secret in the config; no console error anywhere; screenshots in both themes.
#[test]
fn browser_pages() {
    in_browser(browser_pages_body);
}

async fn browser_pages_body() {
    let dir = tempfile::tempdir().unwrap();
    let shots = dir.path().join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    let Some(b) = browser(&shots).await else {
        return;
    };
    let port = free_port();
    let dead = free_port();
    let cfg = scrape_config(dir.path(), port, dead);
    let a = Argus::start(
        &dir.path().join("data"),
        &[
            "--web.enable-remote-write-receiver",
            &format!("--web.listen-address=127.0.0.1:{port}"),
            &format!("--config.file={}", cfg.display()),
        ],
    );
    seed(&a);
    let push = a.request(
        "PUT",
        "/metrics/job/uijob/instance/box1",
        &[("Content-Type", "text/plain")],
        b"# HELP ui_pushed_metric A pushed gauge.\n# TYPE ui_pushed_metric gauge\nui_pushed_metric{kind=\"x\"} 42\n",
    );
    assert_eq!(push.status, 200, "{}", push.text());
    wait_http(
        &a,
        "both targets scraped",
        |r| {
            let v: Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let ts = v["data"]["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            ts.len() == 2 && ts.iter().all(|t| t["health"] != "unknown")
        },
        "/api/v1/targets",
    );

    // Query page: type, Enter, table rows.
    b.goto(&a, "/query").await;
    b.loaded().await;
    let input = b
        .c()
        .find(Locator::Css(".expr-input"))
        .await
        .expect("editor");
    input.send_keys("ui_test_m").await.unwrap();
    let comp = b
        .wait_js(
            "[...document.querySelectorAll('.completions li span:first-child')].map(l => l.innerText).join('|').includes('ui_test_metric') && [...document.querySelectorAll('.completions li span:first-child')].map(l => l.innerText).join('|')",
            "metric name completion",
        )
        .await;
    assert!(comp.as_str().unwrap().contains("ui_test_metric"), "{comp}");
    // Tab accepts the first completion.
    input.send_keys("\u{E004}").await.unwrap();
    assert_eq!(
        b.c()
            .execute("return document.querySelector('.expr-input').value", vec![])
            .await
            .unwrap(),
        json!("ui_test_metric")
    );
    input.send_keys("{j").await.unwrap();
    let comp = b
        .wait_js(
            "[...document.querySelectorAll('.completions li span:first-child')].map(l => l.innerText).join('|').startsWith('job') && [...document.querySelectorAll('.completions li span:first-child')].map(l => l.innerText).join('|')",
            "label name completion",
        )
        .await;
    assert!(comp.as_str().unwrap().starts_with("job"), "{comp}");
    input.send_keys("ob=\"").await.unwrap();
    let comp = b
        .wait_js(
            "[...document.querySelectorAll('.completions li span:first-child')].map(l => l.innerText).join('|').split('|').includes('ui') && [...document.querySelectorAll('.completions li span:first-child')].map(l => l.innerText).join('|')",
            "label value completion",
        )
        .await;
    assert!(
        comp.as_str().unwrap().split('|').any(|v| v == "ui"),
        "{comp}"
    );
    input.send_keys("ui\u{E004}}").await.unwrap();
    // Shift+Enter is a new line, not a run.
    input
        .send_keys("\u{E008}\u{E007}\u{E000}+ 0")
        .await
        .unwrap();
    let v = b
        .c()
        .execute("return document.querySelector('.expr-input').value", vec![])
        .await
        .unwrap();
    assert_eq!(v, json!("ui_test_metric{job=\"ui\"}\n+ 0"));
    assert_eq!(
        b.c()
            .execute(
                "return document.querySelectorAll('.result-table').length",
                vec![]
            )
            .await
            .unwrap(),
        json!(0),
        "Shift+Enter ran the query"
    );
    b.shot("query-completion-light").await;
    input.send_keys("\u{E007}").await.unwrap();
    let rows = b
        .wait_js(
            "document.querySelector('.result-table')?.dataset.rows",
            "table rows",
        )
        .await;
    assert_eq!(rows, json!("3"));
    let table = b.text().await;
    for want in [
        "instance=\"i1\"",
        "instance=\"i3\"",
        "job=\"ui\"",
        "40",
        "50",
        "60",
    ] {
        assert!(
            table.contains(want),
            "{want} missing from the table:\n{table}"
        );
    }
    assert!(table.contains("Result series: 3"), "{table}");
    let url = b.c().current_url().await.unwrap();
    assert!(
        url.path() == "/query" && url.query().unwrap_or("").contains("g0.expr=ui_test_metric"),
        "{url}"
    );
    b.shot("query-table-light").await;

    // Graph tab: one line per series.
    b.c()
        .find(Locator::Css(".tab-graph"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let n = b
        .wait_js(
            "document.querySelector('.graph')?.dataset.seriesCount",
            "graph drawn",
        )
        .await;
    assert_eq!(n, json!("3"));
    assert_eq!(
        b.c()
            .execute(
                "return document.querySelectorAll('.legend div').length",
                vec![]
            )
            .await
            .unwrap(),
        json!(3)
    );
    b.shot("query-graph-light").await;
    // The legend toggles a series; stacked mode draws the remaining ones.
    b.c()
        .find(Locator::Css(".legend div"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        b.c()
            .execute(
                "return document.querySelector('.graph').dataset.seriesCount",
                vec![]
            )
            .await
            .unwrap(),
        json!("2")
    );
    b.c()
        .find(Locator::Css(".mode-stacked"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(
        b.c()
            .current_url()
            .await
            .unwrap()
            .query()
            .unwrap_or("")
            .contains("g0.stacked=1")
    );
    b.shot("query-graph-stacked-light").await;
    // Hovering shows the nearest series and its value.
    let tip = b
        .c()
        .execute(
            "const o = document.querySelectorAll('.graph-wrap canvas')[1];
             const r = o.getBoundingClientRect();
             o.dispatchEvent(new MouseEvent('mousemove', {clientX: r.right - 30, clientY: r.top + r.height / 2, bubbles: true}));
             const t = document.querySelector('.graph-tip');
             return t.style.display === 'block' ? t.innerText : '';",
            vec![],
        )
        .await
        .unwrap();
    let tip = tip.as_str().unwrap_or("");
    assert!(
        tip.contains("instance=\"i") && tip.contains("value: "),
        "tooltip: {tip:?}"
    );
    b.shot("query-graph-tooltip-light").await;
    // Dragging across the right half zooms into it: the range shrinks and an end time is set.
    b.c()
        .execute(
            "const o = document.querySelectorAll('.graph-wrap canvas')[1];
             const r = o.getBoundingClientRect(); const y = r.top + r.height / 2;
             o.dispatchEvent(new MouseEvent('mousedown', {clientX: r.left + r.width * 0.5, clientY: y, button: 0, bubbles: true}));
             o.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + r.width * 0.9, clientY: y, bubbles: true}));
             window.dispatchEvent(new MouseEvent('mouseup', {clientX: r.left + r.width * 0.9, clientY: y, button: 0}));
             return 1;",
            vec![],
        )
        .await
        .unwrap();
    b.wait_js(
        "location.search.includes('g0.end_input=') && document.querySelector('.range').value !== '1h' && document.querySelector('.panel[data-done] .graph')",
        "zoomed graph",
    )
    .await;
    assert_eq!(
        b.console_errors().await,
        Vec::<String>::new(),
        "console errors on the query page"
    );

    // Prometheus 2's /graph links (tab=1 is the table) and 3.x's /query links.
    b.goto(&a, "/graph?g0.expr=up&g0.tab=1").await;
    b.wait_js(
        "document.querySelector('.result-table')?.dataset.rows",
        "legacy table",
    )
    .await;
    let v = b
        .c()
        .execute("return document.querySelector('.expr-input').value", vec![])
        .await
        .unwrap();
    assert_eq!(v, json!("up"));
    assert!(b.text().await.contains("job=\"dead\""));
    let url = b.c().current_url().await.unwrap();
    assert_eq!(url.path(), "/query", "{url}");
    b.goto(
        &a,
        &format!(
            "/graph?g0.expr={}&g0.tab=0&g0.range_input=30m",
            enc("sum(ui_test_metric)")
        ),
    )
    .await;
    let n = b
        .wait_js(
            "document.querySelector('.graph')?.dataset.seriesCount",
            "legacy graph",
        )
        .await;
    assert_eq!(n, json!("1"));
    assert_eq!(
        b.c()
            .execute("return document.querySelector('.range').value", vec![])
            .await
            .unwrap(),
        json!("30m")
    );
    b.goto(
        &a,
        &format!(
            "/query?g0.expr={}&g0.tab=table&g1.expr=up&g1.tab=graph",
            enc("ui_test_metric{instance=\"i2\"}")
        ),
    )
    .await;
    b.wait_js(
        "document.querySelectorAll('.panel[data-done]').length == 2",
        "two panels",
    )
    .await;
    assert_eq!(
        b.c()
            .execute(
                "return document.querySelector('.result-table').dataset.rows",
                vec![]
            )
            .await
            .unwrap(),
        json!("1")
    );
    // Removing the second panel drops its g1.* parameters.
    b.c()
        .find(Locator::Css(".panel:nth-child(2) .remove-panel"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let url = b.c().current_url().await.unwrap();
    assert!(!url.query().unwrap_or("").contains("g1."), "{url}");
    assert_eq!(
        b.c()
            .execute("return document.querySelectorAll('.panel').length", vec![])
            .await
            .unwrap(),
        json!(1)
    );
    b.goto(
        &a,
        &format!("/query?g0.expr={}", enc("rate(ui_test_metric[5m]")),
    )
    .await;
    b.wait_js(
        "document.querySelector('.alert.error')",
        "parse error shown",
    )
    .await;
    assert!(
        b.text().await.contains("Error executing query"),
        "{}",
        b.text().await
    );
    b.shot("query-error-light").await;
    // Chromium logs the 400 answer itself; nothing else may be logged.
    let errs = b.console_errors().await;
    assert!(
        errs.len() == 1 && errs[0].contains("400 (Bad Request)"),
        "{errs:?}"
    );

    // The other pages, each in both themes, without console errors.
    let pages: &[(&str, &[&str])] = &[
        ("targets", &["argus", "dead", "UP", "DOWN", "team=\"ui\""]),
        (
            "service-discovery",
            &[
                "argus",
                "dead",
                "__address__",
                "filtered",
                "DROPPED",
                "127.0.0.2:9",
            ],
        ),
        ("rules", &["Rules"]),
        ("alerts", &["Alerts"]),
        (
            "push",
            &[
                "job=\"uijob\"",
                "instance=\"box1\"",
                "ui_pushed_metric",
                "42",
                "A pushed gauge.",
            ],
        ),
        (
            "status",
            &[
                "Runtime information",
                "Build information",
                "Storage retention",
            ],
        ),
        ("flags", &["--web.listen-address", "--config.file"]),
        ("config", &["job_name: dead", "password: <secret>"]),
        ("tsdb-status", &["Number of series", "ui_test_metric"]),
    ];
    for dark in [false, true] {
        b.dark(dark).await;
        let theme = if dark { "dark" } else { "light" };
        for (page, wants) in pages {
            b.goto(&a, &format!("/{page}")).await;
            b.loaded().await;
            let text = b.text().await;
            for w in *wants {
                assert!(text.contains(w), "/{page}: {w:?} missing:\n{text}");
            }
            assert!(!text.contains("hunter2"), "/{page} shows a secret");
            b.shot(&format!("{page}-{theme}")).await;
            assert_eq!(
                b.console_errors().await,
                Vec::<String>::new(),
                "console errors on /{page}"
            );
        }
        if dark {
            b.goto(
                &a,
                &format!(
                    "/query?g0.expr={}&g0.tab=graph&g0.range_input=30m",
                    enc("ui_test_metric")
                ),
            )
            .await;
            b.wait_js(
                "document.querySelector('.graph')?.dataset.seriesCount",
                "graph",
            )
            .await;
            b.shot("query-graph-dark").await;
            b.goto(
                &a,
                &format!("/query?g0.expr={}&g0.tab=table", enc("ui_test_metric")),
            )
            .await;
            b.wait_js("document.querySelector('.result-table')", "table")
                .await;
            b.shot("query-table-dark").await;
        }
    }

    // Rules and alerts pages over Prometheus's documented /api/v1/rules answer (FORMAT.md
    // §D.3), served to the page by a stand-in fetch: the rules API is not on this branch.
    for dark in [false, true] {
        b.dark(dark).await;
        let theme = if dark { "dark" } else { "light" };
        b.goto(&a, "/query").await;
        b.loaded().await;
        b.c()
            .execute(
                "const [rules] = arguments; const orig = window.fetch;
                 window.fetch = (u, i) => String(u).startsWith('api/v1/rules')
                   ? Promise.resolve(new Response(rules, {headers: {'Content-Type': 'application/json'}}))
                   : orig(u, i);
                 return 1;",
                vec![json!(PROMETHEUS_RULES_EXAMPLE)],
            )
            .await
            .unwrap();
        b.c()
            .find(Locator::Css("#nav a[href=rules]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        b.loaded().await;
        let text = b.text().await;
        for w in [
            "demo",
            "demo:value",
            "vector(42)",
            "AlwaysFiring",
            "NeverFires",
            "Flapping",
            "FIRING",
            "PENDING",
            "OK",
            "for: 1h",
        ] {
            assert!(text.contains(w), "/rules: {w:?} missing:\n{text}");
        }
        b.shot(&format!("rules-example-{theme}")).await;
        b.c()
            .find(Locator::Css("#nav a[href=alerts]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        b.loaded().await;
        let text = b.text().await;
        for w in [
            "AlwaysFiring",
            "(1 active)",
            "severity=\"page\"",
            "1.234567e+06",
            "humanize=1.235M",
            "2026-12-06 02:15:53 UTC",
        ] {
            assert!(text.contains(w), "/alerts: {w:?} missing:\n{text}");
        }
        assert!(!text.contains("demo:value"), "a recording rule on /alerts");
        b.shot(&format!("alerts-example-{theme}")).await;
        assert_eq!(
            b.console_errors().await,
            Vec::<String>::new(),
            "console errors on /rules or /alerts"
        );
    }

    // Targets: the down one carries its error; the state filter hides the up one.
    b.dark(false).await;
    b.goto(&a, "/targets").await;
    b.loaded().await;
    let err = b
        .wait_js(
            "document.querySelector('tr.target[data-health=down] .last-error')?.innerText",
            "down target error",
        )
        .await;
    assert!(
        !err.as_str().unwrap().is_empty(),
        "no error on the down target"
    );
    assert_eq!(
        b.c()
            .execute(
                "return document.querySelectorAll('tr.target[data-health=up]').length",
                vec![]
            )
            .await
            .unwrap(),
        json!(1)
    );
    b.c().execute("const s = document.querySelector('.state-filter'); s.value = 'down'; s.dispatchEvent(new Event('change')); return 1", vec![]).await.unwrap();
    assert_eq!(
        b.c().execute("return [document.querySelectorAll('tr.target[data-health=up]').length, document.querySelectorAll('tr.target[data-health=down]').length]", vec![]).await.unwrap(),
        json!([0, 1])
    );

    // Push groups: delete behind a confirmation.
    b.goto(&a, "/push").await;
    b.loaded().await;
    b.c()
        .find(Locator::Css(".delete-group"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.c()
        .find(Locator::Css(".confirm-delete"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_js(
        "document.getElementById('app').innerText.includes('No pushed groups')",
        "group deleted",
    )
    .await;
    assert_eq!(a.get("/api/v1/metrics").json()["data"], json!([]));

    // Phone width: the menu folds behind a button.
    b.c().set_window_size(390, 844).await.unwrap();
    b.goto(&a, "/status").await;
    b.loaded().await;
    b.c()
        .find(Locator::Css(".menu-toggle"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.c()
        .find(Locator::Css("#nav a[href=flags]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_js(
        "document.body.dataset.page === 'flags' && document.getElementById('app').dataset.loaded",
        "flags page from the phone menu",
    )
    .await;
    b.goto(
        &a,
        &format!(
            "/query?g0.expr={}&g0.tab=graph&g0.range_input=30m",
            enc("ui_test_metric")
        ),
    )
    .await;
    b.wait_js(
        "document.querySelector('.graph')?.dataset.seriesCount",
        "graph on a phone",
    )
    .await;
    let overflow = b
        .c()
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        overflow,
        json!(true),
        "the query page scrolls sideways on a phone"
    );
    b.shot("query-graph-phone-light").await;
    b.dark(true).await;
    b.goto(
        &a,
        &format!("/query?g0.expr={}&g0.tab=table", enc("ui_test_metric")),
    )
    .await;
    b.wait_js(
        "document.querySelector('.result-table')",
        "table on a phone",
    )
    .await;
    let overflow = b
        .c()
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        overflow,
        json!(true),
        "the table scrolls sideways on a phone"
    );
    b.shot("query-table-phone-dark").await;
    b.dark(false).await;
    b.goto(&a, "/targets").await;
    b.loaded().await;
    b.shot("targets-phone-light").await;
    assert_eq!(b.console_errors().await, Vec::<String>::new());
    println!("screenshots: {}", shots.display());
    b.close().await;
}

/// The UI under `--web.route-prefix=/argus`: links, API calls and URL rewriting stay inside it.
#[test]
fn browser_under_route_prefix() {
    in_browser(browser_under_route_prefix_body);
}

async fn browser_under_route_prefix_body() {
    let dir = tempfile::tempdir().unwrap();
    let Some(b) = browser(dir.path()).await else {
        return;
    };
    let a = Argus::start(
        &dir.path().join("data"),
        &[
            "--web.enable-remote-write-receiver",
            "--web.route-prefix=/argus",
        ],
    );
    seed_at(&a, "/argus");
    b.goto(&a, "/argus/graph?g0.expr=ui_test_metric&g0.tab=1")
        .await;
    let rows = b
        .wait_js(
            "document.querySelector('.result-table')?.dataset.rows",
            "table",
        )
        .await;
    assert_eq!(rows, json!("3"));
    assert_eq!(b.c().current_url().await.unwrap().path(), "/argus/query");
    b.c()
        .find(Locator::Css("#nav a[href=targets]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.loaded().await;
    assert_eq!(b.c().current_url().await.unwrap().path(), "/argus/targets");
    for page in [
        "status",
        "tsdb-status",
        "flags",
        "config",
        "push",
        "service-discovery",
    ] {
        b.goto(&a, &format!("/argus/{page}")).await;
        b.loaded().await;
        assert!(
            !b.text().await.contains("Error"),
            "/argus/{page}: {}",
            b.text().await
        );
    }
    assert_eq!(b.console_errors().await, Vec::<String>::new());
    b.close().await;
}

/// Draw time of 100 series × 1,000 points, measured in the page with performance.now() around
/// the parse and draw (a figure to report, not an assertion).
#[test]
fn browser_graph_draw_time_100_series_1000_points() {
    in_browser(browser_graph_draw_time_100_series_1000_points_body);
}

async fn browser_graph_draw_time_100_series_1000_points_body() {
    let dir = tempfile::tempdir().unwrap();
    let Some(b) = browser(dir.path()).await else {
        return;
    };
    let a = Argus::start(
        &dir.path().join("data"),
        &["--web.enable-remote-write-receiver"],
    );
    // 3 s apart: the 1,000 points span 50 minutes, inside the head's appendable window.
    let step = 3_000;
    let base = (now_ms() / step - 1000) * step;
    let ts = (0..100)
        .map(|i| {
            let s: Vec<(i64, f64)> = (0..1000)
                .map(|k| {
                    (
                        base + k * step,
                        ((k as f64) / 50.0 + i as f64).sin() * 10.0 + i as f64,
                    )
                })
                .collect();
            TimeSeries::from_pairs(&[("__name__", "ui_bench"), ("i", &i.to_string())], &s)
        })
        .collect();
    write_series(&a, ts);
    let end = (base + 999 * step) / 1000;
    b.goto(
        &a,
        &format!(
            "/query?g0.expr=ui_bench&g0.tab=graph&g0.range_input=49m57s&g0.step_input=3&g0.end_input={end}"
        ),
    )
    .await;
    let n = b
        .wait_js(
            "document.querySelector('.graph')?.dataset.seriesCount",
            "graph",
        )
        .await;
    assert_eq!(n, json!("100"));
    let samples = b.text().await;
    assert!(samples.contains("Samples: 100000"), "{samples}");
    let build = b
        .c()
        .execute(
            "const d = document.querySelector('.graph').dataset; return `parse ${d.parseMs} ms, first draw ${d.drawMs} ms, parse+legend+first draw ${d.buildMs}`",
            vec![],
        )
        .await
        .unwrap();
    let mut draws = vec![];
    for mode in [
        ".mode-stacked",
        ".mode-lines",
        ".mode-stacked",
        ".mode-lines",
    ] {
        b.c()
            .find(Locator::Css(mode))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let ms = b
            .c()
            .execute(
                "return document.querySelector('.graph').dataset.drawMs",
                vec![],
            )
            .await
            .unwrap();
        draws.push(format!("{mode}={}", ms.as_str().unwrap_or("?")));
    }
    b.shot("graph-100x1000").await;
    println!(
        "graph 100 series x 1000 points: {build} ms; redraws (ms): {}",
        draws.join(" ")
    );
    b.close().await;
}

/// Needs the rules engine (branches rules-core/rules-server): the alerts and rules pages show
/// a firing alert from a rule file. Fails on the ui branch alone, where `rule_files` has no
/// effect; the lead keeps it at merge.
#[test]
fn browser_alerts_page_shows_firing_alert() {
    in_browser(browser_alerts_page_shows_firing_alert_body);
}

async fn browser_alerts_page_shows_firing_alert_body() {
    let dir = tempfile::tempdir().unwrap();
    let Some(b) = browser(dir.path()).await else {
        return;
    };
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: ui\n  interval: 1s\n  rules:\n  - alert: UiAlwaysFiring\n    expr: vector(1)\n    labels: {severity: page}\n    annotations: {summary: always}\n",
    )
    .unwrap();
    let cfg = dir.path().join("argus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: ['{}']\n",
            rules.display()
        ),
    )
    .unwrap();
    let a = Argus::start(
        &dir.path().join("data"),
        &[
            "--web.enable-remote-write-receiver",
            &format!("--config.file={}", cfg.display()),
        ],
    );
    wait_http(
        &a,
        "the alert firing (needs the rules engine)",
        |r| r.text().contains("\"firing\""),
        "/api/v1/alerts",
    );
    b.goto(&a, "/alerts").await;
    b.loaded().await;
    b.wait_js(
        "document.querySelector('.alert-rule[data-state=firing]')",
        "firing rule",
    )
    .await;
    let text = b.text().await;
    assert!(
        text.contains("UiAlwaysFiring") && text.contains("severity=\"page\""),
        "{text}"
    );
    b.c()
        .find(Locator::Css(".alert-rule[data-state=firing] .head"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.shot("alerts-firing-light").await;
    b.goto(&a, "/rules").await;
    b.loaded().await;
    let text = b.text().await;
    assert!(
        text.contains("UiAlwaysFiring") && text.contains("FIRING"),
        "{text}"
    );
    b.shot("rules-firing-light").await;
    assert_eq!(b.console_errors().await, Vec::<String>::new());
    b.close().await;
}
