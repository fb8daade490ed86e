#!/usr/bin/env python3
"""WAL replay after a crash: Argus against Prometheus on the same data, in one run.

For each server, in turn:
  1. start it on 127.0.0.1 with an empty data dir (out-of-order window 1d for both, as
     `harness.py measure` configures Prometheus);
  2. remote-write the data set with `../shared/bench/harness.py ingest` (default 20,000 series x
     480 samples = 2 h at 15 s, the medium set; both block ranges are 2 h and a head is cut only
     once it spans 3 h, so everything is still in the WAL);
  3. wait `--settle` seconds, then SIGKILL it by PID;
  4. record the data dir size (and its `wal/` part);
  5. start it again on the same data dir and poll `/-/ready` every 20 ms: time-to-ready is from
     the spawn to the first 200; peak RSS is `VmHWM` from /proc/PID/status read at that moment
     (the replay's high-water mark). With `--restarts N` the killed data dir is kept aside and
     each of N restarts starts from a fresh copy of it (the earlier ones are SIGKILLed once
     ready); the table gives the median and the JSON line every run;
  6. check the replay lost nothing, at the data set's end time: `count({__name__=~".+"})`
     (series) and the sum over metric names of `sum(count_over_time({__name__="NAME"}[1d]))`
     (samples) against the data set (Argus's default config also scrapes Argus itself, which
     adds a few hundred samples and series);
  7. stop it (SIGTERM, by PID).

Usage:
  python3 benches/replay_vs_prometheus.py --argus target/release/argus \
      [--argus-old OLD_BINARY --servers prometheus,argus,argus-old] \
      [--series 20000 --samples 480] [--workdir /tmp/replay] [--restarts 5] [--reuse]
  argus-old (listed after argus) restarts from argus's killed data dir: the same bytes.
  --nice -10: the measured restarts run at a higher priority than other work on the machine.
  --reuse: take the killed data dir (and data set) of an earlier run in the same --workdir
  instead of ingesting again (for quick A/B runs of one server's binaries).
Only the Python standard library; the harness needs its own requirements (see its README).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS_PATH = [""]
# `../shared/bench/harness.py` from the repository root, as in benches/README.md (--harness).
HARNESS = os.path.join(HERE, "..", "..", "shared", "bench", "harness.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS"):
                out[k] = int(v.split()[0]) / 1024.0  # MiB
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_ready(proc, base, deadline_s):
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before ready")
        try:
            if get(base + "/-/ready", timeout=0.5)[0] == 200:
                return
        except Exception:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"not ready after {deadline_s}s")


def query(base, q, at):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": at})
    _, body = get(url, timeout=120)
    res = json.loads(body)["data"]["result"]
    return float(res[0]["value"][1]) if res else 0.0


def command(name, args, data, port):
    addr = f"127.0.0.1:{port}"
    if name in ("argus", "argus-old"):
        binary = args.argus if name == "argus" else args.argus_old
        return [binary, f"--web.listen-address={addr}", f"--storage.tsdb.path={data}",
                "--web.enable-remote-write-receiver",
                "--storage.tsdb.out-of-order-time-window=1d"] + args.argus_flag
    cfg = os.path.join(os.path.dirname(data), "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 15s\nstorage:\n  tsdb:\n"
                "    out_of_order_time_window: 1d\n")
    return [args.prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={data}",
            f"--web.listen-address={addr}", "--web.enable-remote-write-receiver",
            "--storage.tsdb.retention.time=10y", "--log.level=warn"]


def restart(name, args, data, log, check, ds):
    """Starts `name` on `data`, waits for ready, measures; runs the loss check when `check`."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = command(name, args, data, port)
    if args.nice:
        cmd = ["nice", "-n", str(args.nice)] + cmd
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    series = samples = None
    try:
        wait_ready(proc, base, 600)
        ready_s = time.monotonic() - t0
        st = status(proc.pid)
        cpu = cpu_seconds(proc.pid)
        if check:
            with open(ds) as f:
                at = json.load(f)["end_ms"] / 1000
            series = query(base, 'count({__name__=~".+"})', at)
            # Per metric name: count_over_time drops the name, and Prometheus 2.x refuses a
            # vector with equal label sets.
            _, body = get(base + "/api/v1/label/__name__/values", timeout=60)
            samples = sum(query(base, f'sum(count_over_time({{__name__="{n}"}}[1d]))', at)
                          for n in json.loads(body)["data"])
    finally:
        os.kill(proc.pid, signal.SIGTERM if check else signal.SIGKILL)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return {"ready_s": ready_s, "replay_hwm": st["VmHWM"], "rss_ready": st["VmRSS"],
            "cpu_s": cpu, "series": series, "samples": samples}


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def run_one(name, args, ds):
    work = os.path.join(args.workdir, name)
    data = os.path.join(work, "data")
    killed = os.path.join(work, "data.killed")
    info = os.path.join(work, "killed.json")
    shared = os.path.join(args.workdir, "argus", "killed.json")
    if name == "argus-old" and "argus" in args.servers.split(",") and os.path.exists(shared):
        # The same killed data dir as `argus` (written by this run or, with --reuse, an
        # earlier one): an A/B of two binaries on the same bytes.
        os.makedirs(work, exist_ok=True)
        killed = os.path.join(args.workdir, "argus", "data.killed")
        with open(shared) as f:
            first = json.load(f)
        log = open(os.path.join(work, "server.log"), "ab")
    elif args.reuse and os.path.exists(info):
        with open(info) as f:
            first = json.load(f)
        log = open(os.path.join(work, "server.log"), "ab")
    else:
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        log = open(os.path.join(work, "server.log"), "ab")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        cmd = command(name, args, data, port)
        proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        try:
            wait_ready(proc, base, 60)
            subprocess.run([sys.executable, HARNESS_PATH[0], "ingest", "--target", base,
                            "--dataset", ds], check=True, stdout=subprocess.DEVNULL)
            time.sleep(args.settle)
            ingest_hwm = status(proc.pid)["VmHWM"]
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        snap = sum(os.lstat(os.path.join(data, f)).st_size for f in os.listdir(data)
                   if f.startswith("head_snapshot."))
        first = {"disk": du(data), "wal": du(os.path.join(data, "wal")), "snapshot": snap,
                 "ingest_hwm": ingest_hwm}
        shutil.copytree(data, killed, symlinks=True)
        with open(info, "w") as f:
            json.dump(first, f)
    runs = []
    for i in range(args.restarts):
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(killed, data, symlinks=True)
        # The copy's pages are in the page cache, as a crashed server's files would be.
        runs.append(restart(name, args, data, log, i == args.restarts - 1, ds))
    out = dict(first)
    for key in ("ready_s", "replay_hwm", "rss_ready", "cpu_s"):
        out[key] = median([r[key] for r in runs])
        out[key + "_all"] = [round(r[key], 3) for r in runs]
    out["series"], out["samples"] = runs[-1]["series"], runs[-1]["samples"]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--argus", required=True)
    p.add_argument("--argus-old", help="a second Argus binary (server name argus-old)")
    p.add_argument("--prometheus", default="/usr/bin/prometheus")
    p.add_argument("--servers", default="prometheus,argus",
                   help="comma list of prometheus, argus, argus-old")
    p.add_argument("--series", type=int, default=20000)
    p.add_argument("--samples", type=int, default=480)
    p.add_argument("--settle", type=float, default=3.0)
    p.add_argument("--workdir", default="/tmp/argus-replay")
    p.add_argument("--harness", default=HARNESS)
    p.add_argument("--restarts", type=int, default=1,
                   help="restarts from copies of the killed data dir (median reported)")
    p.add_argument("--nice", type=int, default=0,
                   help="run the measured restarts under `nice -n N` (negative, as root: on a "
                        "machine loaded by others, time to ready then approaches an idle "
                        "machine's; every server gets the same)")
    p.add_argument("--argus-flag", action="append", default=[],
                   help="an extra flag for the Argus servers (repeatable), e.g. "
                        "--argus-flag=--storage.tsdb.head-snapshot-interval=1m with --settle 70: "
                        "the background thread (every 60 s) writes a head snapshot before the kill")
    p.add_argument("--end", help="the data set's last timestamp, unix seconds (harness gen "
                                 "--end; default now): with --settle past a minute, pick it so "
                                 "the 2 h of data span less than 3 h from the start of their "
                                 "2 h block range, or the background thread cuts a block")
    p.add_argument("--reuse", action="store_true",
                   help="reuse the killed data dir and data set of an earlier run in --workdir")
    args = p.parse_args()
    HARNESS_PATH[0] = args.harness
    os.makedirs(args.workdir, exist_ok=True)
    ds = os.path.join(args.workdir, "ds.json")
    if not (args.reuse and os.path.exists(ds)):
        subprocess.run([sys.executable, HARNESS_PATH[0], "gen", "--series", str(args.series),
                        "--samples", str(args.samples), "--out", ds]
                       + (["--end", args.end] if args.end else []), check=True)
    want = args.series * args.samples
    results = {}
    for name in args.servers.split(","):
        print(f"=== {name} ===", flush=True)
        results[name] = r = run_one(name, args, ds)
        print(json.dumps(r), flush=True)
    names = list(results)
    rows = [
        ("time to ready after SIGKILL (s, median)", "ready_s", "{:.2f}"),
        ("peak RSS during replay, VmHWM (MiB)", "replay_hwm", "{:.1f}"),
        ("RSS when ready (MiB)", "rss_ready", "{:.1f}"),
        ("CPU s until ready", "cpu_s", "{:.2f}"),
        ("data dir at the kill (MiB)", "disk", "{:.1f}"),
        ("  of which wal/ (MiB)", "wal", "{:.1f}"),
        ("  of which head snapshot (MiB)", "snapshot", "{:.1f}"),
        ("series after replay", "series", "{:,.0f}"),
        ("samples after replay", "samples", "{:,.0f}"),
        ("peak RSS during ingest (MiB)", "ingest_hwm", "{:.1f}"),
    ]
    print(f"\ndata set: {args.series} series x {args.samples} samples = {want:,} samples")
    print("| metric | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for label, key, fmt in rows:
        vals = []
        for n in names:
            v = results[n].get(key, 0)
            if key in ("disk", "wal", "snapshot"):
                v = v / (1 << 20)
            vals.append(fmt.format(v))
        print(f"| {label} | " + " | ".join(vals) + " |")
    lost = [n for n in names if results[n]["samples"] != want]
    if lost:
        print(f"WARNING: samples after replay differ from {want:,} for {lost}")


if __name__ == "__main__":
    main()
