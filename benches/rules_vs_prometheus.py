#!/usr/bin/env python3
"""Rule-group evaluation time, Argus vs Prometheus, on the same data and the same rules.

Serves 10,000 counters `bench_metric{shard="s0..s99", instance="i0..i99"}` from one local
target, starts Argus and Prometheus side by side (loopback only, own temp dirs) with the same
config (scrape and evaluate every --interval seconds) and the same rules file (one group of
1,000 recording rules, the same generator as benches/rules.rs), waits --warmup seconds, then
reads `argus_rule_group_last_duration_seconds` / `prometheus_rule_group_last_duration_seconds`
once per interval for --duration seconds and prints median and mean of each and the ratio.
Standard library only. Every process it starts is stopped by its PID.

    cargo build --release
    python3 benches/rules_vs_prometheus.py --argus target/release/argus
"""

import argparse
import http.server
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SHARDS = 100
INSTANCES = 100
RULES = 1000


def rule_expr(i):
    """Rule i; keep in step with rule_expr() in benches/rules.rs."""
    k = i % SHARDS
    return [
        f'sum by (instance) (rate(bench_metric{{shard="s{k}"}}[5m]))',
        f'bench_metric{{shard="s{k}"}} * 2',
        f'avg(bench_metric{{shard="s{k}"}})',
        f'count(bench_metric{{shard="s{k}"}} > 50)',
    ][i % 4]


def rules_yaml(interval):
    out = [f"groups:\n- name: bench\n  interval: {interval}s\n  rules:\n"]
    for i in range(RULES):
        out.append(f"  - record: bench:rule_{i}\n    expr: '{rule_expr(i)}'\n")
    return "".join(out)


class Target(http.server.BaseHTTPRequestHandler):
    started = time.time()

    def do_GET(self):
        steps = (time.time() - Target.started) / 15.0
        lines = ["# TYPE bench_metric counter\n"]
        for s in range(SHARDS):
            for i in range(INSTANCES):
                per_step = (s + i) % 5 + 1
                lines.append(
                    f'bench_metric{{shard="s{s}",instance="i{i}"}} {steps * per_step:.3f}\n'
                )
        body = "".join(lines).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(port, name):
    """The value of the one series of `name` on the server's /metrics, or None."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + "{") and 'bench"}' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--argus", default="target/release/argus")
    ap.add_argument("--prometheus", default="/usr/bin/prometheus")
    ap.add_argument("--interval", type=int, default=5, help="scrape and evaluation interval (s)")
    ap.add_argument("--warmup", type=int, default=60, help="seconds before sampling")
    ap.add_argument("--duration", type=int, default=120, help="seconds of sampling")
    args = ap.parse_args()
    for b in (args.argus, args.prometheus):
        if not shutil.which(b) and not os.path.exists(b):
            sys.exit(f"missing binary: {b}")

    work = tempfile.mkdtemp(prefix="rules-vs-prom-")
    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    rules = os.path.join(work, "rules.yml")
    with open(rules, "w") as f:
        f.write(rules_yaml(args.interval))
    cfg = os.path.join(work, "config.yml")
    with open(cfg, "w") as f:
        f.write(
            f"global:\n  scrape_interval: {args.interval}s\n  scrape_timeout: {args.interval}s\n"
            f"  evaluation_interval: {args.interval}s\nrule_files: [{rules!r}]\n"
            f"scrape_configs:\n  - job_name: bench\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{target.server_address[1]}']\n"
        )
    aport, pport = free_port(), free_port()
    procs = {
        "argus": subprocess.Popen(
            [args.argus, f"--config.file={cfg}", f"--storage.tsdb.path={work}/argus",
             f"--web.listen-address=127.0.0.1:{aport}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        "prometheus": subprocess.Popen(
            [args.prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={work}/prom",
             f"--web.listen-address=127.0.0.1:{pport}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    }
    names = {
        "argus": (aport, "argus_rule_group_last_duration_seconds"),
        "prometheus": (pport, "prometheus_rule_group_last_duration_seconds"),
    }
    try:
        time.sleep(args.warmup)
        samples = {k: [] for k in names}
        last_ts = {k: None for k in names}
        end = time.time() + args.duration
        while time.time() < end:
            for k, (port, name) in names.items():
                ts_name = name.replace("last_duration_seconds", "last_evaluation_timestamp_seconds")
                ts = metric(port, ts_name)
                v = metric(port, name)
                if v is not None and ts is not None and ts != last_ts[k]:
                    last_ts[k] = ts
                    samples[k].append(v)
            time.sleep(args.interval / 2)
        print(f"one group of {RULES} recording rules over {SHARDS * INSTANCES} series, "
              f"interval {args.interval}s, {args.duration}s sampled after {args.warmup}s")
        print("| server | evaluations | median (ms) | mean (ms) |")
        print("|---|---:|---:|---:|")
        med = {}
        for k, v in samples.items():
            if not v:
                sys.exit(f"{k}: no evaluations seen")
            med[k] = statistics.median(v)
            print(f"| {k} | {len(v)} | {med[k] * 1000:.1f} | {statistics.mean(v) * 1000:.1f} |")
        print(f"argus / prometheus (median): {med['argus'] / med['prometheus']:.2f}")
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        target.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
