//! Scrape sharding (issue 13's proof): two Argus agents each keep half of 100 targets by
//! `hashmod` relabeling and remote-write to the same receivers, VictoriaMetrics and Argus:
//! every target's series arrive exactly once, from one agent.

use crate::remote_write::{spawn, wait_ready, wait_until};
use crate::server::harness::{Argus, enc, free_port, now_ms, try_request};
use crate::server::peer::{self, Peer};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

const TARGETS: usize = 100;

/// A target serving two series, one naming the target's index.
fn start_target(i: usize) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { return };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = format!(
                "# TYPE sh_value gauge\nsh_value{{target=\"{i}\"}} {i}\nsh_other{{target=\"{i}\"}} 1\n"
            );
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// Agent `shard` of 2: keeps the targets whose address hashes to it, writes to `urls`.
fn agent(dir: &Path, shard: u32, targets: &[SocketAddr], urls: &[String]) -> Argus {
    let d = dir.join(format!("agent{shard}"));
    std::fs::create_dir_all(&d).unwrap();
    let list = targets
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let queues: String = urls
        .iter()
        .map(|u| format!("  - url: {u}\n    queue_config:\n      batch_send_deadline: 200ms\n"))
        .collect();
    let yaml = format!(
        "global:\n  external_labels:\n    agent: '{shard}'\nremote_write:\n{queues}\
         scrape_configs:\n  - job_name: t\n    scrape_interval: 500ms\n    scrape_timeout: 500ms\n    \
         static_configs:\n      - targets: [{list}]\n    relabel_configs:\n      \
         - source_labels: [__address__]\n        modulus: 2\n        target_label: __tmp_hash\n        \
         action: hashmod\n      - source_labels: [__tmp_hash]\n        regex: '{shard}'\n        \
         action: keep\n"
    );
    let cfg = d.join("agent.yml");
    std::fs::write(&cfg, yaml).unwrap();
    Argus::start(
        &d.join("unused"),
        &[
            "--agent",
            &format!("--config.file={}", cfg.display()),
            &format!("--storage.agent.path={}", d.join("data").display()),
        ],
    )
}

/// The `sh_*` series a receiver holds (`/api/v1/series` of the last hour), as
/// `(name, target) → agents`, one entry per series.
fn series_by_target(addr: SocketAddr) -> BTreeMap<(String, String), Vec<String>> {
    let _ = try_request(addr, "GET", "/internal/force_flush", &[], b"");
    let path = format!(
        "/api/v1/series?match[]={}&start={}",
        enc("{__name__=~\"sh_.+\"}"),
        (now_ms() - 3_600_000) / 1000
    );
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let Ok(r) = try_request(addr, "GET", &path, &[], b"") else {
        return out;
    };
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    for s in v["data"].as_array().into_iter().flatten() {
        let get = |k: &str| s[k].as_str().unwrap_or("").to_string();
        out.entry((get("__name__"), get("target")))
            .or_default()
            .push(get("agent"));
    }
    out
}

/// Every target's two series, each from exactly one agent, and both agents busy.
fn check(what: &str, addr: SocketAddr) {
    let want: BTreeSet<(String, String)> = (0..TARGETS)
        .flat_map(|i| {
            [
                ("sh_value".into(), i.to_string()),
                ("sh_other".into(), i.to_string()),
            ]
        })
        .collect();
    let ok = wait_until(Duration::from_secs(60), || {
        series_by_target(addr)
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
            == want
    });
    let got = series_by_target(addr);
    assert!(
        ok,
        "{what}: {} of {} series: {got:?}",
        got.len(),
        want.len()
    );
    for ((name, target), agents) in &got {
        assert_eq!(
            agents.len(),
            1,
            "{what}: {name} of target {target} from agents {agents:?}"
        );
    }
    // Both series of a target come from the same agent, and each agent has a fair share.
    let agent_of = |name: &str, t: usize| got[&(name.to_string(), t.to_string())][0].clone();
    for t in 0..TARGETS {
        assert_eq!(
            agent_of("sh_value", t),
            agent_of("sh_other", t),
            "{what}: target {t}"
        );
    }
    let zero = (0..TARGETS)
        .filter(|&t| agent_of("sh_value", t) == "0")
        .count();
    assert!(
        (20..=80).contains(&zero),
        "{what}: agent 0 has {zero} of {TARGETS} targets"
    );
}

#[test]
fn two_agents_split_100_targets_by_hashmod() {
    const VM: &str = "/usr/bin/victoria-metrics";
    let dir = tempfile::tempdir().unwrap();
    let receiver = Argus::start(
        &dir.path().join("receiver"),
        &["--web.enable-remote-write-receiver"],
    );
    let mut urls = vec![format!("http://{}/api/v1/write", receiver.addr)];
    let mut vm: Option<(Peer, SocketAddr)> = None;
    if peer::installed(VM, "victoria-metrics", "hashmod sharding") {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let p = spawn(
            VM,
            &[
                format!("-storageDataPath={}", dir.path().join("vm").display()),
                format!("-httpListenAddr=127.0.0.1:{port}"),
                "-retentionPeriod=100y".into(),
            ],
        );
        wait_ready(addr, "/health");
        urls.push(format!("http://{addr}/api/v1/write"));
        vm = Some((p, addr));
    }
    let targets: Vec<SocketAddr> = (0..TARGETS).map(start_target).collect();
    let _a0 = agent(dir.path(), 0, &targets, &urls);
    let _a1 = agent(dir.path(), 1, &targets, &urls);
    check("argus", receiver.addr);
    if let Some((_p, addr)) = &vm {
        check("victoria-metrics", *addr);
    }
}
