#!/usr/bin/env python3
"""Soak: Argus under scrape, remote write and queries at once, with a short block range.

For `--duration` (default 10 min) after a `--warmup` (default 60 s), one Argus process:
  * scrapes scrape-bench's targets (default 400 nginx-served node_exporter-like bodies of 1,000
    series every 5 s: `../shared/bench/hlib/scrape.py`, the same bodies and rotation);
  * receives a steady remote-write stream: the harness's data set (default 20,000 series at
    15 s), each scrape round of it sent when its timestamps are reached, over 4 connections
    (`hlib/remote_write.py` encodes and snappy-compresses it beforehand);
  * answers the harness query list (`queries.yaml`) at a fixed rate (one pass of the list every
    `--query-every` seconds, default 5; a pass that overruns starts the next at once and counts
    as late), its times resolved against the remote-written data sent so far, so the query load
    does not grow as queries get faster and CPU per million samples compares across builds;
  * with `--storage.tsdb.min-block-duration` (default 2m) so the head is cut into blocks and the
    WAL truncated (checkpointed) several times during the run.
It records failed write requests, query errors, scrape targets down, samples rejected (the
remote-write receiver's and the head's counters), RSS every 5 s (start after the warm-up, peak,
end), server CPU per million samples appended over the measured window and in each minute of
it (flat after warm-up means no cost creeps in as the head, blocks and WAL grow), blocks and WAL
checkpoints, and prints a table (also written to WORKDIR/soak.md and soak.json).

Usage (from the repository root, after `cargo build --release`):
  python3 benches/soak.py --argus target/release/argus [--duration 600] [--targets 400]
Needs nginx (scrape-bench's targets, see ../shared/bench/README.md) and the harness's Python
requirements. Every process it starts listens on loopback and is stopped by its PID.
"""

import argparse
import json
import math
import os
import re
import shutil
import statistics
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(HERE, "..", "..", "shared", "bench")


def metrics(url):
    """The server's /metrics as {name{labels}: value} (only argus_* lines)."""
    from hlib import peers
    status, body = peers.http_get(url + "/metrics", timeout=10)
    out = {}
    if status != 200:
        return out
    for line in body.decode("utf-8", "replace").splitlines():
        if line.startswith("argus_"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def threads_of(pid):
    """The process's thread count (/proc/PID/status), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def total(m, name):
    """Sum of every series of metric `name`."""
    return sum(v for k, v in m.items() if k == name or k.startswith(name + "{"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--argus", required=True, help="the argus binary (target/release/argus)")
    ap.add_argument("--harness-dir", default=BENCH, help="../shared/bench (hlib, queries.yaml)")
    ap.add_argument("--duration", type=float, default=600, help="measured seconds (default 600)")
    ap.add_argument("--warmup", type=float, default=60, help="seconds before measuring (default 60)")
    ap.add_argument("--targets", type=int, default=400)
    ap.add_argument("--series-per-target", type=int, default=1000)
    ap.add_argument("--scrape-interval", type=float, default=5.0)
    ap.add_argument("--rw-series", type=int, default=20000, help="remote-written series (default 20,000)")
    ap.add_argument("--rw-interval", default="15s")
    ap.add_argument("--block", default="2m", help="--storage.tsdb.min-block-duration (default 2m)")
    ap.add_argument("--query-every", type=float, default=5.0,
                    help="start a pass of the query list every this many seconds (default 5)")
    ap.add_argument("--workdir", default="/tmp/argus-soak")
    ap.add_argument("--keep", action="store_true", help="keep the data dir")
    a = ap.parse_args()
    sys.path.insert(0, os.path.abspath(a.harness_dir))
    from hlib import dataset as ds
    from hlib import exposition as ex
    from hlib import peers
    from hlib import query as hq
    from hlib import remote_write as rw
    from hlib import scrape as sc

    workdir = os.path.abspath(a.workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    total_s = a.warmup + a.duration

    # Remote-write data: rounds every rw-interval from now on, sent as their time comes.
    interval_ms = ds.parse_duration_ms(a.rw_interval)
    rounds = int(math.ceil(total_s * 1000 / interval_ms)) + 2
    t_first = (int(time.time() * 1000) // interval_ms + 1) * interval_ms
    spec = ds.Spec(series=a.rw_series, samples=rounds, interval_ms=interval_ms,
                   end_ms=t_first + (rounds - 1) * interval_ms, seed=42)
    print(f"soak: encoding {spec.describe()}", flush=True)
    enc = rw.encode_dataset(spec, shards=4, batch=2000, window=1)

    # Scrape targets.
    model = ex.synthetic(a.series_per_target, seed=42)
    www = os.path.join(workdir, "www")
    os.makedirs(www)
    variants = min(120, max(10, int(math.ceil(total_s / a.scrape_interval)) + 2))
    ex.write_variants(model, www, 8, variants, a.scrape_interval, 42, gz=True)
    addrs = sc.target_addrs(a.targets, "ips", 9100)
    sc.check_bindable(addrs)
    cfg = os.path.join(workdir, "argus.yml")
    with open(cfg, "w") as f:
        f.write(sc.scrape_config(addrs, a.scrape_interval, "node", a.targets, model.series))
    pool = sc.TargetPool(workdir, addrs, 8, True)
    rot = sc.Rotator(www, variants, a.scrape_interval)

    data = os.path.join(workdir, "data")
    port = peers.free_port()
    cmd = (f"{os.path.abspath(a.argus)} --config.file={cfg} --storage.tsdb.path={data} "
           f"--web.listen-address={{addr}} --web.enable-remote-write-receiver "
           f"--storage.tsdb.min-block-duration={a.block} --storage.tsdb.retention.time=1d "
           f"--log.level=warn")
    t = peers.make_custom("argus", cmd, data, port)
    stop = threading.Event()
    lock = threading.Lock()
    st = {"write_failed": 0, "write_ok": 0, "write_errors": [], "rw_samples": 0, "queries": 0,
          "query_errors": 0, "query_error_examples": [], "query_ms": [], "rss": [], "threads": [], "late_rounds": 0,
          "query_passes": 0, "query_passes_late": 0, "windows": []}

    def sender(k, bodies):
        per_round = len(bodies) // rounds
        cl = hq.Client(t.url, timeout=60)
        for i, (body, n) in enumerate(bodies):
            due = (t_first + (i // per_round) * interval_ms) / 1000 + 1
            wait = due - time.time()
            if wait > 0 and stop.wait(wait):
                break
            if stop.is_set():
                break
            try:
                status, resp = cl.request("POST", "/api/v1/write", body=body, headers=rw.HEADERS)
            except Exception as e:
                status, resp = -1, repr(e).encode()
            with lock:
                if 200 <= status < 300:
                    st["write_ok"] += 1
                    st["rw_samples"] += n
                else:
                    st["write_failed"] += 1
                    if len(st["write_errors"]) < 5:
                        st["write_errors"].append(f"{status}: {resp[:200]!r}")
        cl.close()

    queries = hq.load_queries(os.path.join(a.harness_dir, "queries.yaml"))

    def querier():
        cl = hq.Client(t.url, timeout=60)
        next_pass = None
        while not stop.is_set():
            sent = int((time.time() * 1000 - t_first) // interval_ms)
            if sent < 4:  # a minute of remote-written data first
                stop.wait(5)
                continue
            now = time.monotonic()
            if next_pass is None:
                next_pass = now
            elif now < next_pass:
                stop.wait(next_pass - now)
                continue
            with lock:
                st["query_passes"] += 1
                if now > next_pass + 0.5:
                    st["query_passes_late"] += 1
            next_pass = max(next_pass + a.query_every, now)
            cur = ds.Spec(**{**json.loads(spec.to_json()), "samples": sent,
                             "end_ms": t_first + (sent - 1) * interval_ms})
            for q in queries:
                if stop.is_set():
                    break
                path, params = hq.build_request(q, cur)
                t0 = time.perf_counter()
                try:
                    status, body = cl.request(q.get("http", "GET").upper(), path, params)
                    ok = status == 200 and json.loads(body).get("status") == "success"
                except Exception as e:
                    ok, body = False, repr(e).encode()
                with lock:
                    st["queries"] += 1
                    st["query_ms"].append((time.perf_counter() - t0) * 1000)
                    if not ok:
                        st["query_errors"] += 1
                        if len(st["query_error_examples"]) < 5:
                            st["query_error_examples"].append(f"{q['name']}: {body[:200]!r}")
        cl.close()

    def monitor(t_start):
        while not stop.wait(5):
            s = peers.proc_status(t.pid)
            n = threads_of(t.pid)
            with lock:
                st["rss"].append((time.time() - t_start, s.get("VmRSS", 0) / 2**20))  # bytes -> MiB
                st["threads"].append((time.time() - t_start, n))

    threads = []
    try:
        pool.start()
        rot.start()
        peers.start(t, os.path.join(workdir, "argus.log"), timeout=60)
        t_start = time.time()
        print(f"soak: argus PID {t.pid} on {t.url}; nginx PID {pool.pid} with {a.targets} targets; "
              f"{a.warmup:.0f} s warm-up, then {a.duration:.0f} s", flush=True)
        threads = [threading.Thread(target=sender, args=(k, b), daemon=True) for k, b in enumerate(enc.shards)]
        threads += [threading.Thread(target=querier, daemon=True),
                    threading.Thread(target=monitor, args=(t_start,), daemon=True)]
        for th in threads:
            th.start()
        time.sleep(a.warmup)
        m0, c0, w0 = metrics(t.url), peers.cpu_seconds(t.pid), time.time()
        with lock:
            q0 = len(st["query_ms"])
        mw, cw, tw = m0, c0, w0
        while (left := w0 + a.duration - time.time()) > 0:
            time.sleep(min(60.0, left))
            mn, cn, tn = metrics(t.url), peers.cpu_seconds(t.pid), time.time()
            n = (total(mn, "argus_tsdb_head_samples_appended_total")
                 - total(mw, "argus_tsdb_head_samples_appended_total"))
            win = {"start_s": tw - w0, "end_s": tn - w0, "samples": n, "cpu_s": cn - cw,
                   "cpu_s_per_1m_samples": (cn - cw) / n * 1e6 if n else None}
            mw, cw, tw = mn, cn, tn
            with lock:
                st["windows"].append(win)
                rss = st["rss"][-1][1] if st["rss"] else 0
                per = f"{win['cpu_s_per_1m_samples']:.2f}" if n else "-"
                print(f"  {tn - w0:5.0f} s: RSS {rss:.0f} MiB, CPU s per 1M samples this window {per}, "
                      f"writes ok {st['write_ok']} failed {st['write_failed']}, queries {st['queries']} "
                      f"({st['query_errors']} errors, passes {st['query_passes']}, "
                      f"{st['query_passes_late']} late)", flush=True)
        m1, c1, w1 = metrics(t.url), peers.cpu_seconds(t.pid), time.time()
        up = hq.Client(t.url).request("GET", "/api/v1/query", {"query": 'sum(up{job="node"})'})
        up_now = json.loads(up[1])["data"]["result"]
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=70)
        rot.stop()
        print(f"argus: {peers.stop(t)}; nginx: {pool.stop()}", flush=True)

    appended = total(m1, "argus_tsdb_head_samples_appended_total") - total(m0, "argus_tsdb_head_samples_appended_total")
    rss_w = [r for s, r in st["rss"] if s >= a.warmup]
    thr_w = [n for s, n in st["threads"] if s >= a.warmup]
    qms = st["query_ms"][q0:]
    blocks = sorted(d for d in os.listdir(data) if re.fullmatch(r"[0-9A-Z]{26}", d)) if os.path.isdir(data) else []
    res = {
        "duration_s": w1 - w0, "warmup_s": a.warmup, "targets": a.targets,
        "scrape_samples_per_round": a.targets * model.series, "scrape_interval_s": a.scrape_interval,
        "rw_series": a.rw_series, "rw_interval": a.rw_interval, "block": a.block,
        "write_requests_ok": st["write_ok"], "write_requests_failed": st["write_failed"],
        "write_errors": st["write_errors"], "rw_samples_sent": st["rw_samples"],
        "rw_rejected": total(m1, "argus_remote_write_samples_rejected_total"),
        "head_rejected": total(m1, "argus_tsdb_samples_rejected_total"),
        "targets_up_at_end": float(up_now[0]["value"][1]) if up_now else 0.0,
        "queries": st["queries"], "query_errors": st["query_errors"],
        "query_every_s": a.query_every, "query_passes": st["query_passes"],
        "query_passes_late": st["query_passes_late"], "cpu_windows": st["windows"],
        "query_error_examples": st["query_error_examples"],
        "query_median_ms": statistics.median(qms) if qms else None,
        "query_p90_ms": statistics.quantiles(qms, n=10)[-1] if len(qms) >= 10 else None,
        "samples_appended": appended, "samples_per_s": appended / (w1 - w0),
        "cpu_s": c1 - c0, "cpu_s_per_1m_samples": (c1 - c0) / appended * 1e6 if appended else None,
        "rss_start_mib": rss_w[0] if rss_w else None, "rss_peak_mib": max(rss_w) if rss_w else None,
        "rss_end_mib": rss_w[-1] if rss_w else None, "rss_curve": st["rss"],
        "threads_max": max(thr_w) if thr_w else None, "threads_end": thr_w[-1] if thr_w else None,
        "loadavg_end": os.getloadavg(),
        "compactions": total(m1, "argus_tsdb_compactions_total"),
        "compactions_failed": total(m1, "argus_tsdb_compactions_failed_total"),
        "blocks_at_end": len(blocks),
        "wal_checkpoints_at_end": sorted(d for d in os.listdir(os.path.join(data, "wal")) if d.startswith("checkpoint"))
        if os.path.isdir(os.path.join(data, "wal")) else [],
    }
    wins = [w["cpu_s_per_1m_samples"] for w in st["windows"]
            if w["cpu_s_per_1m_samples"] is not None and w["end_s"] - w["start_s"] >= 30]  # full minutes
    rows = [
        ("measured window (s)", f"{res['duration_s']:.0f} after {a.warmup:.0f} s warm-up"),
        ("load", f"{a.targets} targets x {model.series} series every {a.scrape_interval:g} s + "
                 f"{a.rw_series:,} remote-written series every {a.rw_interval} + the {len(queries)} queries "
                 f"every {a.query_every:g} s"),
        ("block range", a.block),
        ("samples appended / s", f"{res['samples_per_s']:,.0f}"),
        ("server CPU s per 1M samples", f"{res['cpu_s_per_1m_samples']:.2f}" if appended else "-"),
        ("CPU s per 1M samples by minute (first / min / max / last)",
         " / ".join(f"{x:.2f}" for x in (wins[0], min(wins), max(wins), wins[-1])) if wins else "-"),
        ("write requests ok / failed", f"{st['write_ok']:,} / {st['write_failed']}"),
        ("samples rejected (remote write / head)", f"{res['rw_rejected']:.0f} / {res['head_rejected']:.0f}"),
        ("targets up at the end", f"{res['targets_up_at_end']:.0f} of {a.targets}"),
        ("queries / errors (list passes / late)",
         f"{st['queries']:,} / {st['query_errors']} ({st['query_passes']} / {st['query_passes_late']})"),
        ("query latency median / p90 (ms)",
         f"{res['query_median_ms']:.1f} / {res['query_p90_ms']:.1f}" if res["query_p90_ms"] else "-"),
        ("RSS start / peak / end after warm-up (MiB)",
         f"{res['rss_start_mib']:.0f} / {res['rss_peak_mib']:.0f} / {res['rss_end_mib']:.0f}" if rss_w else "-"),
        ("threads max / end after warm-up",
         f"{res['threads_max']} / {res['threads_end']}" if thr_w else "-"),
        ("load average at the end (1/5/15 min)", " / ".join(f"{x:.1f}" for x in res["loadavg_end"])),
        ("compactions (failed)", f"{res['compactions']:.0f} ({res['compactions_failed']:.0f})"),
        ("blocks / WAL checkpoints at the end", f"{len(blocks)} / {', '.join(res['wal_checkpoints_at_end']) or '-'}"),
    ]
    w = max(len(r[0]) for r in rows)
    table = "\n".join([f"| {'measure':<{w}} | value |", f"|{'-' * (w + 2)}|-------|"]
                      + [f"| {k:<{w}} | {v} |" for k, v in rows])
    print("\n" + table)
    for e in st["write_errors"] + st["query_error_examples"]:
        print("  error: " + e)
    with open(os.path.join(workdir, "soak.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(workdir, "soak.md"), "w") as f:
        f.write(table + "\n")
    if not a.keep:
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(www, ignore_errors=True)
    bad = st["write_failed"] or st["query_errors"] or res["rw_rejected"] or res["head_rejected"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
