"""``trialcds serve --dev`` for real: a gunicorn process on a free port, called over HTTP."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import pytest

from cds_service.cli import build_parser
from cds_service.commands import serve

from tests.serve_process import running_serve

from .fhir_server import FhirTestServer
from .helpers import SERVICE_URL, hook_request


def http(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture
def running_service(tmp_path):
    env = {**os.environ, "TRIALCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite'}"}
    env.pop("TRIALCDS_DEV", None)
    log_path = tmp_path / "serve.log"
    with running_serve(["--dev", "--workers", "2"], env, log_path) as (base, process):
        yield base, process, log_path


def test_serve_dev_answers_discovery_and_a_hook_call(running_service, bundles, trial):
    base, process, log = running_service
    status, discovery = http("GET", f"{base}/cds-services")
    assert status == 200 and discovery["services"][0]["id"] == "nct05271110"
    status, answer = http("POST", base + SERVICE_URL, hook_request(bundles["p01-eligible-gem-nabpac"], trial))
    assert status == 200
    [card] = answer["cards"]
    assert card["extension"]["trialcds.eligibility"]["verdict"] == "likely-eligible"
    status, outcome = http("POST", base + SERVICE_URL, {"hook": "patient-view"})
    assert status == 400 and outcome["resourceType"] == "OperationOutcome"
    assert "DEVELOPMENT MODE" in log.read_text()
    process.terminate()
    assert process.wait(timeout=15) == 0


def test_serve_fetches_from_fhir_server_and_never_logs_the_token(running_service, bundles, trial):
    base, _, log = running_service
    token = "very-secret-access-token-4711"
    with FhirTestServer(bundles, token=token) as fhir:
        body = hook_request(bundles["p10-review-ecog2"], trial, prefetch={})
        body["fhirServer"] = fhir.base_url
        body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer", "expires_in": 300,
                                     "scope": "user/*.read", "subject": "trialcds"}
        status, answer = http("POST", base + SERVICE_URL, body)
        body["fhirAuthorization"]["access_token"] = "wrong"
        failed, _ = http("POST", base + SERVICE_URL, body)
    assert status == 200
    assert answer["cards"][0]["extension"]["trialcds.eligibility"]["verdict"] == "needs-review"
    assert failed == 412
    assert fhir.requests and all(r["authorization"] in (f"Bearer {token}", "Bearer wrong") for r in fhir.requests)
    time.sleep(0.3)  # let gunicorn flush its log lines
    text = log.read_text()
    assert "fetched observations" in text  # the log is there …
    assert token not in text and "Bearer wrong" not in text  # … without the token


def test_serve_defaults():
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.dev) == ("127.0.0.1", 8080, False)
    assert args.workers == serve.cpu_count() >= 1


@pytest.mark.parametrize("argv", [["serve", "--port", "0"], ["serve", "--port", "70000"], ["serve", "--workers", "0"]])
def test_serve_refuses_bad_numbers(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2


def test_production_start_checks_the_configuration_first(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setenv("TRIALCDS_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite'}")
    monkeypatch.delenv("TRIALCDS_DEV", raising=False)
    monkeypatch.setattr(serve, "check_production_config", lambda config: calls.append(config) or _stop())
    with pytest.raises(_Stopped):
        serve.run(build_parser().parse_args(["serve"]))
    assert calls and calls[0]["TRIALCDS_DEV"] is False


class _Stopped(Exception):
    pass


def _stop() -> None:
    raise _Stopped()
