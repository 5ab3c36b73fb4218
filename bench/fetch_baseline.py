"""The baseline of ``make bench`` part b: the trial's prefetch queries fetched with a plain HTTP client.

Every template of ``get_trial().service.prefetch`` is rendered for the patient and fetched from the
FHIR server in parallel (one thread per template, one shared ``requests.Session`` with keep-alive),
each search following its ``next`` links to the last page and every page parsed as JSON — the
least any service must do to read that patient's record without prefetch. Sequential rounds after
a warm-up, bounded in count and time; prints one JSON object like ``loadgen.py latency``::

    .venv/bin/python bench/fetch_baseline.py --fhir-server http://127.0.0.1:8090/fhir --patient ID \
        [--warmup 10] [--requests 100] [--max-seconds 60] [--raw]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loadgen import LOOPBACK, percentile  # noqa: E402
from cds_service.trials import get_trial  # noqa: E402

MAX_PAGES = 50


def rendered_queries(patient: str) -> list[str]:
    return [template.replace("{{context.patientId}}", quote(patient, safe=""))
            for template in get_trial().service.prefetch.values()]


def fetch_all(session: requests.Session, pool: ThreadPoolExecutor, base: str, queries: list[str]) -> int:
    """Fetch every query (and its next pages) in parallel; returns the number of resources read."""
    return sum(pool.map(lambda query: fetch_one(session, base, query), queries))


def fetch_one(session: requests.Session, base: str, query: str) -> int:
    url = f"{base}/{query}"
    count = 0
    for _ in range(MAX_PAGES):
        response = session.get(url, headers={"Accept": "application/fhir+json"}, timeout=30)
        response.raise_for_status()
        body = response.json()
        if body.get("resourceType") != "Bundle":
            return 1
        count += len(body.get("entry") or ())
        url = next((link["url"] for link in body.get("link") or () if link.get("relation") == "next"), None)
        if not url:
            return count
        url = urljoin(base + "/", url)
    raise RuntimeError(f"more than {MAX_PAGES} pages for {query}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fhir-server", required=True)
    parser.add_argument("--patient", required=True)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--max-seconds", type=float, default=60)
    parser.add_argument("--raw", action="store_true")
    args = parser.parse_args(argv)
    base = args.fhir_server.rstrip("/")
    if urlsplit(base).hostname not in LOOPBACK:
        raise SystemExit("fetch_baseline: loopback FHIR servers only")
    queries = rendered_queries(args.patient)
    with requests.Session() as session, ThreadPoolExecutor(len(queries)) as pool:
        session.trust_env = False
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=len(queries), max_retries=0)
        session.mount("http://", adapter)
        resources = 0
        for _ in range(args.warmup):
            resources = fetch_all(session, pool, base, queries)
        times: list[float] = []
        deadline = time.perf_counter() + args.max_seconds
        for _ in range(args.requests):
            if time.perf_counter() > deadline:
                break
            start = time.perf_counter()
            resources = fetch_all(session, pool, base, queries)
            times.append(time.perf_counter() - start)
    times_ms = sorted(t * 1000 for t in times)
    result = {"mode": "fetch-baseline", "queries": len(queries), "resources": resources, "requests": len(times),
              "errors": 0, "p50_ms": percentile(times_ms, 50), "p95_ms": percentile(times_ms, 95),
              "mean_ms": sum(times_ms) / len(times_ms) if times_ms else float("nan")}
    if args.raw:
        result["samples_ms"] = [t * 1000 for t in times]
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
