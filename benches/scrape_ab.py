#!/usr/bin/env python3
"""Scrape CPU of two or more Argus binaries side by side, at the same time, on the same targets.

`harness.py scrape-bench` runs its servers one after another, and between two runs of the same
binary on an idle machine its CPU per 1M samples moves by a third (benches/README.md, session 17):
whatever the machine does during one server's minute (another build, page-cache state, the
host) lands on that server alone. Here every binary scrapes the same nginx targets during the
same windows, so what the machine does lands on all of them, and the ratio between them is what
the code costs. Each binary gets a quarter of the machine at most (400 targets cost ~0.07 cores
each), so they do not starve one another.

It starts `harness.py scrape-bench --serve-only` (nginx, the rotating bodies, scrape.yml), then
every binary with that config, waits until each has scraped every target once plus --warmup,
and measures --windows windows of --window seconds: each binary's CPU (/proc, by thread group
too) and the samples it scraped (`sum_over_time(scrape_samples_scraped[W])` from its own API),
giving CPU s per 1M samples per binary and window, each one's ratio to the first binary, and the
median of the ratios. The order of the binaries in the command line does not matter: they start
a second apart and run the same windows. At 400 targets, at most three binaries: the harness's
nginx has connections for ~4 × 400 (its listening sockets count), and past that it closes idle
keep-alive connections under the scrapers (the script refuses such a run).

Usage (from the repository root):
  python3 benches/scrape_ab.py --bin new=target/profiling/argus --bin old=/tmp/argus-old \\
      --targets 400 --windows 6 --window 30 --workdir /tmp/sab --target-port 19800
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from thread_cpu import sample  # noqa: E402  (the per-thread-group reading, shared)


def reading(pid):
    """(process CPU s, {thread group: CPU s}) of pid."""
    cpu, _, total = sample(pid)
    return total, cpu


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(port, q, t):
    """The first sample value of instant query q at time t, or None."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": f"{t:.3f}"})
    with urllib.request.urlopen(url, timeout=30) as r:
        d = json.load(r)
    res = d["data"]["result"]
    return float(res[0]["value"][1]) if res else None


def wait_ready(port, proc, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} not ready after {timeout} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", action="append", required=True, help="NAME=PATH of an Argus binary (two or more)")
    ap.add_argument("--targets", type=int, default=400)
    ap.add_argument("--interval", default="5s")
    ap.add_argument("--warmup", type=float, default=20, help="seconds after every target was scraped once")
    ap.add_argument("--window", type=float, default=30, help="seconds per window")
    ap.add_argument("--windows", type=int, default=6)
    ap.add_argument("--workdir", default="/tmp/scrape-ab")
    ap.add_argument("--target-port", type=int, default=19800)
    ap.add_argument("--harness", default=os.path.join(HERE, "..", "..", "shared", "bench", "harness.py"))
    ap.add_argument("--out", help="JSON of every window")
    a = ap.parse_args()
    bins = [b.partition("=")[::2] for b in a.bin]
    if len(bins) < 2 or any(not n or not p for n, p in bins):
        raise SystemExit("--bin NAME=PATH, two or more")
    interval_s = float(a.interval.rstrip("s"))
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    total_s = 90 + a.warmup + a.window * a.windows
    variants = min(120, int(total_s / interval_s) + 2)
    serve_log = open(os.path.join(a.workdir, "serve.log"), "w")
    serve = subprocess.Popen(
        [sys.executable, a.harness, "scrape-bench", "--serve-only", "--targets", str(a.targets),
         "--interval", a.interval, "--variants", str(variants), "--workdir", a.workdir,
         "--target-port", str(a.target_port), "--servers", ""],
        stdout=serve_log, stderr=subprocess.STDOUT)
    procs = []
    try:
        cfg = os.path.join(a.workdir, "scrape.yml")
        end = time.time() + 300
        while not os.path.exists(cfg):
            if serve.poll() is not None or time.time() > end:
                raise SystemExit("harness --serve-only did not start; see " + serve_log.name)
            time.sleep(0.5)
        # nginx counts its listening sockets (one per target) among its connections; past its
        # limit it closes idle keep-alive connections, which the scrapers then see as closed
        # by the target: that is another benchmark. So at most (limit / targets) - 1 binaries.
        with open(os.path.join(a.workdir, "nginx", "nginx.conf")) as f:
            m = re.search(r"worker_connections\s+(\d+)", f.read())
        if m and a.targets * (len(bins) + 1) > int(m.group(1)):
            raise SystemExit(f"{len(bins)} binaries x {a.targets} targets need more connections than "
                             f"nginx's {m.group(1)}: use at most {int(m.group(1)) // a.targets - 1}")
        for name, path in bins:
            port = free_port()
            data = os.path.join(a.workdir, name, "data")
            os.makedirs(data)
            log = open(os.path.join(a.workdir, name, "server.log"), "w")
            p = subprocess.Popen([path, f"--config.file={cfg}", f"--storage.tsdb.path={data}",
                                  f"--web.listen-address=127.0.0.1:{port}"],
                                 stdout=log, stderr=subprocess.STDOUT)
            procs.append((name, p, port))
        for name, p, port in procs:
            wait_ready(port, p)
        # Every target scraped once by every binary, then the warm-up.
        end = time.time() + 180
        for name, p, port in procs:
            while (query(port, "count(up == 1)", time.time()) or 0) < a.targets:
                if time.time() > end:
                    raise SystemExit(f"{name}: not every target up after 180 s")
                time.sleep(1)
        time.sleep(a.warmup)
        rows = []
        t_a = time.time()
        cpu_a = {n: reading(p.pid) for n, p, _ in procs}
        for w in range(a.windows):
            time.sleep(max(0.0, t_a + a.window - time.time()))
            t_b = time.time()
            cpu_b = {n: reading(p.pid) for n, p, _ in procs}
            load = open("/proc/loadavg").read().split()[0]
            row = {"window": w + 1, "t_a": t_a, "t_b": t_b, "load": float(load), "servers": {}}
            for n, p, port in procs:
                if p.poll() is not None:
                    raise SystemExit(f"{n} exited during window {w + 1}")
                cpu = cpu_b[n][0] - cpu_a[n][0]
                g = {k: v - cpu_a[n][1].get(k, 0.0) for k, v in cpu_b[n][1].items()}
                row["servers"][n] = {"cpu_s": cpu, "groups": g}
            rows.append(row)
            t_a, cpu_a = t_b, cpu_b
        # Samples per window, from each server's own API once the last window is stored.
        time.sleep(interval_s + 1)
        for row in rows:
            wnd = max(1, round(row["t_b"] - row["t_a"]))
            for n, p, port in procs:
                s = query(port, f"sum(sum_over_time(scrape_samples_scraped[{wnd}s]))", row["t_b"])
                sv = row["servers"][n]
                sv["samples"] = s
                # Failed scrapes cost CPU and store staleness markers: a binary with them is
                # measuring something else.
                sv["scrapes"] = query(port, f"sum(count_over_time(up[{wnd}s]))", row["t_b"])
                ok = query(port, f"sum(sum_over_time(up[{wnd}s]))", row["t_b"])
                sv["failed"] = (sv["scrapes"] or 0) - (ok or 0)
                sv["cpu_per_1m"] = sv["cpu_s"] / (s / 1e6) if s else None
    finally:
        for _, p, _ in procs:
            p.send_signal(signal.SIGTERM)
        for _, p, _ in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        # The harness stops nginx on SIGTERM; nginx runs in its own session, so its pid file
        # is the fallback.
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:
            serve.kill()
        try:
            with open(os.path.join(a.workdir, "nginx", "nginx.pid")) as f:
                os.kill(int(f.read().strip()), signal.SIGQUIT)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
    names = [n for n, _ in bins]
    first = names[0]
    print(f"scrape_ab: {a.targets} targets every {a.interval}, {a.windows} windows of {a.window:g} s, "
          f"all binaries at once")
    print("| window | load | " + " | ".join(f"{n} CPU s per 1M" for n in names) + " | "
          + " | ".join(f"{n} / {first}" for n in names[1:]) + " |")
    print("|---:|---:|" + "---:|" * (2 * len(names) - 1))
    ratios = {n: [] for n in names[1:]}
    for row in rows:
        s = row["servers"]
        vals = [s[n]["cpu_per_1m"] for n in names]
        cells = [f"{v:.3f}" if v else "-" for v in vals]
        rc = []
        for n in names[1:]:
            if s[n]["cpu_per_1m"] and s[first]["cpu_per_1m"]:
                r = s[n]["cpu_per_1m"] / s[first]["cpu_per_1m"]
                ratios[n].append(r)
                rc.append(f"{r:.3f}")
            else:
                rc.append("-")
        print(f"| {row['window']} | {row['load']:.1f} | " + " | ".join(cells) + " | " + " | ".join(rc) + " |")
    per = {n: [row["servers"][n]["cpu_per_1m"] for row in rows if row["servers"][n]["cpu_per_1m"]] for n in names}
    print("| **median** | | " + " | ".join(f"**{statistics.median(per[n]):.3f}**" if per[n] else "-" for n in names)
          + " | " + " | ".join(f"**{statistics.median(ratios[n]):.3f}**" if ratios[n] else "-" for n in names[1:])
          + " |")
    print()
    for n in names:
        scrapes = sum(row["servers"][n].get("scrapes") or 0 for row in rows)
        failed = sum(row["servers"][n].get("failed") or 0 for row in rows)
        print(f"- {n}: {scrapes:,.0f} scrapes in the windows"
              + (f", **{failed:,.0f} failed**: its CPU figures measure something else" if failed else ", none failed"))
    print()
    print("CPU s per 1M by thread group, summed over the windows:")
    for n in names:
        samples = sum(row["servers"][n]["samples"] or 0 for row in rows)
        tot = {}
        for row in rows:
            for k, v in row["servers"][n]["groups"].items():
                tot[k] = tot.get(k, 0.0) + v
        parts = ", ".join(f"{k} {v / (samples / 1e6):.3f}" for k, v in sorted(tot.items(), key=lambda kv: -kv[1])
                          if samples and v > 0.005)
        print(f"- {n}: {parts}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"bins": bins, "targets": a.targets, "interval": a.interval, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
