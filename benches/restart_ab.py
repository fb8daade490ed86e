#!/usr/bin/env python3
# Part of benches/README.md "startload" (session 13): see there for how it was run.
"""A/B restarts of Argus binaries on copies of one killed data dir, alternating.

Usage: restart_ab.py N DIR BIN [BIN ...] [--extra-flag ...]
  N rounds; each round restarts every BIN (the order reversed every other round) on a fresh
  copy of DIR, polls /-/ready every 2 ms, and records: the head snapshot load time from the log
  (`ms=` of "head snapshot loaded"), time to ready from the spawn, CPU s (utime + stime of the
  process at ready) and VmHWM; then SIGKILLs it by PID. Prints min and median per binary.
  Arguments starting with `--` are passed to every binary.
  With --fifo (the default) each server runs under `chrt -f 10` (SCHED_FIFO, root): on a
  machine loaded by other work the restart then gets the cores as on an idle one, the same for
  every binary. --no-fifo runs it at normal priority.
Only the Python standard library.
"""
import os, re, shutil, signal, statistics, subprocess, sys, time, urllib.request

PORT = 19799


def restart(binary, src, extra, fifo, work):
    data = os.path.join(work, "data")
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(src, data, symlinks=True)
    lock = os.path.join(data, "lock")
    if os.path.exists(lock):
        os.remove(lock)
    log_path = os.path.join(work, "server.log")
    argv = [binary, f"--web.listen-address=127.0.0.1:{PORT}", f"--storage.tsdb.path={data}",
            "--web.enable-remote-write-receiver", "--web.enable-admin-api",
            "--storage.tsdb.out-of-order-time-window=1d"] + extra
    if fifo:
        argv = ["chrt", "-f", "10"] + argv
    with open(log_path, "w") as log:
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdout=log, stderr=log)
        while True:
            if p.poll() is not None:
                sys.exit(f"{binary} exited with {p.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except Exception:
                pass
            time.sleep(0.002)
        ready = time.monotonic() - t0
        with open(f"/proc/{p.pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        cpu = (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
        hwm = 0.0
        with open(f"/proc/{p.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM"):
                    hwm = int(line.split()[1]) / 1024
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    m = re.search(r"head snapshot loaded.* ms=(\d+)", open(log_path).read())
    return {"load_ms": float(m.group(1)) if m else None, "ready_ms": ready * 1000,
            "cpu_s": cpu, "hwm_mib": hwm}


def main():
    args = sys.argv[1:]
    fifo = "--no-fifo" not in args
    args = [a for a in args if a not in ("--fifo", "--no-fifo")]
    extra = [a for a in args if a.startswith("--")]
    pos = [a for a in args if not a.startswith("--")]
    if len(pos) < 3:
        sys.exit(__doc__)
    n, src, bins = int(pos[0]), pos[1], pos[2:]
    work = f"/tmp/restart_ab.{os.getpid()}"
    os.makedirs(work, exist_ok=True)
    res = {b: [] for b in bins}
    try:
        for i in range(n):
            for b in bins if i % 2 == 0 else bins[::-1]:
                res[b].append(restart(b, src, extra, fifo, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for b in bins:
        cols = []
        for k, fmt in (("load_ms", "{:.0f}"), ("ready_ms", "{:.0f}"), ("cpu_s", "{:.2f}"),
                       ("hwm_mib", "{:.1f}")):
            v = [r[k] for r in res[b] if r[k] is not None]
            cols.append(f"{k} " + (f"min {fmt.format(min(v))} med {fmt.format(statistics.median(v))}"
                                   if v else "-"))
        print(f"{b} | " + " | ".join(cols))
    print("load average", " ".join(open("/proc/loadavg").read().split()[:3]))


if __name__ == "__main__":
    main()
