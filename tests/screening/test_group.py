"""--write-group: the worklist as a FHIR Group (validated R4B), PUT to the server with the token."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from fhir.resources.R4B.group import Group

from cds_service.screening.group import GroupWriteError, build_group, group_id, put_group


class _Recorder(BaseHTTPRequestHandler):
    answer = 201
    seen: list[dict] = []

    def do_PUT(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
        self.send_response(self.answer)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def fhir_server():
    _Recorder.seen = []
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/fhir", _Recorder
    server.shutdown()
    server.server_close()


def test_the_group_names_the_trial_and_lists_each_candidate(trial):
    refs = ["Patient/a", "Patient/b", "Patient/c"]
    group = build_group(trial, "2026-11-24", refs)
    Group.model_validate(group)  # a valid R4B Group
    assert (group["type"], group["actual"], group["quantity"]) == ("person", True, 3)
    assert [m["entity"]["reference"] for m in group["member"]] == refs
    value = group["characteristic"][0]["valueCodeableConcept"]["coding"][0]
    assert (value["system"], value["code"]) == (trial.studyIdentifier.system, trial.studyIdentifier.value)
    assert group["characteristic"][0]["exclude"] is False
    assert group["id"] == group_id(trial.service.id)


def test_an_empty_worklist_is_still_a_group(trial):
    group = build_group(trial, "2026-11-24", [])
    assert group["quantity"] == 0 and "member" not in group


def test_put_sends_the_group_with_the_bearer_token(trial, fhir_server):
    base, recorder = fhir_server
    group = build_group(trial, "2026-11-24", ["Patient/a"])
    url = put_group(base, group, token="secret-token")
    assert url == f"{base}/Group/{group['id']}"
    (request,) = recorder.seen
    assert request["path"] == f"/fhir/Group/{group['id']}"
    assert request["headers"]["Authorization"] == "Bearer secret-token"
    assert request["headers"]["Content-Type"] == "application/fhir+json"
    assert request["body"] == group


def test_a_refusal_or_no_server_is_a_group_write_error(trial, fhir_server):
    base, recorder = fhir_server
    recorder.answer = 422
    try:
        with pytest.raises(GroupWriteError, match="422"):
            put_group(base, build_group(trial, "2026-11-24", ["Patient/a"]))
    finally:
        recorder.answer = 201
    with pytest.raises(GroupWriteError, match="could not reach"):
        put_group("http://127.0.0.1:9/fhir", build_group(trial, "2026-11-24", []))
