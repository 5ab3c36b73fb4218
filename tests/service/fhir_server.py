"""A tiny real HTTP FHIR server for the unit tests of record gathering (no mocks of HTTP or fhirpy).

It serves the seed patients (already rebased to the test's as-of date) the way a FHIR server would:
``GET /fhir/Patient/<id>`` reads, ``GET /fhir/<Type>?patient=<id>&code=…&_include=…`` searches
answered by ``seeding.answer_template`` (so they hold exactly what a prefetch would), split into
pages of ``page_size`` with HAPI-style ``next`` links at the server base (``?_getpages=…``).

Knobs for failure tests: ``token`` (anything else → 401), ``hang`` (requests block until the
server stops), ``status`` (every request answers with that HTTP status).
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cds_service.seeding import answer_template


class LoopbackHTTPServer(ThreadingHTTPServer):
    """The test FHIR servers' HTTP server (this one and the fault servers of tests/reliability)."""

    # socketserver listens with a backlog of 5: a hook call opens ~11 connections at once, and the
    # SYNs beyond the backlog were dropped and resent a second later (1 s stalls in most calls).
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        # The service hangs up on purpose (deadline, byte cap, a 412 after another key failed): a write
        # to a closed socket is expected there, not a failure worth a traceback in the test output.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


_Server = LoopbackHTTPServer


class FhirTestServer:
    def __init__(self, bundles: dict[str, dict], page_size: int = 3, token: str | None = None,
                 hang: bool = False, status: int | None = None) -> None:
        self.patients = {_patient_id(b): b for b in bundles.values()}
        self.page_size, self.token, self.hang, self.status = page_size, token, hang, status
        self.requests: list[dict[str, Any]] = []
        self.pages: dict[str, list[dict]] = {}
        self.release = threading.Event()
        self.httpd = _Server(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"

    def __enter__(self) -> FhirTestServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    # --- answering -------------------------------------------------------------------------------

    def answer(self, path: str, query: str) -> tuple[int, Any]:
        if self.status:
            return self.status, _outcome(f"configured to fail with {self.status}")
        parts = [p for p in path.split("/") if p][1:]  # drop "fhir"
        params = parse_qs(query)
        if not parts and "_getpages" in params:
            return self.page(params["_getpages"][0], int(params["_offset"][0]))
        if len(parts) == 2:
            return self.read(*parts)
        if len(parts) == 1:
            return self.search(parts[0], query, params)
        return 404, _outcome("unknown path")

    def read(self, rtype: str, rid: str) -> tuple[int, Any]:
        bundle = self.patients.get(rid) if rtype == "Patient" else None
        if bundle is None:
            return 404, _outcome("not found")
        return 200, next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")

    def search(self, rtype: str, query: str, params: dict[str, list[str]]) -> tuple[int, Any]:
        bundle = self.patients.get((params.get("patient") or [""])[0])
        if bundle is None:
            return 200, {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}
        resources = [e["resource"] for e in bundle["entry"]]
        by_ref = {f"{r['resourceType']}/{r['id']}": r for r in resources}
        result = answer_template(f"{rtype}?{query}", resources, by_ref)
        token = uuid.uuid4().hex
        self.pages[token] = result["entry"]
        return self.page(token, 0)

    def page(self, token: str, offset: int) -> tuple[int, Any]:
        entries = self.pages.get(token)
        if entries is None:
            return 410, _outcome("paging token expired")
        page = entries[offset: offset + self.page_size]
        links = [{"relation": "self", "url": f"{self.base_url}?_getpages={token}&_offset={offset}"}]
        if offset + self.page_size < len(entries):
            links.append({"relation": "next",
                          "url": f"{self.base_url}?_getpages={token}&_offset={offset + self.page_size}"})
        return 200, {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": page}


def _handler(server: FhirTestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 — http.server's naming
            parts = urlsplit(self.path)
            server.requests.append({"path": self.path, "authorization": self.headers.get("Authorization")})
            if server.hang:
                server.release.wait(30)
                return
            if server.token and self.headers.get("Authorization") != f"Bearer {server.token}":
                status, body = 401, _outcome("unauthorized")
            else:
                status, body = server.answer(parts.path, parts.query)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def _patient_id(bundle: dict) -> str:
    return next(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")


def _outcome(text: str) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing",
                                                           "diagnostics": text}]}
