"""The HAPI harness can be used by a browser CDS client (the CDS Hooks sandbox, a SMART app): it answers
CORS preflights and sends CORS headers — checked with raw requests and with a real cross-origin
``fetch`` from headless Chromium."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.integration

ORIGIN = "http://localhost:8080"  # where the CDS Hooks sandbox runs in development
TIMEOUT_S = 60


def test_preflight_is_answered_for_the_sandboxs_requests(fhir_base_url):
    response = requests.options(f"{fhir_base_url}/Patient", timeout=TIMEOUT_S, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, accept, content-type"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] in (ORIGIN, "*")
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "accept", "content-type"} <= allowed
    assert "GET" in response.headers["Access-Control-Allow-Methods"]


def test_responses_carry_the_allow_origin_header(fhir_base_url):
    response = requests.get(f"{fhir_base_url}/metadata", timeout=TIMEOUT_S,
                            headers={"Origin": ORIGIN, "Accept": "application/fhir+json"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] in (ORIGIN, "*")


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b"<!doctype html><html><body>a browser CDS client on another origin</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def other_origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


FETCH_JS = """async (base) => {
  // An Authorization header makes this a non-simple request: the browser sends a preflight first.
  const response = await fetch(base + '/Patient?_count=1', {headers: {
    'Accept': 'application/fhir+json', 'Authorization': 'Bearer sandbox-token'}});
  const body = await response.json();
  return {status: response.status, resourceType: body.resourceType};
}"""


def test_a_page_on_another_origin_can_read_the_server_in_chromium(fhir_base_url, other_origin):
    from tests.browser import chromium_page

    with chromium_page(offline=False) as page:
        page.goto(other_origin)
        result = page.evaluate(FETCH_JS, fhir_base_url)
    assert result == {"status": 200, "resourceType": "Bundle"}
