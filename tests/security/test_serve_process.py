"""A real ``trialcds serve`` (gunicorn, non-dev) with a clients file and a freshly generated EC key."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.security.conftest import SERVICE_PATH, hook_body
from tests.security.keys import ISS, ec_signer
from tests.serve_process import REPO_ROOT as REPO, TRIALCDS, free_port, running_serve



def serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIALCDS_")}
    env.update({"TRIALCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite'}", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([TRIALCDS, *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_production_serve_refuses_to_start_without_clients(tmp_path):
    result = run_cli(["serve", "--port", str(free_port())], serve_env(tmp_path, TRIALCDS_PUBLIC_URL="https://cds.example.org"))
    assert result.returncode == 2
    assert "TRIALCDS_CLIENTS_FILE" in result.stderr


def test_production_serve_refuses_to_start_without_public_url(tmp_path):
    clients = tmp_path / "clients.json"
    clients.write_text(json.dumps({"clients": [{"iss": ISS, "jwks": ec_signer().jwks()}]}))
    result = run_cli(["serve", "--port", str(free_port())], serve_env(tmp_path, TRIALCDS_CLIENTS_FILE=str(clients)))
    assert result.returncode == 2
    assert "TRIALCDS_PUBLIC_URL" in result.stderr


def test_production_serve_refuses_a_broken_clients_file(tmp_path):
    clients = tmp_path / "clients.json"
    clients.write_text('{"clients": [{"iss": "x"}]}')
    result = run_cli(["serve", "--port", str(free_port())],
                     serve_env(tmp_path, TRIALCDS_CLIENTS_FILE=str(clients), TRIALCDS_PUBLIC_URL="https://cds.example.org"))
    assert result.returncode == 2
    assert "jwks" in result.stderr


@pytest.fixture
def server(tmp_path):
    signer = ec_signer(kid="serve-test")
    clients = tmp_path / "clients.json"
    clients.write_text(json.dumps({"clients": [{"iss": ISS, "jwks": signer.jwks()}]}))
    port = free_port()
    env = serve_env(tmp_path, TRIALCDS_CLIENTS_FILE=str(clients), TRIALCDS_PUBLIC_URL=f"http://127.0.0.1:{port}",
                    TRIALCDS_MAX_BODY_BYTES="100000")
    log_path = tmp_path / "serve.log"
    # Production serve needs its database created first (it never creates one itself).
    assert run_cli(["db", "upgrade"], env).returncode == 0
    with running_serve(["--workers", "2"], env, log_path, port=port) as (base, _):
        yield base, port, signer, log_path


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_real_server_401_without_token_200_with_one(server, bundle, trial):
    base, port, signer, log_path = server
    body = hook_body(bundle, trial)
    body["fhirAuthorization"] = {"access_token": "ehr-access-token-NEVER-LOG"}
    data = json.dumps(body).encode()

    status, content = post(port, SERVICE_PATH, data, {})
    assert (status, content) == (401, b"")

    token = signer.token(aud=base + SERVICE_PATH)
    status, content = post(port, SERVICE_PATH, data, {"Authorization": f"Bearer {token}"})
    assert status == 200, content[:500]
    assert json.loads(content)["cards"]

    # The same token again (possibly served by the other worker): a replay.
    status, content = post(port, SERVICE_PATH, data, {"Authorization": f"Bearer {token}"})
    assert (status, content) == (401, b"")

    # Discovery stays open.
    with urllib.request.urlopen(base + "/cds-services", timeout=5) as r:
        assert r.status == 200

    # A chunked body over the cap (no Content-Length to check up front) → 413.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", SERVICE_PATH)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.putheader("Authorization", f"Bearer {signer.token(aud=base + SERVICE_PATH)}")
        conn.endheaders()
        chunk = b"x" * 50_000
        for _ in range(4):
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["resourceType"] == "OperationOutcome"
    finally:
        conn.close()

    time.sleep(0.5)  # let the workers flush their log lines
    logged = log_path.read_text()
    for secret in (token, token.split(".")[2], "ehr-access-token-NEVER-LOG", body["context"]["patientId"]):
        assert secret not in logged
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    hook_lines = [line for line in lines if line.get("event") == "hook call"]
    assert [line["status"] for line in hook_lines] == [401, 200, 401, 413]
    assert hook_lines[1]["hookInstance"] == body["hookInstance"]
    assert hook_lines[1]["verdict"] in ("likely-eligible", "needs-review")
