#!/usr/bin/env python3
# Part of benches/README.md "snapdef" (session 12): see there for how it was run.
"""Replay after SIGKILL of a 400k-series scraped head: scrape for --scrape seconds with BIN,
kill -9, then restart copies of the killed data dir (no scrape jobs) and time to /-/ready."""
import argparse, os, shutil, signal, subprocess, sys, time, urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("--bin", action="append", required=True, help="NAME=PATH[ FLAGS]")
ap.add_argument("--config", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--scrape", type=float, default=130)
ap.add_argument("--restarts", type=int, default=3)
ap.add_argument("--port", type=int, default=19790)
a = ap.parse_args()

def ready(port, proc, timeout=300):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            return None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except Exception:
            pass
        time.sleep(0.01)
    return None

def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")

def hwm(pid):
    with open(f"/proc/{pid}/status") as f:
        for l in f:
            if l.startswith("VmHWM"):
                return int(l.split()[1]) / 1024
    return 0

empty = os.path.join(a.work, "empty.yml")
os.makedirs(a.work, exist_ok=True)
open(empty, "w").write("global:\n  scrape_interval: 5s\n")
for spec in a.bin:
    name, cmd = spec.split("=", 1)
    argv = cmd.split()
    d = os.path.join(a.work, name, "data")
    shutil.rmtree(os.path.join(a.work, name), ignore_errors=True)
    os.makedirs(d)
    log = open(os.path.join(a.work, name, "scrape.log"), "w")
    p = subprocess.Popen(argv + [f"--config.file={a.config}", f"--storage.tsdb.path={d}",
                                 f"--web.listen-address=127.0.0.1:{a.port}"], stdout=log, stderr=log)
    ready(a.port, p)
    time.sleep(a.scrape)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    files = sorted(os.listdir(d))
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)
    wal = sum(os.path.getsize(os.path.join(d, "wal", f)) for f in os.listdir(os.path.join(d, "wal")) if os.path.isfile(os.path.join(d, "wal", f)))
    print(f"{name}: killed after {a.scrape:.0f} s; data dir {size/2**20:.1f} MiB, WAL {wal/2**20:.1f} MiB, files {[f for f in files if f.startswith('head_')]}", flush=True)
    res = []
    for k in range(a.restarts):
        c = os.path.join(a.work, name, f"copy{k}")
        shutil.copytree(d, c)
        log = open(os.path.join(a.work, name, f"restart{k}.log"), "w")
        p = subprocess.Popen(argv + [f"--config.file={empty}", f"--storage.tsdb.path={c}",
                                     f"--web.listen-address=127.0.0.1:{a.port}"], stdout=log, stderr=log)
        t = ready(a.port, p)
        cpu, mem = cpu_s(p.pid), hwm(p.pid)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        shutil.rmtree(c)
        res.append((t, cpu, mem))
        print(f"  restart {k}: ready {t:.3f} s, CPU {cpu:.2f} s, peak {mem:.1f} MiB", flush=True)
    ts = sorted(r[0] for r in res)
    print(f"{name}: median ready {ts[len(ts)//2]:.3f} s", flush=True)
