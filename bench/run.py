"""``make bench``: trialcds against a HealthChain peer and a plain-HTTP baseline, side by side in one run.

a. Prefetch path — ``trialcds serve --dev --workers 2`` (the complete evaluation) against a
   HealthChain CDS Hooks patient-view service that answers one fixed card (bench/peer_app.py, served
   by uvicorn with 2 workers from bench/.venv). Same body for both: the full prefetch of one seed
   patient rebased to today. Sequential latency (p50/p95 after warm-up) and throughput with 8
   concurrent keep-alive clients, measured by bench/loadgen.py in its own process; rounds alternate
   between the two servers so that drift on a shared machine hits both alike.
b. No-prefetch path — the same hook with ``fhirServer`` = the local HAPI (seeded with
   ``trialcds seed``) against fetching the trial's prefetch queries in parallel with plain requests
   (bench/fetch_baseline.py).
c. Growth — ``evaluate_resources`` on records of 10 … 10 000 resources (bench/growth.py), and the
   memory (VmRSS) of each serve worker after the load of a.
d. Where the time goes — CPU per stage of one hook call on the same body, in-process
   (bench/profile_hook.py --json): printed after the summary.

Every loop is bounded, every server listens on 127.0.0.1 only and is stopped on the way out.
``--quick`` runs fewer requests (a smoke test); ``--skip-hapi`` leaves out b. Results also go to
var/bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (DEFAULT_SEED, ROOT, SERVICE_ID, VAR, Server, free_port, hook_request,  # noqa: E402
                          vmrss_kib, wait_http)
from bench.loadgen import percentile  # noqa: E402

PY = sys.executable
PEER_PY = ROOT / "bench" / ".venv" / "bin" / "python"
TRIALCDS = Path(PY).with_name("trialcds")
WORKERS = 2
CLIENTS = 8


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_json(argv: list[str], timeout: float) -> dict[str, Any]:
    """Run a measuring subprocess (load generator, baseline, growth) and read its one JSON line."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{Path(argv[1]).name} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def post_json(url: str, body: bytes, timeout: float = 30) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:500]


# --- servers ---------------------------------------------------------------------------------------------

def start_ours(port: int) -> Server:
    database = VAR / "trialcds-bench.sqlite"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    server = Server("ours", [str(TRIALCDS), "serve", "--dev", "--workers", str(WORKERS), "--host", "127.0.0.1",
                             "--port", str(port)], env={"TRIALCDS_DATABASE_URL": f"sqlite:///{database}"})
    wait_http(f"http://127.0.0.1:{port}/cds-services", server)
    return server


def start_peer(port: int) -> Server:
    if not PEER_PY.exists():
        raise RuntimeError(f"{PEER_PY} is missing: run 'make bench' (it creates bench/.venv)")
    # cwd var/bench: no healthchain.yaml there, so HealthChain runs on its defaults.
    server = Server("peer", [str(PEER_PY), str(ROOT / "bench" / "peer_serve.py"), "peer_app:app",
                             "--app-dir", str(ROOT / "bench"), "--workers", str(WORKERS),
                             "--host", "127.0.0.1", "--port", str(port)], cwd=VAR)
    wait_http(f"http://127.0.0.1:{port}/cds/cds-discovery", server)
    return server


# --- a. prefetch path ------------------------------------------------------------------------------------

def part_a(ours_url: str, peer_url: str, body_file: Path, quick: bool) -> dict[str, Any]:
    body = body_file.read_bytes()
    for name, url in (("ours", ours_url), ("peer", peer_url)):
        status, answer = post_json(url, body)
        if status != 200 or not isinstance(answer, dict) or "cards" not in answer:
            raise RuntimeError(f"{name} answered HTTP {status}: {str(answer)[:300]}")
        cards = answer["cards"]
        log(f"  {name}: HTTP 200, {len(cards)} card(s): {cards[0]['summary'] if cards else '-'}")

    # Short rounds, alternating which server goes first: a burst of load from elsewhere on a shared
    # machine then lands on both rather than on one.
    rounds, requests = (2, 60) if quick else (6, 125)
    samples: dict[str, list[float]] = {"ours": [], "peer": []}
    for i in range(rounds):
        order = [("ours", ours_url), ("peer", peer_url)]
        for name, url in order if i % 2 == 0 else order[::-1]:
            result = run_json([PY, "bench/loadgen.py", "latency", "--url", url, "--body", str(body_file),
                               "--warmup", "50" if i == 0 else "10", "--requests", str(requests),
                               "--max-seconds", "30", "--raw"], timeout=120)
            if result["errors"]:
                raise RuntimeError(f"{name}: {result['errors']} errors, first: {result['first_error']}")
            samples[name] += result["samples_ms"]
            log(f"  latency round {i + 1} {name}: p50 {result['p50_ms']:.2f} ms  p95 {result['p95_ms']:.2f} ms")
    latency = {name: {"p50_ms": percentile(sorted(s), 50), "p95_ms": percentile(sorted(s), 95), "n": len(s)}
               for name, s in samples.items()}

    t_rounds, t_requests = (1, 300) if quick else (4, 800)
    totals = {"ours": [0, 0.0], "peer": [0, 0.0]}
    for i in range(t_rounds):
        order = [("ours", ours_url), ("peer", peer_url)]
        for name, url in order if i % 2 == 0 else order[::-1]:
            result = run_json([PY, "bench/loadgen.py", "throughput", "--url", url, "--body", str(body_file),
                               "--clients", str(CLIENTS), "--requests", str(t_requests), "--max-seconds", "20"],
                              timeout=120)
            if result["errors"]:
                raise RuntimeError(f"{name}: {result['errors']} errors, first: {result['first_error']}")
            totals[name][0] += result["requests"]
            totals[name][1] += result["seconds"]
            log(f"  throughput round {i + 1} {name}: {result['rps']:.0f} req/s "
                f"({result['requests']} in {result['seconds']:.1f} s; p50 {result['p50_ms']:.1f} ms)")
    throughput = {name: {"rps": n / s if s else 0.0, "requests": n, "seconds": s} for name, (n, s) in totals.items()}
    return {"latency": latency, "throughput": throughput, "body_bytes": len(body)}


def worker_rss(server: Server) -> list[float]:
    """VmRSS (MiB) of each worker process of a server (its master's children, less multiprocessing's
    resource tracker, which uvicorn's spawned workers bring along)."""
    values = []
    for pid in server.children():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmdline:
            values.append(vmrss_kib(pid))
    return [v / 1024 for v in values if v]


# --- b. no-prefetch path -----------------------------------------------------------------------------

def hapi_running() -> bool:
    pid_file = ROOT / "var" / "hapi.pid"
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
        return True
    except (OSError, ValueError):
        return False


def part_b(ours_port: int, seed: str, quick: bool, fhir_base: str) -> dict[str, Any]:
    log(f"  seeding {fhir_base} with trialcds seed")
    seeded = subprocess.run([str(TRIALCDS), "seed", "--fhir-server", fhir_base], capture_output=True, text=True,
                            timeout=600, cwd=ROOT)
    if seeded.returncode != 0:
        raise RuntimeError(f"trialcds seed failed:\n{seeded.stderr[-1500:]}")
    body, patient = hook_request(seed, prefetch=False, fhir_server=fhir_base)
    body_file = VAR / "no-prefetch-body.json"
    body_file.write_bytes(body)
    url = f"http://127.0.0.1:{ours_port}/cds-services/{SERVICE_ID}"
    status, answer = post_json(url, body)
    if status != 200:
        raise RuntimeError(f"ours without prefetch answered HTTP {status}: {str(answer)[:300]}")
    log(f"  ours without prefetch: HTTP 200, {len(answer['cards'])} card(s)")

    rounds, requests = (1, 10) if quick else (2, 30)
    samples: dict[str, list[float]] = {"ours": [], "baseline": []}
    for i in range(rounds):
        warmup = "20" if i == 0 else "3"
        runs = [("ours", [PY, "bench/loadgen.py", "latency", "--url", url, "--body", str(body_file),
                          "--warmup", warmup, "--requests", str(requests), "--max-seconds", "60", "--raw"]),
                ("baseline", [PY, "bench/fetch_baseline.py", "--fhir-server", fhir_base, "--patient", patient,
                              "--warmup", warmup, "--requests", str(requests), "--max-seconds", "60", "--raw"])]
        for name, argv in runs if i % 2 == 0 else runs[::-1]:
            result = run_json(argv, timeout=300)
            if result.get("errors"):
                raise RuntimeError(f"{name}: {result['errors']} errors, first: {result.get('first_error')}")
            samples[name] += result["samples_ms"]
            extra = f", {result['resources']} resources from {result['queries']} queries" if name == "baseline" else ""
            log(f"  round {i + 1} {name}: p50 {result['p50_ms']:.1f} ms  p95 {result['p95_ms']:.1f} ms{extra}")
    return {name: {"p50_ms": percentile(sorted(s), 50), "p95_ms": percentile(sorted(s), 95), "n": len(s)}
            for name, s in samples.items()}


def fhir_up() -> tuple[str | None, bool, str]:
    """(base URL or None, started by us, why not)."""
    was_running = hapi_running()
    log("starting the local HAPI FHIR server (scripts/fhir-up.sh; the first build takes minutes)"
        if not was_running else "reusing the local HAPI FHIR server that is already running")
    try:
        done = subprocess.run(["bash", "scripts/fhir-up.sh"], capture_output=True, text=True, timeout=2400, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return None, not was_running, "fhir-up.sh did not finish within 40 min"
    if done.returncode != 0:
        why = "Java 17+ or Maven missing" if done.returncode == 3 else f"fhir-up.sh exited {done.returncode}"
        sys.stderr.write(done.stderr[-2000:])
        return None, not was_running and hapi_running(), why
    return done.stdout.strip().splitlines()[-1], not was_running, ""


# --- the summary ---------------------------------------------------------------------------------------

def fmt(value: float | None, digits: int = 2) -> str:
    if value is None or value != value:  # None or NaN
        return "—"
    return f"{value:,.{digits}f}"


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    rows = []

    def ratio_row(metric: str, ours: float | None, other: float | None, target: str, op: str, limit: float,
                  digits: int = 2) -> None:
        ratio = ours / other if ours is not None and other else None
        met = "—" if ratio is None else ("yes" if (ratio <= limit if op == "<=" else ratio >= limit) else "NO")
        rows.append((metric, fmt(ours, digits), fmt(other, digits), f"{fmt(ratio)}×" if ratio else "—", target, met))

    a = results.get("a")
    if a:
        lo, lp = a["latency"]["ours"], a["latency"]["peer"]
        ratio_row("a. prefetch latency p50 (ms)", lo["p50_ms"], lp["p50_ms"], "≤ 1.00×", "<=", 1.0)
        ratio_row("a. prefetch latency p95 (ms)", lo["p95_ms"], lp["p95_ms"], "≤ 1.00×", "<=", 1.0)
        to, tp = a["throughput"]["ours"], a["throughput"]["peer"]
        ratio_row(f"a. throughput, {CLIENTS} clients (req/s)", to["rps"], tp["rps"], "≥ 1.00×", ">=", 1.0, 0)
    elif "a_error" in results:
        rows.append(("a. prefetch path", "failed", "", "", "", "see the log above"))
    b = results.get("b")
    if b:
        ratio_row("b. no-prefetch latency p50 (ms)", b["ours"]["p50_ms"], b["baseline"]["p50_ms"], "≤ 1.25×", "<=", 1.25)
        ratio_row("b. no-prefetch latency p95 (ms)", b["ours"]["p95_ms"], b["baseline"]["p95_ms"], "≤ 1.25×", "<=", 1.25)
    elif "b_skipped" in results:
        reason = results["b_skipped"]
        rows.append(("b. no-prefetch path", "not run", "", "", "",
                     "see the log above" if reason.startswith("failed") else reason[:40]))
    c = results.get("c")
    if c:
        for row in c["rows"]:
            rows.append((f"c. evaluation, {row['resources']:,} resources (ms)", fmt(row["ms"], 3), "", "", "", ""))
        rows.append(("c. fitted slope (µs per resource)", fmt(c["slope_us_per_resource"]), "", "", "", ""))
        lin = c["per_resource_ratio_10000_vs_1000"]
        rows.append(("c. µs/resource at 10 000 ÷ at 1 000", fmt(lin), "", f"{fmt(lin)}×" if lin else "—",
                     "≤ 1.25× (linear)", "—" if lin is None else ("yes" if lin <= 1.25 else "NO")))
        lin_nogc = c.get("per_resource_ratio_10000_vs_1000_without_gc")
        if lin_nogc is not None:
            rows.append(("c.   the same with the cyclic GC off", fmt(lin_nogc), "", f"{fmt(lin_nogc)}×",
                         "(diagnostic)", "—"))
    mem = results.get("memory")
    if mem and mem.get("ours"):
        peer = max(mem["peer"]) if mem.get("peer") else None
        ours = max(mem["ours"])
        rows.append(("c. RSS per serve worker after load (MiB)", fmt(ours, 1), fmt(peer, 1),
                     f"{fmt(ours / peer)}×" if peer else "—", "(reported)", "—"))
    return rows


def print_summary(results: dict[str, Any]) -> None:
    header = ("metric", "ours", "peer/baseline", "ratio", "target", "met?")
    rows = [header] + summary_rows(results)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    line = "+".join("-" * (w + 2) for w in widths)
    print()
    print("SUMMARY  " + results["context"])
    print(line)
    for i, row in enumerate(rows):
        print(" | ".join(cell.ljust(w) if j == 0 else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths))))
        if i == 0:
            print(line)
    print(line)


def print_stages(d: dict[str, Any] | None) -> None:
    if not d:
        return
    print(f"\nd. CPU per stage of one hook call ({d['seed']}, body {d['body_bytes']:,} bytes, in-process, "
          f"{d['calls']} calls): {d['cpu_ms']:.3f} ms CPU per call in all")
    width = max(len(row["stage"]) for row in d["stages"])
    for row in d["stages"]:
        print(f"  {row['stage']:<{width}}  {row['ms']:7.3f} ms  {row['share'] * 100:5.1f} %")


# --- main ----------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", default=DEFAULT_SEED, help=f"seed patient for a. and b. (default {DEFAULT_SEED})")
    parser.add_argument("--quick", action="store_true", help="fewer requests: a smoke test of the bench itself")
    parser.add_argument("--skip-hapi", action="store_true", help="leave out b. (no HAPI FHIR server)")
    args = parser.parse_args(argv)
    VAR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: dict[str, Any] = {
        "context": f"seed {args.seed}; {os.cpu_count()} cores; Python {platform.python_version()}; "
                   f"{WORKERS} workers each; {time.strftime('%Y-%m-%d %H:%M')}",
    }
    failed = False

    log("c. evaluation time as the record grows (in-process)")
    try:
        results["c"] = run_json([PY, "bench/growth.py", "--seed", args.seed, "--json"], timeout=300)
        for row in results["c"]["rows"]:
            log(f"  {row['resources']:>6} resources: {row['ms']:.3f} ms ({row['us_per_resource']:.2f} µs/resource)")
    except Exception as exc:  # noqa: BLE001 — reported, the other parts still run
        failed = True
        log(f"  c. failed: {exc}")

    log("d. CPU per stage of one hook call (in-process, bench/profile_hook.py)")
    try:
        results["d"] = run_json([PY, "bench/profile_hook.py", "--json", "--seed", args.seed,
                                 "--calls", "100" if args.quick else "400"], timeout=300)
    except Exception as exc:  # noqa: BLE001
        failed = True
        log(f"  d. failed: {exc}")

    servers: list[Server] = []
    started_hapi = False
    try:
        body, _ = hook_request(args.seed)
        body_file = VAR / "prefetch-body.json"
        body_file.write_bytes(body)
        ours_port, peer_port = free_port(), free_port()
        log(f"a. starting trialcds serve --dev --workers {WORKERS} on 127.0.0.1:{ours_port} "
            f"and the HealthChain peer on 127.0.0.1:{peer_port}; body {len(body):,} bytes")
        ours = start_ours(ours_port)
        servers.append(ours)
        peer = start_peer(peer_port)
        servers.append(peer)
        try:
            results["a"] = part_a(f"http://127.0.0.1:{ours_port}/cds-services/{SERVICE_ID}",
                                  f"http://127.0.0.1:{peer_port}/cds/cds-services/{SERVICE_ID}", body_file, args.quick)
        except Exception as exc:  # noqa: BLE001
            failed = True
            results["a_error"] = str(exc)
            log(f"  a. failed: {exc}")
        results["memory"] = {"ours": worker_rss(ours), "peer": worker_rss(peer)}
        log(f"  RSS per worker after the load: ours {[round(v, 1) for v in results['memory']['ours']]} MiB, "
            f"peer {[round(v, 1) for v in results['memory']['peer']]} MiB")
        peer.stop()

        if args.skip_hapi:
            results["b_skipped"] = "--skip-hapi"
        else:
            log("b. no-prefetch path against the local HAPI FHIR server")
            for attempt in (1, 2):  # a shared HAPI may be stopped under us by whoever started it
                fhir_base, ours_hapi, why = fhir_up()
                started_hapi = started_hapi or ours_hapi
                if fhir_base is None:
                    results["b_skipped"] = why
                    log(f"  b. not run: {why}")
                    break
                try:
                    results["b"] = part_b(ours_port, args.seed, args.quick, fhir_base)
                    results.pop("b_skipped", None)
                    break
                except Exception as exc:  # noqa: BLE001
                    results["b_skipped"] = f"failed: {exc}"
                    log(f"  b. failed: {exc}")
                    if attempt == 2 or hapi_running():
                        failed = True
                        break
                    log("  the HAPI server went away during the run; starting it again and retrying b. once")
    except Exception:  # noqa: BLE001
        failed = True
        traceback.print_exc()
    finally:
        for server in reversed(servers):
            server.stop()
        if started_hapi:
            log("stopping the HAPI FHIR server this run started (scripts/fhir-down.sh)")
            subprocess.run(["bash", "scripts/fhir-down.sh"], cwd=ROOT, timeout=120, capture_output=True)

    results["seconds"] = time.monotonic() - started
    (VAR / "results.json").write_text(json.dumps(results, indent=2))
    print_summary(results)
    print_stages(results.get("d"))
    print(f"({results['seconds']:.0f} s; raw results in {VAR.relative_to(ROOT) / 'results.json'}, "
          f"server logs in {VAR.relative_to(ROOT)}/)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
