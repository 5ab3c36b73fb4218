"""``trialcds screen --fhir-server``: FHIR Bulk Data export from the project's real HAPI server
(Patient- and Group-level), compared patient by patient with ``trialcds evaluate`` on the same
server data; an interrupted run resumes the same export instead of asking for a new one."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest
import requests

from cds_service.cli import main
from tests.screening_hapi.conftest import FHIR_JSON

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]


def screen(*args) -> int:
    return main(["screen", *[str(a) for a in args]])


def evaluations(out: Path) -> dict[str, dict]:
    return {e["patient"].split("/")[-1]: e for e in map(orjson.loads, (out / "evaluations.ndjson").read_bytes().splitlines())}


def evaluate_from_server(base: str, patient_id: str, as_of, tmp_path: Path) -> dict:
    """``trialcds evaluate --bundle`` on the patient's record as the server holds it ($everything:
    the Patient compartment and the Medications it points at)."""
    entries, url = [], f"{base}/Patient/{patient_id}/$everything?_count=1000"
    while url:
        response = requests.get(url, headers=FHIR_JSON, timeout=60)
        assert response.status_code == 200, response.text[:300]
        page = response.json()
        entries += [{"resource": e["resource"]} for e in page.get("entry", [])]
        url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)
    path = tmp_path / f"{patient_id}.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}))
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["evaluate", "--bundle", str(path), "--as-of", as_of.isoformat(), "--format", "json"]) == 0
    return json.loads(stdout.getvalue())


def assert_same_as_evaluate(found: dict[str, dict], patient_ids: list[str], base: str, as_of, tmp_path: Path) -> None:
    for patient_id in patient_ids:
        expected = evaluate_from_server(base, patient_id, as_of, tmp_path)
        assert found[patient_id]["verdict"] == expected["verdict"], patient_id
        assert found[patient_id] == expected, patient_id


def test_patient_level_export_gives_the_evaluation_of_trialcds_evaluate(fhir_base_url, hapi_population,
                                                                          screening_today, tmp_path):
    out = tmp_path / "out"
    code = screen("--fhir-server", fhir_base_url, "--out", out, "--as-of", screening_today, "--quiet")
    # The server is shared: other sessions' deliberately broken records may make the input "not whole".
    assert code in (0, 1)
    found = evaluations(out)
    mine = hapi_population["seeds"] + hapi_population["background"]
    assert set(mine) <= set(found)
    assert_same_as_evaluate(found, mine, fhir_base_url, screening_today, tmp_path)
    verdicts = {found[p]["verdict"] for p in hapi_population["seeds"]}
    assert verdicts == {"likely-eligible", "needs-review", "not-eligible"}
    assert all(found[p]["verdict"] == "not-eligible" for p in hapi_population["background"])
    state = json.loads((out / "export" / "bulk-export.json").read_text())
    assert state["finished"] is True
    assert (out / "export").stat().st_mode & 0o077 == 0
    assert all((out / "export" / name).stat().st_mode & 0o077 == 0 for name in state["downloaded"].values())


def test_group_level_export_screens_exactly_the_group(fhir_base_url, hapi_population, screening_today, tmp_path):
    members = hapi_population["seeds"][::3] + hapi_population["background"][:3]
    group_id = f"screen-group{hapi_population['suffix']}"
    group = {"resourceType": "Group", "id": group_id, "type": "person", "actual": True,
             "member": [{"entity": {"reference": f"Patient/{m}"}} for m in members]}
    response = requests.put(f"{fhir_base_url}/Group/{group_id}", data=orjson.dumps(group), headers=FHIR_JSON, timeout=30)
    assert response.status_code in (200, 201), response.text[:300]
    out = tmp_path / "out"
    assert screen("--fhir-server", fhir_base_url, "--group", group_id, "--out", out, "--as-of", screening_today,
                  "--quiet") == 0
    found = evaluations(out)
    assert sorted(found) == sorted(members)
    kickoff = json.loads((out / "export" / "bulk-export.json").read_text())["request"]["kickoff"]
    assert f"/Group/{group_id}/$export?" in kickoff
    assert_same_as_evaluate(found, members, fhir_base_url, screening_today, tmp_path)


def test_an_unknown_group_is_a_clear_server_error(fhir_base_url, tmp_path, capsys):
    code = screen("--fhir-server", fhir_base_url, "--group", "no-such-group-h8", "--out", tmp_path / "out", "--quiet")
    assert code == 3
    err = capsys.readouterr().err
    assert "Bulk export" in err and "HTTP 4" in err


# --- resumption -------------------------------------------------------------------------------------

class _RecordingProxy(BaseHTTPRequestHandler):
    """Forwards to the FHIR server and records every request line (to count kick-offs)."""

    upstream = ""
    seen: list[str] = []
    protocol_version = "HTTP/1.1"  # keep-alive, as a real server or proxy does

    def _forward(self) -> None:
        type(self).seen.append(f"{self.command} {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        # the Host header is kept: HAPI builds the status and file URLs from it, so they come here too
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("content-length", "connection")}
        try:
            upstream = requests.request(self.command, self.upstream + self.path, headers=headers, data=body,
                                        timeout=120, allow_redirects=False)
        except requests.RequestException:
            self.send_error(502)
            return
        self.send_response(upstream.status_code)
        for key, value in upstream.headers.items():
            if key.lower() not in ("transfer-encoding", "connection", "content-length", "content-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(upstream.content)))
        self.end_headers()
        self.wfile.write(upstream.content)

    do_GET = do_DELETE = do_PUT = do_POST = _forward

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def recording_proxy(fhir_base_url):
    origin = fhir_base_url.split("/fhir")[0]
    handler = type("Proxy", (_RecordingProxy,), {"upstream": origin, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir", handler.seen
    finally:
        server.shutdown()
        server.server_close()


def test_an_interrupted_run_resumes_the_same_export(recording_proxy, hapi_population, screening_today, tmp_path):
    base, seen = recording_proxy
    out = tmp_path / "out"
    state_file = out / "export" / "bulk-export.json"
    command = [sys.executable, "-m", "cds_service", "screen", "--fhir-server", base, "--out", str(out),
               "--as-of", screening_today.isoformat(), "--quiet"]
    first = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (state_file.is_file() and "statusUrl" in state_file.read_text()) and time.monotonic() < deadline:
            assert first.poll() is None, "the first run ended before it was interrupted"
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)  # interrupted while the server builds the export
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGKILL)
    state = json.loads(state_file.read_text())
    assert "manifest" not in state and not state.get("finished")
    kickoffs = [line for line in seen if "/$export?" in line and line.startswith("GET")]
    assert len(kickoffs) == 1

    assert screen("--fhir-server", base, "--out", out, "--as-of", screening_today, "--quiet") in (0, 1)
    kickoffs = [line for line in seen if "/$export?" in line and line.startswith("GET")]
    assert len(kickoffs) == 1, "the second run asked for a new export instead of resuming"
    resumed = json.loads(state_file.read_text())
    assert resumed["statusUrl"] == state["statusUrl"] and resumed["finished"] is True
    assert set(hapi_population["seeds"]) <= set(evaluations(out))
    # once the files were down the client told the server (HAPI answers 404 for a finished job and
    # drops its files after the retention period)
    status_path = resumed["statusUrl"].split("127.0.0.1", 1)[1].split("/", 1)[1]
    assert any(line == f"DELETE /{status_path}" for line in seen), seen[-5:]
    assert resumed["statusUrl"].startswith(base)

    # a finished export is not reused: the next run asks the server again
    assert screen("--fhir-server", base, "--out", out, "--as-of", screening_today, "--quiet") in (0, 1)
    kickoffs = [line for line in seen if "/$export?" in line and line.startswith("GET")]
    assert len(kickoffs) == 2
