"""Small hostile FHIR servers on loopback, for the fault tests of record gathering (issue 11).

Each ``FaultServer`` answers every request the same broken way:

=================  ==========================================================================
``hang``           reads the request, never answers (until the server stops)
``trickle``        a valid answer, sent one byte per second from the status line on
``garbage``        bytes that are not HTTP, then closes
``huge``           a valid searchset Bundle of ``huge_bytes`` (default 10 MB), no Content-Length
``gzip_bomb``      ``Content-Encoding: gzip``: 65 KB on the wire that inflate to 64 MB
``endless_next``   one-entry searchset pages, each with a ``next`` link to one more
=================  ==========================================================================

Bounded: one thread per connection, every handler ends when the client goes away or the server
stops (``stop`` event), and at most ``max_seconds`` per connection. ``connections`` counts the
connections served and ``closed_by_client`` those that the client dropped mid-answer (what the
service does with a connection that overran its deadline).
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from functools import lru_cache
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.service.fhir_server import LoopbackHTTPServer

MODES = ("hang", "trickle", "garbage", "huge", "gzip_bomb", "endless_next")


@lru_cache(maxsize=1)
def gzip_bomb() -> bytes:
    """64 MiB of JSON whitespace, gzipped: about 65 KB."""
    return gzip.compress(b" " * (64 * 1024 * 1024), compresslevel=9)


@lru_cache(maxsize=4)
def huge_bundle(size: int) -> bytes:
    """A valid searchset Bundle of about ``size`` bytes: Observations with long notes."""
    note = "x" * 10_000
    entries, total = [], 0
    i = 0
    while total < size:
        resource = {"resourceType": "Observation", "id": f"huge-{i}", "status": "final",
                    "code": {"text": "filler"}, "note": [{"text": note}]}
        entries.append({"resource": resource})
        total += len(note) + 150
        i += 1
    return json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": entries}).encode()


_Server = LoopbackHTTPServer


class FaultServer:
    def __init__(self, mode: str, *, huge_bytes: int = 10 * 1024 * 1024, max_seconds: float = 60.0) -> None:
        if mode not in MODES:
            raise ValueError(mode)
        self.mode, self.huge_bytes, self.max_seconds = mode, huge_bytes, max_seconds
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = 0
        self.closed_by_client = 0
        self.httpd = _Server(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"

    def __enter__(self) -> FaultServer:
        if self.mode == "gzip_bomb":
            gzip_bomb()
        if self.mode == "huge":
            huge_bundle(self.huge_bytes)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def count(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


def _handler(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            server.count("connections")

        def do_GET(self) -> None:  # noqa: N802 — http.server's naming
            server.count("requests")
            started = time.monotonic()
            try:
                getattr(self, f"answer_{server.mode}")(started)
            except (BrokenPipeError, ConnectionResetError):
                server.count("closed_by_client")
                self.close_connection = True

        # --- the modes ---------------------------------------------------------------------------

        def answer_hang(self, started: float) -> None:
            # Wait for the client to give up (its socket closes) or the server to stop.
            self.connection.settimeout(0.2)
            while not server.stop.is_set() and time.monotonic() - started < server.max_seconds:
                try:
                    if self.connection.recv(1) == b"":
                        server.count("closed_by_client")
                        break
                except socket.timeout:
                    continue
                except OSError:
                    server.count("closed_by_client")
                    break
            self.close_connection = True

        def answer_trickle(self, started: float) -> None:
            body = b'{"resourceType": "Bundle", "type": "searchset", "entry": []}'
            answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            for byte in answer:
                if server.stop.wait(1.0) or time.monotonic() - started > server.max_seconds:
                    break
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            self.close_connection = True

        def answer_garbage(self, started: float) -> None:
            self.wfile.write(b"\x00\xffNOT HTTP AT ALL\r\n\r\n" + bytes(range(256)) * 4)
            self.close_connection = True

        def answer_huge(self, started: float) -> None:
            # No Content-Length (the body ends when the connection does): only reading can tell its size.
            self.send_body(huge_bundle(server.huge_bytes), declare_length=False)

        def answer_gzip_bomb(self, started: float) -> None:
            self.send_body(gzip_bomb(), {"Content-Encoding": "gzip"})

        def answer_endless_next(self, started: float) -> None:
            parts = urlsplit(self.path)
            page = int((parse_qs(parts.query).get("_page") or ["0"])[0])
            base = server.base_url
            bundle = {"resourceType": "Bundle", "type": "searchset",
                      "link": [{"relation": "next", "url": f"{base}?_getpages=endless&_page={page + 1}"}],
                      "entry": [{"resource": {"resourceType": "Observation", "id": f"endless-{page}",
                                              "status": "final", "code": {"text": "filler"}}}]}
            self.send_body(json.dumps(bundle).encode())

        def send_body(self, body: bytes, headers: dict[str, str] | None = None, declare_length: bool = True) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/fhir+json")
            if declare_length:
                self.send_header("Content-Length", str(len(body)))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            view = memoryview(body)
            for offset in range(0, len(body), 256 * 1024):  # in pieces: a client that quits stops us
                if server.stop.is_set():
                    return
                self.wfile.write(view[offset: offset + 256 * 1024])

        def log_message(self, *args: object) -> None:
            pass

    return Handler
