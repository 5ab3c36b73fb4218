"""Slow clients (issue 11, failure 4): 100 slowloris connections held for 20 s against a real
``trialcds serve`` (2 workers, as deployed) while a normal client's hook calls keep answering
within a second each. Loopback only; one thread drives all the slow sockets."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from datetime import datetime, timezone

import pytest
import requests

from cds_service.seeding import anchor_date, patient_id, prefetch_from_bundle, rebase_bundle, seed_bundles
from cds_service.trials import get_trial
from tests.serve_process import running_serve

SERVICE_PATH = "/cds-services/nct05271110"
SLOW_CONNECTIONS = 100
HOLD_S = 20.0
ANSWER_WITHIN_S = 1.0


class Slowloris:
    """``count`` connections that each send a request one byte at a time (half stop inside the
    headers, half inside a body they announced), reconnecting whenever the server drops them."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.sockets: list[tuple[socket.socket, bytes, int]] = []
        self.dropped = 0

    def _request(self, index: int) -> bytes:
        if index % 2:
            return (f"POST {SERVICE_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    "Content-Length: 100000\r\n\r\n" + "{" + " " * 99_999).encode()
        return (f"GET /cds-services HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "X-Slow: a\r\n" * 10_000).encode()

    def _open(self, index: int) -> tuple[socket.socket, bytes, int]:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        sock.setblocking(False)
        request = self._request(index)
        head_end = request.index(b"\r\n") + 2
        sock.send(request[:head_end])  # the request line at once, the rest a byte at a time
        return sock, request, head_end

    def start(self) -> None:
        self.sockets = [self._open(i) for i in range(self.count)]

    def tick(self) -> None:
        """One more byte on every connection (headers first, so they reach the body after ~40 s)."""
        for i, (sock, request, sent) in enumerate(self.sockets):
            try:
                if sent < len(request):
                    sent += sock.send(request[sent: sent + 1])
                else:
                    sock.recv(65536)
                self.sockets[i] = (sock, request, sent)
            except BlockingIOError:
                pass
            except OSError:
                self.dropped += 1
                sock.close()
                self.sockets[i] = self._open(i)

    def close(self) -> None:
        for sock, _, _ in self.sockets:
            sock.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    work = tmp_path_factory.mktemp("slowloris")
    env = {**os.environ, "TRIALCDS_DATABASE_URL": f"sqlite:///{work / 'serve.sqlite'}"}
    env.pop("TRIALCDS_DEV", None)
    with running_serve(["--dev", "--workers", "2"], env, work / "serve.log") as (base, _):
        yield base


def hook_body() -> bytes:
    trial = get_trial("nct05271110")
    bundle = rebase_bundle(seed_bundles()["p10-review-ecog2"], anchor_date(), datetime.now(timezone.utc).date())
    return json.dumps({"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
                       "context": {"userId": "Practitioner/rel", "patientId": patient_id(bundle)},
                       "prefetch": prefetch_from_bundle(bundle, trial)}).encode()


@pytest.mark.slow
def test_hook_calls_answer_within_a_second_while_100_slow_clients_hold_connections(service):
    body = hook_body()
    headers = {"Content-Type": "application/json"}
    slow = Slowloris(int(service.rsplit(":", 1)[1]), SLOW_CONNECTIONS)
    slow.start()
    timings: list[float] = []
    failures: list[str] = []
    try:
        started = time.monotonic()
        while time.monotonic() - started < HOLD_S:
            slow.tick()
            call_started = time.monotonic()
            try:
                # A fresh connection per call, as a probe or a new EHR connection would be.
                response = requests.post(service + SERVICE_PATH, data=body, headers=headers, timeout=5)
                if response.status_code != 200 or not response.json()["cards"]:
                    failures.append(f"HTTP {response.status_code}")
            except requests.RequestException as exc:
                failures.append(type(exc).__name__)
            timings.append(time.monotonic() - call_started)
            time.sleep(0.25)
        open_slow = sum(1 for sock, _, _ in slow.sockets if sock.fileno() != -1)
    finally:
        slow.close()
    assert open_slow == SLOW_CONNECTIONS
    assert len(timings) >= 20
    assert not failures, failures[:5]
    assert max(timings) < ANSWER_WITHIN_S, f"slowest hook call {max(timings):.2f} s (of {len(timings)})"
    with requests.get(service + "/healthz", timeout=2) as health:
        assert health.status_code == 200
