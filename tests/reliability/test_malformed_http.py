"""Malformed HTTP against a real ``trialcds serve`` (issue 11, failure 8, HTTP parts): every refusal
is a 4xx with an OperationOutcome (JSON, never an HTML page), echoes nothing of the request, and
the service answers normally afterwards. Raw sockets, so the bytes are exactly the broken ones."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from datetime import datetime, timezone

import pytest

from cds_service.seeding import anchor_date, patient_id, prefetch_from_bundle, rebase_bundle, seed_bundles
from cds_service.trials import get_trial
from tests.serve_process import running_serve

SERVICE_PATH = "/cds-services/nct05271110"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    work = tmp_path_factory.mktemp("malformed")
    env = {**os.environ, "TRIALCDS_DATABASE_URL": f"sqlite:///{work / 'serve.sqlite'}"}
    env.pop("TRIALCDS_DEV", None)
    with running_serve(["--dev", "--workers", "1"], env, work / "serve.log") as (base, _):
        yield int(base.rsplit(":", 1)[1])


def exchange(port: int, raw: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw``, read the whole answer (the server closes after an error) → (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may refuse before reading everything; its answer is still there
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            if _complete(data):
                break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), data[:200]
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def assert_outcome(status: int, headers: dict[str, str], body: bytes, *, statuses: tuple[int, ...],
                   not_echoed: bytes | None = None) -> None:
    assert status in statuses, (status, body[:300])
    assert "json" in headers.get("content-type", ""), headers
    outcome = json.loads(body)
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["diagnostics"]
    if not_echoed:
        assert not_echoed not in body


def request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
             *(f"{k}: {v}" for k, v in (headers or {}).items())]
    if body and not any(k.lower() == "transfer-encoding" for k in headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def hook_body() -> bytes:
    trial = get_trial("nct05271110")
    bundle = rebase_bundle(seed_bundles()["p10-review-ecog2"], anchor_date(), datetime.now(timezone.utc).date())
    return json.dumps({"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
                       "context": {"userId": "Practitioner/rel", "patientId": patient_id(bundle)},
                       "prefetch": prefetch_from_bundle(bundle, trial)}).encode()


def assert_still_serving(port: int) -> None:
    status, _, body = exchange(port, request("POST", SERVICE_PATH, hook_body(), {"Content-Type": "application/json"}))
    assert status == 200, body[:300]
    assert json.loads(body)["cards"]


# --- the cases -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("chunks", [
    b"zz\r\n{}\r\n0\r\n\r\n",                    # a chunk size that is not hex
    b"5\r\n{}\r\n0\r\n\r\n",                     # a chunk shorter than its size, then garbage
    b"2\r\n{}XX0\r\n\r\n",                       # no CRLF after the chunk data
    b"-2\r\n{}\r\n0\r\n\r\n",                    # a negative size
    b"2\r\n{}\r\n0\r\nX-Trailer\r\n\r\n",         # a trailer line that is not a header
])
def test_bad_chunked_encoding_is_a_4xx_outcome(service, chunks):
    raw = request("POST", SERVICE_PATH, chunks, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    status, headers, body = exchange(service, raw)
    assert_outcome(status, headers, body, statuses=(400, 413))
    assert_still_serving(service)


def test_too_long_url_is_a_414_outcome_without_the_url(service):
    marker = "LONGURLMARKER" + "a" * 9000
    status, headers, body = exchange(service, request("GET", f"/cds-services/{marker}"))
    assert_outcome(status, headers, body, statuses=(414,), not_echoed=b"LONGURLMARKER")
    assert_still_serving(service)


def test_too_large_headers_are_a_431_outcome(service):
    raw = request("GET", "/cds-services", headers={"X-Big": "HEADERMARKER" + "b" * 20000})
    status, headers, body = exchange(service, raw)
    assert_outcome(status, headers, body, statuses=(400, 431), not_echoed=b"HEADERMARKER")
    too_many = request("GET", "/cds-services", headers={f"X-H{i}": "1" for i in range(150)})
    status, headers, body = exchange(service, too_many)
    assert_outcome(status, headers, body, statuses=(400, 431))
    assert_still_serving(service)


def test_not_http_at_all_is_a_400_outcome(service):
    status, headers, body = exchange(service, b"\x16\x03\x01 NOT HTTP \r\n\r\n")
    assert_outcome(status, headers, body, statuses=(400,))


def test_unknown_service_is_a_404_that_does_not_echo_the_id(service):
    raw = request("POST", "/cds-services/SERVICEIDMARKER", b"{}", {"Content-Type": "application/json"})
    status, headers, body = exchange(service, raw)
    assert_outcome(status, headers, body, statuses=(404,), not_echoed=b"SERVICEIDMARKER")


@pytest.mark.parametrize("path", [SERVICE_PATH + "%2Ffeedback", SERVICE_PATH + "%2ffeedback"])
def test_an_encoded_slash_is_not_a_path_separator(service, path):
    feedback = json.dumps({"feedback": [{"card": str(uuid.uuid4()), "outcome": "overridden",
                                         "outcomeTimestamp": "2026-11-24T10:00:00Z"}]}).encode()
    status, headers, body = exchange(service, request("POST", path, feedback, {"Content-Type": "application/json"}))
    assert_outcome(status, headers, body, statuses=(404,), not_echoed=b"feedback")


def test_an_announced_body_over_the_cap_is_refused_before_it_is_sent(service):
    head = (f"POST {SERVICE_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 50000000\r\n\r\n").encode()
    started = time.monotonic()
    status, headers, body = exchange(service, head)  # not one byte of the 50 MB follows
    assert_outcome(status, headers, body, statuses=(413,))
    assert time.monotonic() - started < 2.0
    assert_still_serving(service)


def test_wrong_method_is_a_405_outcome_with_allow(service):
    status, headers, body = exchange(service, request("GET", SERVICE_PATH))
    assert_outcome(status, headers, body, statuses=(405,))
    assert "POST" in headers.get("allow", "")
