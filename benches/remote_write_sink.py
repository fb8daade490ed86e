#!/usr/bin/python3
"""Remote-write sink for the scrape-bench comparison with remote write (benches/README.md).

Answers 204 to every POST on 127.0.0.1:PORT, and counts requests, compressed bytes and samples
(protobuf walked just enough to count field-2 samples of field-1 time series) per User-Agent,
so one sink serves every server of a scrape-bench run. SIGTERM or SIGINT prints the totals as
JSON to stdout and exits. Needs Debian's python3-snappy (run with /usr/bin/python3).
"""
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import snappy

LOCK = threading.Lock()
COUNTS: dict[str, dict[str, int]] = {}


def varint(b: bytes, i: int) -> tuple[int, int]:
    shift = n = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        if c < 0x80:
            return n, i
        shift += 7


def skip(b: bytes, i: int, wire: int) -> int:
    if wire == 0:
        return varint(b, i)[1]
    if wire == 1:
        return i + 8
    if wire == 2:
        n, i = varint(b, i)
        return i + n
    if wire == 5:
        return i + 4
    raise ValueError(f"wire type {wire}")


def count_samples(b: bytes) -> int:
    """Samples (field 2) of every TimeSeries (field 1) of a WriteRequest."""
    n = i = 0
    while i < len(b):
        key, i = varint(b, i)
        if key == (1 << 3 | 2):
            size, i = varint(b, i)
            end = i + size
            while i < end:
                k, i = varint(b, i)
                if k == (2 << 3 | 2):
                    n += 1
                i = skip(b, i, k & 7)
        else:
            i = skip(b, i, key & 7)
    return n


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            samples = count_samples(snappy.uncompress(body))
        except Exception:  # a bad body is counted, not fatal
            samples = -1
        ua = self.headers.get("User-Agent", "?").split("/")[0]
        with LOCK:
            c = COUNTS.setdefault(ua, {"requests": 0, "bytes": 0, "samples": 0, "bad": 0})
            c["requests"] += 1
            c["bytes"] += len(body)
            if samples < 0:
                c["bad"] += 1
            else:
                c["samples"] += samples
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 19999
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)

    def done(*_):
        with LOCK:
            print(json.dumps(COUNTS, indent=1), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, done)
    signal.signal(signal.SIGINT, done)
    srv.serve_forever()


if __name__ == "__main__":
    main()
