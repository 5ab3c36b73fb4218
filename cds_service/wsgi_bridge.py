"""The Flask (WSGI) app behind an asyncio server: whole requests in, threads only for the work.

Why (issue 11, slow clients): a threaded WSGI server gives each connection a thread while it reads
the request, so a few hundred clients that send their headers or body one byte at a time hold every
thread and the service stops answering. Here the event loop reads each request — headers by the
server, body by ``WsgiOverAsgi`` — and only a *complete* request is handed to one of a few threads
that run the Flask app. A slow connection costs a few kilobytes of buffer, never a thread.

What else this layer decides, because WSGI cannot:

* the body is capped (the app's ``MAX_CONTENT_LENGTH``) while it is read — reading stops at the
  cap and the app is told the body is longer than it allows, so Flask answers (and logs) its 413 —
  and given a time limit (``BODY_TIMEOUT_S``; over it → 408 with an OperationOutcome);
* ``PATH_INFO`` keeps an encoded slash (``%2F``) encoded, so it is never a path separator:
  ``/cds-services/nct05271110%2Ffeedback`` is a service id that does not exist (404), not the
  feedback endpoint;
* errors the HTTP parser finds (bad chunked encoding, an overlong request line, oversized
  headers) are answered with an OperationOutcome and a fixed text, never by echoing the request
  (``TrialcdsProtocol``).
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

from cds_service.errors import operation_outcome

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

BODY_TIMEOUT_S = 15.0  # a whole request body, however it trickles in
DEFAULT_MAX_BODY = 5 * 1024 * 1024
CORS_ERROR_HEADERS = [(b"access-control-allow-origin", b"*")]

# Fixed texts per status: the parser's own messages may quote the request line or a header.
PROTOCOL_ERRORS = {
    400: ("the HTTP request is malformed", "invalid"),
    408: ("the request was not received in time", "timeout"),
    413: ("the request body is too large", "too-costly"),
    414: ("the request URL is too long", "too-long"),
    431: ("the request headers are too large", "too-long"),
    501: ("the request uses an unsupported transfer coding", "not-supported"),
}


def outcome_body(status: int) -> bytes:
    diagnostics, code = PROTOCOL_ERRORS.get(status, ("the request could not be processed", "invalid"))
    return orjson.dumps(operation_outcome(diagnostics, code))


class ClientGone(Exception):
    """The client disconnected before its request was complete: nobody to answer."""


class WsgiOverAsgi:
    """An ASGI app that runs a WSGI app on ``threads`` threads, one complete request at a time each."""

    def __init__(self, wsgi_app: WsgiApp, threads: int, max_body_bytes: int | None = None,
                 body_timeout_s: float = BODY_TIMEOUT_S) -> None:
        self.wsgi_app = wsgi_app
        self.max_body_bytes = max_body_bytes or DEFAULT_MAX_BODY
        self.body_timeout_s = body_timeout_s
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="wsgi")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets here
        try:
            if _declared_length(scope) > self.max_body_bytes:
                body = None  # refused on its announced length, before any of it is read
            else:
                body = await asyncio.wait_for(self._read_body(receive), self.body_timeout_s)
        except asyncio.TimeoutError:
            await _send_outcome(send, 408)
            return
        except ClientGone:
            return
        environ = wsgi_environ(scope, body)
        if body is None:  # over the cap: the app refuses the length it is told, without any bytes to read
            environ["CONTENT_LENGTH"], environ["wsgi.input"] = str(self.max_body_bytes + 1), io.BytesIO()
        loop = asyncio.get_running_loop()
        status, headers, payload = await loop.run_in_executor(self.executor, self._run, environ)
        if body is None:
            headers.append((b"connection", b"close"))  # the rest of the body is never read
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it is longer than the cap."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _run(self, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The WSGI call, in a worker thread; the whole response body is collected (cards are small)."""
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            started[:] = [status, headers]
            return lambda data: None  # the legacy write() callable: Flask does not use it

        result = self.wsgi_app(environ, start_response)
        try:
            payload = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
        return (int(status.split(" ", 1)[0]),
                [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers], payload)


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            return int(value) if value.strip().isdigit() else 0  # the parser has checked its syntax
    return 0


async def _send_outcome(send: Send, status: int) -> None:
    body = outcome_body(status)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/fhir+json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *CORS_ERROR_HEADERS]})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def wsgi_environ(scope: Scope, body: bytes | None) -> dict[str, Any]:
    """PEP 3333 environ of a complete request (its body already read)."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client")
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode("utf-8").decode("latin-1"),
        "PATH_INFO": path_info(raw_path),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] if server[1] is not None else 80),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "CONTENT_LENGTH": str(len(body or b"")),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body or b""),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if client:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = str(client[0]), str(client[1])
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        if name in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
            continue  # the body is complete: its length is what was read
        value = raw_value.decode("latin-1")
        if name == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
            continue
        key = f"HTTP_{name}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def path_info(raw_path: bytes) -> str:
    """The decoded path, except that an encoded ``/`` stays ``%2F`` (it is data, not a separator)."""
    segments = [unquote_to_bytes(segment).replace(b"/", b"%2F") for segment in raw_path.split(b"/")]
    return b"/".join(segments).decode("latin-1")
