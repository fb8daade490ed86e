#!/usr/bin/env python3
"""Logs the CPU seconds of the snapshot thread (argus-tsdb-comp) and of the whole process for
every process whose cmdline contains MATCH, every 2 s, until none has been seen for 600 s."""
import os, sys, time
match, out = sys.argv[1], open(sys.argv[2], "a")
tck = os.sysconf("SC_CLK_TCK")
def cpu(path):
    with open(path) as f:
        p = f.read().rsplit(")", 1)[1].split()
    return (int(p[11]) + int(p[12])) / tck
last_seen = time.time()
while time.time() - last_seen < 600:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline").read()
            if match not in cmd or "python" in cmd:
                continue
            total = cpu(f"/proc/{pid}/stat")
            snap = 0.0
            for tid in os.listdir(f"/proc/{pid}/task"):
                if open(f"/proc/{pid}/task/{tid}/comm").read().strip().startswith("argus-tsdb-comp"):
                    snap += cpu(f"/proc/{pid}/task/{tid}/stat")
            last_seen = time.time()
            out.write(f"{time.strftime('%H:%M:%S', time.gmtime())} pid {pid} total {total:.2f} snapshot_thread {snap:.2f}\n")
            out.flush()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    time.sleep(2)
