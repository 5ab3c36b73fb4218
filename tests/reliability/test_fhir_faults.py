"""Hostile FHIR servers (issue 11, failures 2 and 5): each fault ends in a timely 412, costs bounded
memory, frees its connections, and the service answers normally afterwards.

The app runs in-process (its real record gathering, real HTTP to loopback fault servers); the
well-behaved server is the service tests' small FHIR server holding the seed patients. Every call
has a 3 s fetch deadline so that the whole module stays short.
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from cds_service.app import create_app
from cds_service.seeding import anchor_date, rebase_bundle, seed_bundles
from cds_service.trials import get_trial
from tests.integration.conftest import fhir_base_url  # noqa: F401 — the real HAPI, a session fixture
from tests.serve_process import running_serve
from tests.service.fhir_server import FhirTestServer
from tests.service.helpers import FEEDBACK_URL, SERVICE_URL, hook_request, is_operation_outcome

from .fault_servers import FaultServer

DEADLINE_S = 3.0
# A whole no-prefetch call to the local server takes ~0.3 s; the bound leaves room for a machine
# under heavy load, and still fails a call that waited for the deadline (or got a 412 at it).
NORMAL_S = 2.0
SEED = "p10-review-ecog2"  # a needs-review patient: the normal call ends in a card


@pytest.fixture(scope="module")
def trial():
    return get_trial("nct05271110")


@pytest.fixture(scope="module")
def bundles() -> dict[str, dict]:
    today = datetime.now(timezone.utc).date()
    return {slug: rebase_bundle(bundle, anchor_date(), today) for slug, bundle in seed_bundles().items()}


@pytest.fixture
def app(tmp_path):
    app = create_app({"TRIALCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'faults.sqlite'}", "TRIALCDS_DEV": True,
                      "TRIALCDS_FETCH_DEADLINE": DEADLINE_S})
    app.config["TESTING"] = True
    return app


@pytest.fixture(scope="module")
def healthy(bundles):
    with FhirTestServer(bundles, page_size=20) as server:
        yield server


def fetch_call(app, bundles, trial, fhir_server: str) -> tuple[int, dict, float]:
    """A hook call without prefetch: everything comes from ``fhir_server``. → (status, body, seconds)."""
    body = hook_request(bundles[SEED], trial, prefetch={})
    body["fhirServer"] = fhir_server
    started = time.monotonic()
    response = app.test_client().post(SERVICE_URL, json=body)
    return response.status_code, response.get_json(), time.monotonic() - started


def assert_serves_normally(app, bundles, trial, healthy) -> None:
    """A normal call right after the fault: 200 with its card well inside the deadline, and the card is on
    record (feedback on it is accepted — nothing was lost)."""
    status, answer, seconds = fetch_call(app, bundles, trial, healthy.base_url)
    assert status == 200, answer
    assert seconds < NORMAL_S, f"normal call took {seconds:.2f} s after the fault"
    [card] = answer["cards"]
    feedback = {"feedback": [{"card": card["uuid"], "outcome": "overridden",
                              "outcomeTimestamp": datetime.now(timezone.utc).isoformat()}]}
    assert app.test_client().post(FEEDBACK_URL, json=feedback).status_code == 200


def assert_412(status: int, answer: dict, seconds: float, limit_s: float, *words: str) -> None:
    assert status == 412, answer
    assert is_operation_outcome(answer)
    diagnostics = " ".join(issue["diagnostics"] for issue in answer["issue"])
    for word in words:
        assert word in diagnostics, diagnostics
    assert seconds < limit_s, f"412 took {seconds:.2f} s (limit {limit_s} s)"


def wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# --- one fault at a time ------------------------------------------------------------------------------

@pytest.mark.slow
def test_trickling_server_412_at_the_deadline_and_its_connections_are_cut(app, bundles, trial, healthy):
    with FaultServer("trickle") as trickle:
        status, answer, seconds = fetch_call(app, bundles, trial, trickle.base_url)
        assert_412(status, answer, seconds, DEADLINE_S + 1.0, "did not answer within")
        # The overran connections were closed by the service (not pooled, not left reading):
        # the trickling server notices within a byte or two.
        assert trickle.connections >= 1
        assert wait_for(lambda: trickle.closed_by_client == trickle.connections, 3.0), \
            (trickle.connections, trickle.closed_by_client)
        assert_serves_normally(app, bundles, trial, healthy)


@pytest.mark.slow
def test_hanging_server_412_at_the_deadline(app, bundles, trial, healthy):
    with FaultServer("hang") as hang:
        status, answer, seconds = fetch_call(app, bundles, trial, hang.base_url)
        assert_412(status, answer, seconds, DEADLINE_S + 1.0, "did not answer within")
        assert wait_for(lambda: hang.closed_by_client == hang.connections, 3.0)
        assert_serves_normally(app, bundles, trial, healthy)


def test_garbage_412_fast(app, bundles, trial, healthy):
    with FaultServer("garbage") as garbage:
        status, answer, seconds = fetch_call(app, bundles, trial, garbage.base_url)
    assert_412(status, answer, seconds, 1.0)
    assert_serves_normally(app, bundles, trial, healthy)


def test_huge_pages_412_response_too_large_with_bounded_memory(tmp_path, bundles, trial, healthy):
    # Every prefetch key asks the same server at once, so the peak is bounded by the number of keys times
    # the byte cap — not by the 10 MB pages (12 keys × 10 MB read whole would be ~115 MiB).
    app = capped_app(tmp_path, TEST_CAP)
    with FaultServer("huge") as huge:
        tracemalloc.start()
        try:
            status, answer, seconds = fetch_call(app, bundles, trial, huge.base_url)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert_412(status, answer, seconds, DEADLINE_S, "response too large")
    bound = cap_bound(trial, TEST_CAP)
    assert peak < bound, f"peak Python allocations {peak / 2**20:.0f} MiB (bound {bound / 2**20:.0f} MiB)"
    assert_serves_normally(app, bundles, trial, healthy)


TEST_CAP = 1024 * 1024


def capped_app(tmp_path: Path, cap: int):
    return create_app({"TRIALCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'capped.sqlite'}", "TRIALCDS_DEV": True,
                       "TRIALCDS_FETCH_DEADLINE": DEADLINE_S, "TRIALCDS_FETCH_MAX_BYTES": str(cap)})


def cap_bound(trial, cap: int) -> int:
    """What a hook call may hold at once: every prefetch key's response at the cap, twice over for the
    buffers and the inflater's windows — far below one uncapped 64 MiB bomb or 12 pages of 10 MB."""
    return (len(trial.service.prefetch) + 1) * cap * 2


def test_gzip_bomb_412_quickly_with_little_memory(tmp_path, bundles, trial, healthy):
    # Every prefetch key is fetched at once from the same bomb (64 MiB each once inflated).
    app = capped_app(tmp_path, TEST_CAP)
    with FaultServer("gzip_bomb") as bomb:
        tracemalloc.start()
        try:
            status, answer, seconds = fetch_call(app, bundles, trial, bomb.base_url)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert_412(status, answer, seconds, 1.5, "response too large")
    bound = cap_bound(trial, TEST_CAP)
    assert peak < bound < 64 * 1024 * 1024, (
        f"peak Python allocations {peak / 2**20:.0f} MiB (bound {bound / 2**20:.0f} MiB; the bomb inflates to 64)")
    assert_serves_normally(app, bundles, trial, healthy)


def test_byte_cap_is_configurable(tmp_path, bundles, trial):
    app = create_app({"TRIALCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'cap.sqlite'}", "TRIALCDS_DEV": True,
                      "TRIALCDS_FETCH_DEADLINE": DEADLINE_S, "TRIALCDS_FETCH_MAX_BYTES": "2048"})
    with FhirTestServer(bundles, page_size=50) as server:  # whole searches on one page: several KB each
        status, answer, _ = fetch_call(app, bundles, trial, server.base_url)
    assert status == 412 and "response too large (over 2048 bytes)" in answer["issue"][0]["diagnostics"]


def test_endless_next_links_end_in_a_412(app, bundles, trial, healthy):
    with FaultServer("endless_next") as endless:
        status, answer, seconds = fetch_call(app, bundles, trial, endless.base_url)
        requests_made = endless.requests
    assert_412(status, answer, seconds, DEADLINE_S + 1.0)
    keys = len(trial.service.prefetch)
    # Bounded pages per key (TRIALCDS_FHIR_MAX_PAGES, 50): never more requests than that for every key.
    assert requests_made <= keys * 50, requests_made
    assert_serves_normally(app, bundles, trial, healthy)


# --- a hostile server does not hold up anyone else ------------------------------------------------------

@pytest.mark.slow
def test_trickling_server_does_not_delay_calls_to_other_servers_or_prefetch_only_calls(app, bundles, trial, healthy):
    """Issue 11, failure 2: calls to a trickling server used to hold every fetch thread of the
    process, so calls to a healthy server waited behind them and got 412s."""
    with FaultServer("trickle") as trickle, ThreadPoolExecutor(4) as pool:
        # Four calls to the trickling server at once: dozens of stuck requests.
        stuck = [pool.submit(fetch_call, app, bundles, trial, trickle.base_url) for _ in range(4)]
        assert wait_for(lambda: trickle.connections >= 4, 2.0)
        # Meanwhile: a call to the healthy server, and one that brings its whole prefetch.
        status, answer, seconds = fetch_call(app, bundles, trial, healthy.base_url)
        assert status == 200 and answer["cards"], answer
        assert seconds < NORMAL_S, f"call to a healthy server took {seconds:.2f} s while another server trickled"
        started = time.monotonic()
        prefetched = app.test_client().post(SERVICE_URL, json=hook_request(bundles[SEED], trial))
        assert prefetched.status_code == 200 and time.monotonic() - started < 1.0
        for future in stuck:
            status, answer, seconds = future.result(timeout=DEADLINE_S + 5)
            assert_412(status, answer, seconds, DEADLINE_S + 1.5, "did not answer within")
    # And right after: the trickling server's threads are free again, the healthy one answers.
    assert_serves_normally(app, bundles, trial, healthy)


@pytest.mark.slow
def test_many_hook_calls_after_a_trickling_server_all_succeed(app, bundles, trial, healthy):
    """The issue's own sequence: a trickling server, then ten calls to a healthy one."""
    with FaultServer("trickle") as trickle:
        with ThreadPoolExecutor(4) as pool:
            stuck = [pool.submit(fetch_call, app, bundles, trial, trickle.base_url) for _ in range(4)]
            statuses = [future.result(timeout=DEADLINE_S + 5)[0] for future in stuck]
        assert statuses == [412] * 4
        results = [fetch_call(app, bundles, trial, healthy.base_url) for _ in range(10)]
    assert [status for status, _, _ in results] == [200] * 10
    assert max(seconds for _, _, seconds in results) < NORMAL_S
    assert threading.active_count() < 200  # no thread pile-up


# --- a real worker process: memory, and the real HAPI afterwards ------------------------------------------

def worker_rss_mib(master_pid: int) -> list[float]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    sizes = []
    for child in children:
        for line in Path(f"/proc/{child}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return sizes


@pytest.mark.slow
@pytest.mark.integration
def test_worker_memory_stays_bounded_and_hapi_is_served_after_huge_pages_and_gzip_bombs(tmp_path, fhir_base_url):
    """Issue 11, failure 5: 10 MB pages left a worker at ~600 MB and a gzip bomb cost ~1 GB per call."""
    patient = f"rel-{uuid.uuid4().hex[:12]}"
    put = requests.put(f"{fhir_base_url}/Patient/{patient}", timeout=30,
                       json={"resourceType": "Patient", "id": patient, "birthDate": "1960-01-01", "gender": "female"})
    assert put.status_code in (200, 201), put.text[:300]
    env = {**os.environ, "TRIALCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite'}"}
    env.pop("TRIALCDS_DEV", None)

    def call(base: str, fhir_server: str, patient_id: str = "rss-test") -> requests.Response:
        body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()), "fhirServer": fhir_server,
                "context": {"userId": "Practitioner/rel", "patientId": patient_id}}
        return requests.post(base + SERVICE_URL, json=body, timeout=30)

    with running_serve(["--dev", "--workers", "1"], env, tmp_path / "serve.log") as (base, process):
        assert call(base, fhir_base_url, patient).status_code == 200  # warm: the worker's pools exist
        [start] = worker_rss_mib(process.pid)
        for mode in ("huge", "gzip_bomb"):
            with FaultServer(mode) as server:
                for _ in range(5):
                    started = time.monotonic()
                    response = call(base, server.base_url)
                    assert response.status_code == 412, response.text[:300]
                    assert "response too large" in response.text
                    assert time.monotonic() - started < 3.0
        [after] = worker_rss_mib(process.pid)
        # The real HAPI, right after: answered normally (an empty chart: no card, but a 200).
        response = call(base, fhir_base_url, patient)
        assert response.status_code == 200 and response.json() == {"cards": []}, response.text[:300]
    assert after - start < 60, f"worker RSS grew from {start:.0f} to {after:.0f} MiB"


@pytest.mark.slow
def test_calls_stuck_on_a_trickling_server_leave_a_real_worker_free_for_prefetch_calls(tmp_path, bundles, trial):
    """One worker process, eight calls waiting on a trickling server at once (more than the four
    threads a worker used to have): a call that brings its prefetch is still answered at once."""
    env = {**os.environ, "TRIALCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite'}",
           "TRIALCDS_FETCH_DEADLINE": str(DEADLINE_S)}
    env.pop("TRIALCDS_DEV", None)
    with running_serve(["--dev", "--workers", "1"], env, tmp_path / "serve.log") as (base, _), \
            FaultServer("trickle") as trickle, ThreadPoolExecutor(8) as pool:
        def stuck_call() -> int:
            body = hook_request(bundles[SEED], trial, prefetch={})
            body["fhirServer"] = trickle.base_url
            return requests.post(base + SERVICE_URL, json=body, timeout=30).status_code

        stuck = [pool.submit(stuck_call) for _ in range(8)]
        assert wait_for(lambda: trickle.connections >= 8, DEADLINE_S)
        started = time.monotonic()
        response = requests.post(base + SERVICE_URL, json=hook_request(bundles[SEED], trial), timeout=30)
        seconds = time.monotonic() - started
        assert response.status_code == 200 and response.json()["cards"]
        assert seconds < 1.0, f"prefetch call took {seconds:.2f} s behind calls stuck on a trickling server"
        assert [future.result(timeout=30) for future in stuck] == [412] * 8
