"""``trialcds serve``: the CDS Hooks service under gunicorn, a production WSGI server.

The database is prepared once in the master process; each worker then builds its own app (and its
own database connections and HTTP pools — none of which may cross a fork).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections import ChainMap
from typing import Any

from gunicorn.app.base import BaseApplication

from cds_service import store
from cds_service.app import create_app, load_config
from cds_service.cli import UsageError
from cds_service.security.config import ConfigError, load_security_config, production_problems
from cds_service.security.request_log import configure_logging

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
    prepare_database(config["TRIALCDS_DATABASE_URL"])
    bind = f"[{args.host}]:{args.port}" if ":" in args.host else f"{args.host}:{args.port}"
    TrialcdsServer(config, {"bind": bind, "workers": args.workers}).run()
    return 0


def prepare_database(url: str) -> None:
    """Tables and the stored salt, created once here so that workers starting together do not race."""
    engine = store.make_engine(url)
    try:
        store.init_database(engine)
        store.stored_salt(engine)
    except Exception as exc:  # noqa: BLE001 — any driver error is an operator's configuration problem
        raise UsageError(f"database {engine.url.render_as_string(hide_password=True)}: "
                         f"{type(exc).__name__}") from None
    finally:
        engine.dispose()


class TrialcdsServer(BaseApplication):
    """gunicorn, configured from code rather than its own command line."""

    def __init__(self, config: dict[str, Any], options: dict[str, Any]) -> None:
        self.app_config = config
        self.options = {
            "worker_class": "gthread",  # threads per worker: hook calls mostly wait on FHIR servers
            "threads": 4,
            "timeout": 30,
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
        return app
