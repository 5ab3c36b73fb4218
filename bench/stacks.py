"""The serving stack alone: ``trialcds serve`` (gunicorn's asyncio worker + the WSGI bridge) against
plain gunicorn ``gthread`` and ``sync`` workers serving the same Flask app, side by side.

    .venv/bin/python bench/stacks.py [--seed p07-many-observations] [--rounds 2] [--requests 300]

Each stack: 2 workers on 127.0.0.1, the same app (``create_app`` with --dev settings, its own SQLite
file, JSON logging on stderr, gunicorn's access log, ``gc.freeze()`` after the app is built — as
``trialcds serve`` does), the same full-prefetch body. Per round and stack: sequential latency
(bench/loadgen.py latency) and throughput with 8 keep-alive clients; the workers' CPU time
(/proc/<pid>/stat, user + system) is read before and after, so "CPU per call" counts the server's own
work whatever else the machine is doing. Rounds alternate the order of the stacks. Every server is
stopped on the way out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, SERVICE_ID, VAR, Server, free_port, hook_request, wait_http  # noqa: E402
from bench.loadgen import percentile  # noqa: E402
from bench.run import PY, TRIALCDS, log, run_json  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
WORKERS = 2


def worker_cpu_s(server: Server) -> float:
    total = 0
    for pid in server.children():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLK_TCK


def start(stack: str, port: int) -> Server:
    database = VAR / f"stack-{stack}.sqlite"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    env = {"TRIALCDS_DATABASE_URL": f"sqlite:///{database}", "TRIALCDS_DEV": "1"}
    if stack == "asyncio (trialcds serve)":
        argv = [str(TRIALCDS), "serve", "--dev", "--workers", str(WORKERS), "--host", "127.0.0.1",
                "--port", str(port)]
    else:
        from cds_service import store

        store.prepare_database(env["TRIALCDS_DATABASE_URL"], dev=True)
        kind = stack.split()[0]
        argv = [str(Path(PY).with_name("gunicorn")), "--workers", str(WORKERS), "--worker-class", kind,
                "--bind", f"127.0.0.1:{port}", "--access-logfile", "-", "--timeout", "30",
                "bench.stack_app:app"] + (["--threads", "4"] if kind == "gthread" else [])
    server = Server(f"stack-{stack.split()[0]}", argv, env=env)
    wait_http(f"http://127.0.0.1:{port}/cds-services", server)
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", default="p07-many-observations")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv)
    VAR.mkdir(parents=True, exist_ok=True)
    body, _ = hook_request(args.seed)
    body_file = VAR / "stacks-body.json"
    body_file.write_bytes(body)
    stacks = ["asyncio (trialcds serve)", "gthread (4 threads)", "sync"]
    servers: dict[str, Server] = {}
    results: dict[str, Any] = {s: {"samples": [], "cpu_s": 0.0, "calls": 0, "t_requests": 0, "t_seconds": 0.0}
                               for s in stacks}
    try:
        for stack in stacks:
            port = free_port()
            servers[stack] = start(stack, port)
            servers[stack].url = f"http://127.0.0.1:{port}/cds-services/{SERVICE_ID}"  # type: ignore[attr-defined]
        for i in range(args.rounds):
            for stack in stacks if i % 2 == 0 else stacks[::-1]:
                server, r = servers[stack], results[stack]
                cpu = worker_cpu_s(server)
                lat = run_json([PY, "bench/loadgen.py", "latency", "--url", server.url, "--body", str(body_file),
                                "--warmup", "30", "--requests", str(args.requests), "--max-seconds", "60", "--raw"],
                               timeout=120)
                thr = run_json([PY, "bench/loadgen.py", "throughput", "--url", server.url, "--body", str(body_file),
                                "--clients", "8", "--requests", str(args.requests * 2), "--max-seconds", "30"],
                               timeout=120)
                if lat["errors"] or thr["errors"]:
                    raise RuntimeError(f"{stack}: errors {lat.get('first_error') or thr.get('first_error')}")
                r["cpu_s"] += worker_cpu_s(server) - cpu
                r["calls"] += 30 + len(lat["samples_ms"]) + thr["requests"]
                r["samples"] += lat["samples_ms"]
                r["t_requests"] += thr["requests"]
                r["t_seconds"] += thr["seconds"]
                log(f"round {i + 1} {stack}: p50 {lat['p50_ms']:.2f} ms, {thr['rps']:.0f} req/s")
    finally:
        for server in servers.values():
            server.stop()
    print(f"\n{'stack':<26} {'p50 ms':>8} {'p95 ms':>8} {'req/s (8 clients)':>18} {'worker CPU per call':>20}")
    summary = {}
    for stack, r in results.items():
        s = sorted(r["samples"])
        row = {"p50_ms": percentile(s, 50), "p95_ms": percentile(s, 95),
               "rps": r["t_requests"] / r["t_seconds"] if r["t_seconds"] else 0.0,
               "cpu_ms_per_call": r["cpu_s"] * 1000 / r["calls"] if r["calls"] else 0.0}
        summary[stack] = row
        print(f"{stack:<26} {row['p50_ms']:8.2f} {row['p95_ms']:8.2f} {row['rps']:18.0f} {row['cpu_ms_per_call']:17.2f} ms")
    (VAR / "stacks.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
