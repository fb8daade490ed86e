#!/usr/bin/env python3
"""Where a server's peak RSS comes from: the harness's `measure` workload, phase by phase.

Starts one server (Argus by default; any command line with `{addr}` and `{data}`), samples
/proc/PID/status (VmRSS, VmHWM, Threads) every 100 ms in a thread, and runs the phases of
`harness.py measure` one after another: start-up, remote-write ingest of the data set, a
settle pause, then the harness's query list one query at a time. It prints the peak RSS of each
phase, the queries that raised RSS most, /proc/PID/smaps_rollup at the end, and writes the
whole RSS curve (t, phase, rss_kib, hwm_kib, threads) to --out as JSON.

Usage (from the repository root, after `cargo build --release` or `--profile profiling`):
  python3 benches/rss_trace.py --argus target/release/argus --series 20000 --samples 240
  python3 benches/rss_trace.py --cmd '/usr/bin/prometheus ...{addr}...{data}...'
The data set is encoded once and cached in --workdir (keyed by its parameters), so repeated
runs start at once. Every process it starts listens on loopback and is stopped by its PID.
"""

import argparse
import json
import os
import pickle
import shutil
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def user_sys(pid):
    """(user, system) CPU seconds of pid."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tck, int(fields[12]) / tck


def status(pid):
    """VmRSS, VmHWM (KiB) and thread count of pid."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0])
                elif k == "Threads":
                    out[k] = int(v)
    except OSError:
        pass
    return out


class Sampler(threading.Thread):
    """Samples status(pid) every `period` s, tagging each sample with the current phase."""

    def __init__(self, pid, period=0.1):
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.phase = "startup"
        self.samples = []
        self.stop_ev = threading.Event()
        self.t0 = time.time()

    def run(self):
        while not self.stop_ev.is_set():
            s = status(self.pid)
            if s:
                self.samples.append((round(time.time() - self.t0, 2), self.phase,
                                     s.get("VmRSS", 0), s.get("VmHWM", 0), s.get("Threads", 0)))
            time.sleep(self.period)

    def peak(self, phase):
        xs = [s[2] for s in self.samples if s[1] == phase]
        return max(xs) if xs else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--argus", help="Argus binary (builds the command line)")
    ap.add_argument("--cmd", help="full command line with {addr} and {data}")
    ap.add_argument("--harness-dir", default=os.path.join(HERE, "..", "..", "shared", "bench"))
    ap.add_argument("--workdir", default="/tmp/rss-trace")
    ap.add_argument("--series", type=int, default=20000)
    ap.add_argument("--samples", type=int, default=240)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--end", type=int, help="dataset end, unix seconds (default: cached or now)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--window", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each query")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds idle after ingest")
    ap.add_argument("--no-queries", action="store_true", help="stop after ingest and settle")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    ap.add_argument("--out", help="RSS curve JSON (default WORKDIR/trace.json)")
    a = ap.parse_args()
    sys.path.insert(0, os.path.abspath(a.harness_dir))
    from hlib import peers, query, remote_write
    from hlib.dataset import Spec, default_end_ms

    os.makedirs(a.workdir, exist_ok=True)
    key = f"{a.series}x{a.samples}-s{a.seed}-c{a.concurrency}-b{a.batch}-w{a.window}"
    cache = os.path.join(a.workdir, f"enc-{key}.pickle")
    if os.path.exists(cache) and a.end is None:
        with open(cache, "rb") as f:
            spec_json, enc = pickle.load(f)
        spec = Spec(**json.loads(spec_json))
    else:
        end_ms = a.end * 1000 if a.end is not None else default_end_ms()
        spec = Spec(series=a.series, samples=a.samples, seed=a.seed, end_ms=end_ms)
        enc = remote_write.encode_dataset(spec, shards=a.concurrency, batch=a.batch,
                                          window=a.window)
        with open(cache, "wb") as f:
            pickle.dump((spec.to_json(), enc), f)
    print(f"dataset {key}: {enc.total_samples:,} samples in {enc.requests:,} requests")

    if not (a.argus or a.cmd):
        raise SystemExit("give --argus or --cmd")
    cmdline = a.cmd or (f"{a.argus} --web.listen-address={{addr}} --storage.tsdb.path={{data}} "
                        "--web.enable-remote-write-receiver --web.enable-admin-api "
                        "--storage.tsdb.out-of-order-time-window=1d")
    data = os.path.join(a.workdir, "data")
    shutil.rmtree(data, ignore_errors=True)
    t = peers.make_custom("server", cmdline, data, peers.free_port())
    t.env = dict(e.split("=", 1) for e in a.env) or None
    log = os.path.join(a.workdir, "server.log")
    if os.path.exists(log):
        os.remove(log)
    cpu0 = None
    sampler = None
    try:
        t.proc = None
        ready = peers.start(t, log)
        sampler = Sampler(t.pid)
        sampler.start()
        cpu0 = peers.cpu_seconds(t.pid)
        us0 = user_sys(t.pid)
        print(f"PID {t.pid} ready in {ready:.1f}s; {status(t.pid)}")
        sampler.phase = "ingest"
        r = remote_write.send(t.url, enc, path=t.write_path)
        cpu1 = peers.cpu_seconds(t.pid)
        us1 = user_sys(t.pid)
        print(f"ingest: {r.samples_ok:,} ok, {r.samples_failed:,} failed in {r.elapsed_s:.1f}s "
              f"= {r.samples_per_s:,.0f}/s; server CPU {cpu1 - cpu0:.2f}s "
              f"= {(cpu1 - cpu0) / max(1, r.samples_ok) * 1e6:.2f}s per 1M "
              f"(user {us1[0] - us0[0]:.2f}s, system {us1[1] - us0[1]:.2f}s)")
        sampler.phase = "settle"
        time.sleep(a.settle)
        qs = [] if a.no_queries else query.load_queries(
            os.path.join(a.harness_dir, "queries.yaml"))
        per_query = []
        for q in qs:
            before = status(t.pid).get("VmRSS", 0)
            sampler.phase = "q:" + q["name"]
            res = query.run_queries(t.url, [q], spec, repeat=a.repeat)
            e = res["results"][0]
            time.sleep(0.15)
            per_query.append((q["name"], before, sampler.peak("q:" + q["name"]),
                              e["latency_median_ms"], e["status"]))
        sampler.phase = "end"
        time.sleep(0.5)
        final = status(t.pid)
        try:
            with open(f"/proc/{t.pid}/smaps_rollup") as f:
                smaps = f.read()
        except OSError:
            smaps = ""
    finally:
        if sampler:
            sampler.stop_ev.set()
        if t.pid:
            print("stop:", peers.stop(t))

    phases = ["startup", "ingest", "settle"]
    qpeak = max((p for _n, _b, p, _l, _s in per_query), default=0)
    print("\nphase peaks (VmRSS MiB):")
    for ph in phases:
        print(f"  {ph:<8} {sampler.peak(ph) / 1024:8.1f}")
    print(f"  queries  {qpeak / 1024:8.1f}")
    print(f"  VmHWM at end {final.get('VmHWM', 0) / 1024:.1f} MiB, VmRSS {final.get('VmRSS', 0) / 1024:.1f}, "
          f"threads {final.get('Threads')}")
    print("\nqueries that raised RSS most (MiB: before -> peak, latency ms):")
    for n, b, p, lat, st in sorted(per_query, key=lambda x: x[2] - x[1], reverse=True)[:12]:
        print(f"  {n:<32} {b / 1024:7.1f} -> {p / 1024:7.1f} (+{(p - b) / 1024:5.1f})  {lat:8.1f} {st}")
    print("\nsmaps_rollup at end:\n" + "".join("  " + l + "\n" for l in smaps.splitlines()[1:9]))
    out = a.out or os.path.join(a.workdir, "trace.json")
    with open(out, "w") as f:
        json.dump({"cmd": t.cmd, "samples": sampler.samples, "queries": per_query}, f)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
