#!/usr/bin/env python3
"""Range-query latency, Argus vs Prometheus, on the same data: the shapes of benches/promql.rs.

Builds the data set of benches/promql.rs (`x` and `y` with --series counters each, `h_bucket`
with --series/10 instances x 10 `le` buckets; 15 s apart, 70 minutes ending now), remote-writes
it in time order to Argus and Prometheus started side by side (loopback only, own temp dirs),
then runs each query of QUERIES as a range query over the last hour at a 15 s step, --repeat
times per server, alternating servers, and prints the median latency of each and the ratio.
It also checks that both servers answer the same series with the same values (relative
tolerance 1e-9), so the timing compares equal work.

Uses `hlib` of ../shared/bench (remote-write encoding, peer start/stop). Every process it
starts is stopped by its PID.

    cargo build --release
    python3 benches/range_vs_prometheus.py --argus target/release/argus
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "bench"))

STEP_S = 15
SPAN_S = 70 * 60
BUCKETS = ["0.005", "0.01", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"]

# Keep in step with QUERIES in benches/promql.rs.
QUERIES = [
    ("rate", "rate(x[1m])"),
    ("sum_rate", "sum(rate(x[5m]))"),
    ("histogram_quantile", "histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))"),
    ("topk", "topk(5, rate(x[5m]))"),
    ("binary", "x + y"),
]


def series_defs(n):
    """(labels, per-step increment) of every series, as benches/promql.rs builds them."""
    out = []
    for i in range(n):
        inst = f"i{i}"
        out.append(((("__name__", "x"), ("instance", inst)), float(i % 7 + 1)))
        out.append(((("__name__", "y"), ("instance", inst)), float(i % 5 + 1)))
    for i in range(n // 10):
        inst = f"i{i}"
        for b, le in enumerate(BUCKETS):
            out.append(((("__name__", "h_bucket"), ("instance", inst), ("le", le)), float(b + 1)))
    return out


def requests(rw, defs, end_ms, per_request):
    """Encoded remote-write bodies, in time order: every series' samples of one 5-minute slice,
    split into requests of `per_request` series."""
    points = SPAN_S // STEP_S + 1
    start_ms = end_ms - (points - 1) * STEP_S * 1000
    slice_pts = 20
    bodies = []
    for k0 in range(0, points, slice_pts):
        ks = range(k0, min(points, k0 + slice_pts))
        for s0 in range(0, len(defs), per_request):
            batch = []
            for labels, per_step in defs[s0 : s0 + per_request]:
                samples = [(start_ms + k * STEP_S * 1000, k * per_step) for k in ks]
                batch.append((labels, samples))
            raw = rw.encode_write_request(batch)
            bodies.append(rw.snappy_compress(raw))
    return bodies


def post(url, body):
    req = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            r.read()
    except urllib.error.HTTPError as e:
        raise SystemExit(f"POST {url}: {e.code} {e.read()[:300]!r}")


def range_query(base, expr, start_s, end_s):
    q = urllib.parse.urlencode({"query": expr, "start": start_s, "end": end_s, "step": STEP_S})
    t0 = time.perf_counter()
    with urllib.request.urlopen(f"{base}/api/v1/query_range?{q}", timeout=300) as r:
        body = r.read()
    dt = time.perf_counter() - t0
    doc = json.loads(body)
    if doc.get("status") != "success":
        raise SystemExit(f"{base}: {expr}: {doc}")
    return dt, doc["data"]["result"]


def canon(result):
    out = {}
    for s in result:
        key = tuple(sorted(s["metric"].items()))
        out[key] = [(float(t), float(v)) for t, v in s["values"]]
    return out


def same(a, b):
    if a.keys() != b.keys():
        return False
    for k, va in a.items():
        vb = b[k]
        if len(va) != len(vb):
            return False
        for (ta, xa), (tb, xb) in zip(va, vb):
            if ta != tb:
                return False
            if xa != xb and abs(xa - xb) > 1e-9 * max(abs(xa), abs(xb)):
                return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--argus", required=True)
    ap.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--bench", default=BENCH, help="path of ../shared/bench (for hlib)")
    args = ap.parse_args()

    sys.path.insert(0, args.bench)
    from hlib import peers  # noqa: E402
    from hlib import remote_write as rw  # noqa: E402

    try:
        import cramjam

        rw.snappy_compress = lambda b: bytes(cramjam.snappy.compress_raw(b))
    except ImportError:
        rw.snappy_compress = rw.snappy_literal_only

    work = tempfile.mkdtemp(prefix="argus-range-bench-")
    procs = []
    try:
        pport, aport = peers.free_port(), peers.free_port()
        pcfg = os.path.join(work, "prometheus.yml")
        with open(pcfg, "w") as f:
            # No scrape jobs: a self-scrape would move the head's newest time to now before the
            # older slices arrive, making them out of bounds (the same config for both).
            f.write("global:\n  scrape_interval: 1h\n")
        plog = open(os.path.join(work, "prometheus.log"), "w")
        alog = open(os.path.join(work, "argus.log"), "w")
        procs.append(
            subprocess.Popen(
                [
                    args.prometheus,
                    f"--config.file={pcfg}",
                    f"--storage.tsdb.path={work}/prom",
                    f"--web.listen-address=127.0.0.1:{pport}",
                    "--web.enable-remote-write-receiver",
                    "--log.level=warn",
                ],
                stdout=plog,
                stderr=subprocess.STDOUT,
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    args.argus,
                    f"--config.file={pcfg}",
                    f"--storage.tsdb.path={work}/argus",
                    f"--web.listen-address=127.0.0.1:{aport}",
                    "--web.enable-remote-write-receiver",
                ],
                stdout=alog,
                stderr=subprocess.STDOUT,
            )
        )
        servers = {"argus": f"http://127.0.0.1:{aport}", "prometheus": f"http://127.0.0.1:{pport}"}
        for name, base in servers.items():
            deadline = time.time() + 60
            while True:
                try:
                    if peers.http_get(f"{base}/-/ready")[0] == 200:
                        break
                except Exception:
                    pass
                if time.time() > deadline:
                    raise SystemExit(f"{name} did not become ready")
                time.sleep(0.2)

        end_ms = int(time.time() // STEP_S * STEP_S * 1000)
        defs = series_defs(args.series)
        t0 = time.time()
        bodies = requests(rw, defs, end_ms, 2000)
        print(f"encoded {len(defs)} series x {SPAN_S // STEP_S + 1} samples into {len(bodies)} requests in {time.time() - t0:.1f} s", flush=True)
        for name, base in servers.items():
            t0 = time.time()
            for b in bodies:
                post(f"{base}/api/v1/write", b)
            print(f"{name}: loaded in {time.time() - t0:.1f} s", flush=True)

        end_s = end_ms / 1000
        start_s = end_s - 3600
        print(f"\n{len(defs)} series; range queries over 1 h at a {STEP_S} s step; median of {args.repeat} runs\n")
        print(f"{'query':<20} {'argus ms':>10} {'prometheus ms':>14} {'ratio':>7}  same result")
        for qname, expr in QUERIES:
            times = {n: [] for n in servers}
            results = {}
            for _ in range(args.repeat):
                for name, base in servers.items():
                    dt, res = range_query(base, expr, start_s, end_s)
                    times[name].append(dt)
                    results[name] = res
            a = statistics.median(times["argus"]) * 1000
            p = statistics.median(times["prometheus"]) * 1000
            eq = same(canon(results["argus"]), canon(results["prometheus"]))
            print(f"{qname:<20} {a:>10.1f} {p:>14.1f} {a / p:>7.2f}  {'yes' if eq else 'NO'}")
    finally:
        for p in procs:
            peers.stop_pid(p.pid, proc=p)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
