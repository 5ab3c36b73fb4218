"""The load generator of ``make bench``: runs in its own process, apart from every server it loads.

Standard library only (threads + ``http.client`` with keep-alive), so both the project's venv and a
bare ``python3`` can run it. Two modes, both bounded in requests *and* in time::

    python bench/loadgen.py latency    --url URL --body FILE [--warmup 50] [--requests 300] [--max-seconds 60] [--raw]
    python bench/loadgen.py throughput --url URL --body FILE [--clients 8] [--requests 2000] [--max-seconds 30]

``latency`` sends requests one after another on one connection, after a warm-up, and reports each
one's time; ``throughput`` starts N clients (one thread and one keep-alive connection each) that
share a fixed budget of requests and stops early at the deadline. Either prints one JSON object.
Only loopback URLs are accepted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class Client:
    """One keep-alive HTTP/1.1 connection; reconnects once if the server closed it."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname not in LOOPBACK:
            raise SystemExit(f"loadgen: only http:// loopback URLs are allowed, got {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        conn.connect()
        # No Nagle: a request goes out at once, as a real EHR's HTTP client sends it.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def post(self, body: bytes) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "Content-Length": str(len(body)), "Connection": "keep-alive"}
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = self._connect()
            try:
                self.conn.request("POST", self.path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.close()
                return response.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def run_latency(url: str, body: bytes, warmup: int, requests: int, max_seconds: float, raw: bool = False) -> dict:
    client = Client(url)
    errors = 0
    first_error = None
    try:
        for _ in range(warmup):
            status, data = client.post(body)
            if status != 200:
                raise SystemExit(f"loadgen: warm-up got HTTP {status}: {data[:300]!r}")
        times: list[float] = []
        deadline = time.perf_counter() + max_seconds
        for _ in range(requests):
            if time.perf_counter() > deadline:
                break
            start = time.perf_counter()
            status, data = client.post(body)
            elapsed = time.perf_counter() - start
            if status != 200:
                errors += 1
                first_error = first_error or f"HTTP {status}: {data[:200]!r}"
                continue
            times.append(elapsed)
    finally:
        client.close()
    times_ms = sorted(t * 1000 for t in times)
    result = {"mode": "latency", "url": url, "requests": len(times), "errors": errors, "first_error": first_error,
              "p50_ms": percentile(times_ms, 50), "p95_ms": percentile(times_ms, 95),
              "mean_ms": sum(times_ms) / len(times_ms) if times_ms else float("nan"),
              "min_ms": times_ms[0] if times_ms else float("nan"), "max_ms": times_ms[-1] if times_ms else float("nan")}
    if raw:
        result["samples_ms"] = [t * 1000 for t in times]
    return result


def run_throughput(url: str, body: bytes, clients: int, requests: int, max_seconds: float, warmup: int) -> dict:
    lock = threading.Lock()
    budget = [requests]
    done = [0]
    errors = [0]
    first_error: list[str | None] = [None]
    latencies: list[float] = []
    ready = threading.Barrier(clients + 1)
    deadline = [0.0]

    def take() -> bool:
        with lock:
            if budget[0] <= 0:
                return False
            budget[0] -= 1
            return True

    def worker() -> None:
        client = Client(url)
        mine: list[float] = []
        try:
            for _ in range(warmup):  # opens the connection and warms this worker's path
                client.post(body)
            ready.wait()
            while time.perf_counter() < deadline[0] and take():
                start = time.perf_counter()
                try:
                    status, data = client.post(body)
                except OSError as exc:
                    status, data = 0, repr(exc).encode()
                if status == 200:
                    mine.append(time.perf_counter() - start)
                else:
                    with lock:
                        errors[0] += 1
                        first_error[0] = first_error[0] or f"HTTP {status}: {data[:200]!r}"
        except threading.BrokenBarrierError:
            pass
        finally:
            client.close()
            with lock:
                done[0] += len(mine)
                latencies.extend(mine)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    deadline[0] = time.perf_counter() + max_seconds + 600  # provisional, until everyone is ready
    try:
        ready.wait(timeout=120)
    except threading.BrokenBarrierError:
        raise SystemExit("loadgen: the clients did not all connect within 120 s") from None
    start = time.perf_counter()
    deadline[0] = start + max_seconds
    for t in threads:
        t.join(timeout=max_seconds + 60)
    elapsed = time.perf_counter() - start
    lat_ms = sorted(t * 1000 for t in latencies)
    return {"mode": "throughput", "url": url, "clients": clients, "requests": done[0], "errors": errors[0],
            "first_error": first_error[0], "seconds": elapsed, "rps": done[0] / elapsed if elapsed > 0 else 0.0,
            "hit_deadline": done[0] + errors[0] < requests,
            "p50_ms": percentile(lat_ms, 50), "p95_ms": percentile(lat_ms, 95)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("latency", "throughput"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True, help="file holding the request body (JSON)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=None)
    parser.add_argument("--raw", action="store_true", help="latency: also print every request's time")
    args = parser.parse_args(argv)
    with open(args.body, "rb") as fh:
        body = fh.read()
    if args.mode == "latency":
        result = run_latency(args.url, body, args.warmup, args.requests or 300, args.max_seconds or 60, args.raw)
    else:
        result = run_throughput(args.url, body, args.clients, args.requests or 2000, args.max_seconds or 30,
                                warmup=max(1, min(args.warmup, 10)))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
