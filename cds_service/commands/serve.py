"""``trialcds serve``: the CDS Hooks service under gunicorn, with asyncio workers.

The database is prepared once in the master process; each worker then builds its own app (and its
own database connections and HTTP pools — none of which may cross a fork).

The serving stack (issue 11, docs/operator.md): gunicorn's master (worker processes, restarts,
graceful shutdown) with its asyncio ``asgi`` worker. Each worker's event loop reads whole requests
— a slow client costs a buffer, not a thread — and hands complete ones to a few threads running
the Flask app (``cds_service.wsgi_bridge``). ``TrialcdsProtocol`` answers what the HTTP parser
refuses (an overlong URL, oversized headers, broken chunked framing) with an OperationOutcome and
drops connections that have not sent their request headers within ``HEADER_TIMEOUT_S``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import sys
from collections import ChainMap
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi

from cds_service import store
from cds_service.app import create_app, load_config
from cds_service.cli import UsageError
from cds_service.security.config import ConfigError, load_security_config, production_problems
from cds_service.security.request_log import configure_logging
from cds_service.wsgi_bridge import CORS_ERROR_HEADERS, WsgiOverAsgi, outcome_body

# Per worker. Hook calls without prefetch mostly wait on FHIR servers (up to TRIALCDS_FETCH_DEADLINE):
# enough threads that calls stuck on a slow FHIR server leave room for everyone else; waiting threads
# cost no CPU, and CPU-bound work is bounded by the GIL whatever the count.
WSGI_THREADS = 16
GC_THRESHOLD = (50_000, 20, 100)  # young collections every 50 000 net allocations (default 700)
HEADER_TIMEOUT_S = 10.0  # from connection (or the last response) to a complete request head
# glibc: buffers from this size up are mmap'ed and go back to the OS when freed (see below).
LARGE_BUFFER_BYTES = 256 * 1024
M_MMAP_THRESHOLD = -3  # mallopt parameter number, <malloc.h>

DEV_WARNING = """
************************************************************************
*  trialcds serve --dev: LOCAL DEVELOPMENT MODE — NEVER USE WITH REAL   *
*  PATIENT DATA.                                                        *
*   - NO client authentication: anyone who can reach the port may call  *
*   - http:// FHIR servers on loopback are allowed                      *
************************************************************************
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="run the CDS Hooks service (gunicorn)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=port_number, default=8080, help="port (default 8080)")
    p.add_argument("--workers", type=positive_int, default=cpu_count(),
                   help="worker processes (default: the number of CPU cores)")
    p.add_argument("--dev", action="store_true",
                   help="local development: no client authentication, http:// loopback FHIR servers allowed")
    p.set_defaults(func=run)


def port_number(value: str) -> int:
    number = positive_int(value)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"not a port: {value}")
    return number


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return number


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (containers, taskset)
    except AttributeError:
        return os.cpu_count() or 1


def check_production_config(config: dict[str, Any]) -> None:
    """Refuse to start a production (non ``--dev``) service that is not safely configured.

    Raise ``UsageError`` with a one-line reason: no trusted clients (``TRIALCDS_CLIENTS_FILE``), no
    public URL to check JWT audiences against (``TRIALCDS_PUBLIC_URL``), or any security setting
    that does not parse (see docs/security.md).
    """
    try:
        security = load_security_config(ChainMap(config, os.environ))
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    problems = production_problems(security)
    if problems:
        raise UsageError("; ".join(problems) + " (or run with --dev for local development)")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config({"TRIALCDS_DEV": True} if args.dev else None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if config["TRIALCDS_DEV"]:
        print(DEV_WARNING, file=sys.stderr, flush=True)
    else:
        check_production_config(config)
    configure_logging()  # JSON lines on stderr, tokens redacted (security/request_log.py)
    return_large_buffers_to_the_os()
    prepare_database(config["TRIALCDS_DATABASE_URL"], dev=bool(config["TRIALCDS_DEV"]))
    bind = f"[{args.host}]:{args.port}" if ":" in args.host else f"{args.host}:{args.port}"
    TrialcdsServer(config, {"bind": bind, "workers": args.workers}).run()
    return 0


def prepare_database(url: str, *, dev: bool) -> None:
    """Once, in the master, before any worker starts. Production: the database must exist at the
    current schema (`trialcds db upgrade`) — never a new empty one, whose new salt would forget every
    override; --dev creates or upgrades it. A problem is one line, and the command exits non-zero."""
    try:
        store.prepare_database(url, dev=dev)
    except store.StoreConfigError as exc:
        raise UsageError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 — any driver error is an operator's configuration problem
        raise UsageError(f"database: {type(exc).__name__}") from None


def return_large_buffers_to_the_os() -> None:
    """Fix glibc's mmap threshold (inherited by the forked workers).

    By default glibc raises the threshold after a large buffer is freed, so later multi-megabyte
    buffers — FHIR answers read up to TRIALCDS_FETCH_MAX_BYTES, large request bodies — come from
    per-thread heaps that keep the memory: a worker grew from 105 to ~190 MiB after a few calls to
    a server sending 10 MB pages. With a fixed threshold it stays within ~20 MiB of its start.
    No-op where there is no glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, LARGE_BUFFER_BYTES)
    except (OSError, AttributeError):
        pass


class TrialcdsServer(BaseApplication):
    """gunicorn, configured from code rather than its own command line."""

    def __init__(self, config: dict[str, Any], options: dict[str, Any]) -> None:
        self.app_config = config
        self.options = {
            "worker_class": TrialcdsWorker,
            "asgi_loop": "auto",  # uvloop (a dependency) where installed, else asyncio's own loop
            "timeout": 30,
            # gunicorn's defaults, stated: longer request lines → 414, larger headers → 431.
            "limit_request_line": 4094,
            "limit_request_fields": 100,
            "limit_request_field_size": 8190,
            "graceful_timeout": 10,
            "accesslog": "-",
            "proc_name": "trialcds",
            # newer gunicorns' control socket lives at one path per user (~/.gunicorn): two services
            # on one host would fight over it, and nothing here uses it.
            "control_socket_disable": True,
            **options,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                self.cfg.set(key, value)

    def load(self) -> Any:
        app = create_app(self.app_config)
        # Called in each worker. The ~100 000 objects of the loaded app (Flask, pydantic and FHIR
        # models, SQLAlchemy) live as long as the worker: out of the collector's sight, full
        # collections — which a large request body's parsing sets off — no longer rescan them
        # (about a fifth of a hook call's CPU time with a long record's prefetch).
        gc.collect()
        gc.freeze()
        # A hook call with a long record's prefetch makes tens of thousands of short-lived objects
        # (refcounting frees them): the default threshold ran ~3 young collections per call, ~4 % of
        # its CPU (docs/performance.md). As the screener's workers do (screening/engines/local.py).
        gc.set_threshold(*GC_THRESHOLD)
        return WsgiOverAsgi(app, threads=WSGI_THREADS, max_body_bytes=app.config.get("MAX_CONTENT_LENGTH"))


class TrialcdsProtocol(ASGIProtocol):
    """gunicorn's asyncio HTTP/1 protocol, with OperationOutcome errors and a request-head deadline."""

    _head_timer: Any = None

    def _send_error_response(self, status: int, message: str, extra_headers: Any = ()) -> None:
        # ``message`` may quote the request (a URL, a header): only a fixed text goes back.
        body = outcome_body(status)
        headers = "".join(f"{name}: {value}\r\n" for name, value in extra_headers)
        cors = "".join(f"{name.decode()}: {value.decode()}\r\n" for name, value in CORS_ERROR_HEADERS)
        head = (f"HTTP/1.1 {status} {self._get_reason_phrase(status)}\r\n"
                f"Content-Type: application/fhir+json\r\nContent-Length: {len(body)}\r\n"
                f"{headers}{cors}Connection: close\r\n\r\n")
        self._safe_write(head.encode("latin-1") + body)

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm_head_timer()

    def _arm_keepalive_timer(self) -> None:  # a response went out: the next request's head is due
        super()._arm_keepalive_timer()
        self._arm_head_timer()

    def _on_headers_complete(self) -> Any:
        self._cancel_head_timer()
        return super()._on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.worker.loop.call_later(HEADER_TIMEOUT_S, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        # A slowloris client trickling its headers: dropped, so connections cannot pile up forever.
        self._head_timer = None
        self._close_transport()
        if self._request_ready is not None:
            self._request_ready.set()  # the connection loop wakes up, sees it closed, and ends


class TrialcdsWorker(gasgi.ASGIWorker):
    """gunicorn's asyncio worker serving ``TrialcdsProtocol``."""

    def init_process(self) -> None:
        # ASGIWorker builds each connection's protocol from this module-level name.
        gasgi.ASGIProtocol = TrialcdsProtocol  # type: ignore[misc]
        super().init_process()
