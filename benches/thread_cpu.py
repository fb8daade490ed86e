#!/usr/bin/env python3
"""Where a server's CPU goes, by thread: a recorder beside a harness run and its window report.

`harness.py scrape-bench` (and `measure`) give one CPU figure per server for the whole process.
Between idle runs of one binary that figure moves by a third, and the process total cannot say
which part of the server moved. This records every thread's CPU time and groups the threads by
name (trailing digits dropped: `tokio-rt-worker`, `argus-scrape-commit`, ...):

  record  MATCH OUT   poll /proc every 0.5 s; for each process whose command line contains
                      MATCH (not this script's), append one JSON line per poll to OUT:
                      {"t": epoch, "pid": .., "cmd": "..", "cpu": {group: s}, "n": {group: n}}.
                      Ends 30 s after the last matching process went away (or on SIGINT).
  window  OUT JSON    for each server of a harness result (`results/scrape-bench.json`),
                      the CPU of each thread group over the server's measured window
                      (`t_a`..`t_b`, matched to the recording by `/NAME/data` in the command
                      line), and per 1M samples when the result counts them.

Usage beside a run (from the repository root):
  python3 benches/thread_cpu.py record /tmp/sb/ /tmp/sb.cpu.jsonl &
  python3 ../shared/bench/harness.py scrape-bench ... --workdir /tmp/sb ...
  python3 benches/thread_cpu.py window /tmp/sb.cpu.jsonl /tmp/sb/results/scrape-bench.json

A thread that ended inside the window loses its CPU from the group (its /proc entry is gone);
the report prints the process total beside the groups' sum so the gap shows.
"""

import json
import os
import re
import sys
import time

TCK = os.sysconf("SC_CLK_TCK")


def cpu_of(stat_path):
    """user + system CPU seconds from a /proc/.../stat file."""
    with open(stat_path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TCK


def group(comm):
    """A thread's group: its name without trailing digits and separators."""
    return re.sub(r"[-_ ]*\d+$", "", comm.strip()) or comm.strip()


def sample(pid):
    """({group: cpu_s}, {group: threads}, total cpu_s) of pid."""
    cpu, n = {}, {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                g = group(f.read())
            c = cpu_of(f"/proc/{pid}/task/{tid}/stat")
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        cpu[g] = cpu.get(g, 0.0) + c
        n[g] = n.get(g, 0) + 1
    return cpu, n, cpu_of(f"/proc/{pid}/stat")


def record(match, out_path):
    me = os.getpid()
    seen_any, last_seen = False, time.time()
    with open(out_path, "a") as out:
        while not seen_any or time.time() - last_seen < 30:
            now = time.time()
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or int(pid) == me:
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
                    if match not in cmd or "python" in cmd.split(" ", 1)[0]:
                        continue
                    cpu, n, total = sample(pid)
                except (FileNotFoundError, ProcessLookupError, IndexError):
                    continue
                seen_any, last_seen = True, now
                out.write(json.dumps({"t": now, "pid": int(pid), "cmd": cmd, "cpu": cpu,
                                      "n": n, "total": total}) + "\n")
            out.flush()
            time.sleep(0.5)


def at(rows, t):
    """The recorded row nearest to time t."""
    return min(rows, key=lambda r: abs(r["t"] - t))


def window(rec_path, result_path):
    with open(rec_path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    with open(result_path) as f:
        result = json.load(f)
    for s in result["servers"]:
        name, t_a, t_b = s["name"], s.get("t_a"), s.get("t_b")
        if t_a is None or t_b is None:
            continue
        mine = [r for r in rows if f"/{name}/data" in r["cmd"]]
        if not mine:
            print(f"{name}: not recorded")
            continue
        pid = at(mine, t_a)["pid"]
        mine = [r for r in mine if r["pid"] == pid]
        a, b = at(mine, t_a), at(mine, t_b)
        samples = s.get("samples")
        per = 1e6 / samples if samples else None
        print(f"## {name} (pid {pid}; window {t_b - t_a:.1f} s, recorded "
              f"{b['t'] - a['t']:.1f} s; harness CPU {s.get('cpu_s', 0):.2f} s"
              + (f", {s['cpu_s_per_1m']:.3f} per 1M" if s.get("cpu_s_per_1m") else "") + ")")
        print("| thread group | threads | CPU s | share | per 1M samples |")
        print("|---|---:|---:|---:|---:|")
        total = b["total"] - a["total"]
        groups = sorted(set(a["cpu"]) | set(b["cpu"]),
                        key=lambda g: -(b["cpu"].get(g, 0) - a["cpu"].get(g, 0)))
        summed = 0.0
        for g in groups:
            d = b["cpu"].get(g, 0.0) - a["cpu"].get(g, 0.0)
            summed += d
            if abs(d) < 0.005:
                continue
            share = d / total * 100 if total else 0
            pm = f"{d * per:.3f}" if per else "-"
            print(f"| {g} | {b['n'].get(g, 0)} | {d:.2f} | {share:.1f} % | {pm} |")
        pm = f"{total * per:.3f}" if per else "-"
        print(f"| **process** | | **{total:.2f}** | | **{pm}** |")
        if abs(summed - total) > 0.05:
            print(f"(threads that ended in the window: {total - summed:.2f} s not in a group)")
        print()


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "record":
        try:
            record(sys.argv[2], sys.argv[3])
        except KeyboardInterrupt:
            pass
    elif len(sys.argv) == 4 and sys.argv[1] == "window":
        window(sys.argv[2], sys.argv[3])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
