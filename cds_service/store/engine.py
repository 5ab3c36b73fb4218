"""Connections to the service's database, each with a time limit.

The database is a dependency that can fail like any other: be slow, stop answering, lose its file.
Every way of waiting on it has a bound, so a request that needs it gets a 503 in seconds instead of
hanging a worker:

- **connecting**: ``connect_timeout`` (libpq) for PostgreSQL;
- **each statement**: PostgreSQL's ``statement_timeout`` (the server cancels it); SQLite's busy
  timeout (waiting for another worker's write lock);
- **a server that stops answering** (stopped process, frozen VM, lost network): nothing server-side
  fires then, and the kernel still acknowledges TCP, so a client-side watchdog closes the socket of
  any connection checked out for longer than the statement limit (SQLite: ``interrupt()``);
- **waiting for a pooled connection**: ``pool_timeout``; the pool is small.

A checked-out connection is first proven alive (a ping on PostgreSQL, under the watchdog; for a
SQLite file: the file it opened must still be the one at the configured path — a deleted or replaced
file is never written to, and SQLite files are opened ``mode=rw`` so a missing one is never created
behind the operator's back).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import QueuePool, StaticPool


PING_LIMIT_S = 1.0  # the proof of life of a pooled connection, before it is handed out


class StoreConfigError(Exception):
    """The database cannot be used as configured: a one-line reason for the operator."""


@dataclass(frozen=True)
class DatabaseLimits:
    connect_timeout_s: float = 3.0  # TRIALCDS_DB_CONNECT_TIMEOUT
    statement_timeout_s: float = 5.0  # TRIALCDS_DB_STATEMENT_TIMEOUT
    pool_timeout_s: float = 3.0  # TRIALCDS_DB_POOL_TIMEOUT
    pool_size: int = 4  # TRIALCDS_DB_POOL_SIZE: gunicorn runs 4 threads per worker
    max_overflow: int = 2


def normalise_url(url: str) -> URL:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 (SQLAlchemy's default would be psycopg2)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL; None for an in-memory database."""
    if not is_sqlite(url) or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve()


def make_engine(url: str, limits: DatabaseLimits = DatabaseLimits(), *, create: bool = False) -> Engine:
    """The engine for ``url``. ``create``: a missing SQLite file (and its folder) may be created —
    only for ``trialcds db upgrade`` and ``--dev``, never when serving."""
    parsed = normalise_url(url)
    if is_sqlite(parsed):
        return _sqlite_engine(parsed, limits, create=create)
    if parsed.get_backend_name() == "postgresql":
        return _postgresql_engine(parsed, limits)
    raise StoreConfigError(f"unsupported database {parsed.get_backend_name()!r} (use sqlite or postgresql)")


def display_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


# --- PostgreSQL -----------------------------------------------------------------------------------------

def _postgresql_engine(url: URL, limits: DatabaseLimits) -> Engine:
    try:
        import psycopg  # noqa: F401 — only to say clearly what is missing
    except ImportError:
        raise StoreConfigError("PostgreSQL needs the psycopg driver: pip install 'trialcds[postgres]'") from None
    statement_ms = int(limits.statement_timeout_s * 1000)
    engine = create_engine(
        url, poolclass=QueuePool, pool_size=limits.pool_size, max_overflow=limits.max_overflow,
        pool_timeout=limits.pool_timeout_s, pool_recycle=1800,
        connect_args={
            "connect_timeout": max(1, round(limits.connect_timeout_s)),  # libpq: whole seconds
            # Server-side limits: a statement, a lock wait, a transaction left open by a dead worker.
            "options": f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms} "
                       f"-c idle_in_transaction_session_timeout={statement_ms * 6}",
            "application_name": "trialcds",
        })
    _guard_checkouts(engine, limits, check=_ping, abort=_shut_socket)
    return engine


def _ping(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 — any driver failure means "not this connection"
        raise DisconnectionError(f"ping failed: {type(exc).__name__}") from None
    finally:
        try:
            cursor.close()
        except Exception:  # noqa: BLE001
            pass


def _shut_socket(dbapi_connection: Any) -> None:
    """Unblock a thread waiting on a server that does not answer: its read returns, psycopg reports
    the connection broken, SQLAlchemy invalidates it."""
    duplicate = socket.socket(fileno=os.dup(dbapi_connection.fileno()))
    try:
        duplicate.shutdown(socket.SHUT_RDWR)
    finally:
        duplicate.close()


# --- SQLite ---------------------------------------------------------------------------------------------

def _sqlite_engine(url: URL, limits: DatabaseLimits, *, create: bool) -> Engine:
    path = sqlite_path(url)
    if path is None:
        # One shared connection, or each thread would see its own empty in-memory database.
        return create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The file holds the salt of the patient hashes: with it, anyone who can read the file can test
        # patient ids against the hashes. Created owner-only whatever the umask; SQLite gives its -wal
        # and -shm files the database file's mode. An existing file's mode is the operator's choice.
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            pass
    mode = "rwc" if create else "rw"  # rw: a missing file is an error, never a new empty database
    uri = f"file:{quote(str(path))}?mode={mode}"

    def connect() -> sqlite3.Connection:
        # busy timeout: how long a write waits for another worker's lock before failing.
        return sqlite3.connect(uri, uri=True, timeout=limits.statement_timeout_s, check_same_thread=False)

    engine = create_engine(url.set(query={}), creator=connect, poolclass=QueuePool,
                           pool_size=limits.pool_size, max_overflow=limits.max_overflow,
                           pool_timeout=limits.pool_timeout_s)
    event.listen(engine, "connect", _sqlite_on_connect(path))
    _guard_checkouts(engine, limits, check=_same_file(path), abort=lambda conn: conn.interrupt())
    return engine


def _sqlite_on_connect(path: Path) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        """Write-ahead log, synced at checkpoints: every hook call records the card it sent, and in the
        default rollback-journal mode each such commit waits for several fsyncs (milliseconds on a busy
        disk, and the workers queue behind one another's). With WAL readers never block the writer, and
        with ``synchronous=NORMAL`` a crash of the service loses nothing; an OS crash or power cut may
        roll back the last commits, never corrupt the file (https://www.sqlite.org/wal.html)."""
        record.info["file_id"] = _file_id(path)
        # SQLite opens a file it may not write read-only, and the connection stays so: remember it.
        record.info["writable"] = _writable(path)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()
    return on_connect


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def _same_file(path: Path) -> Callable[[Any, Any], None]:
    def check(dbapi_connection: Any, record: Any) -> None:
        # A deleted (or replaced) file stays open and writable through this connection, so every write
        # would "succeed" into a file nobody will ever read again: refuse the connection instead.
        current = _file_id(path)
        if current is None or current != record.info.get("file_id"):
            raise DisconnectionError("the SQLite database file is gone or was replaced")
        if not record.info.get("writable") and _writable(path):
            raise DisconnectionError("the SQLite database file became writable: open it again")
    return check


def _writable(path: Path) -> bool:
    # The folder too: SQLite writes its -wal and -shm files next to the database.
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


# --- checkout guard and watchdog ------------------------------------------------------------------------

def _guard_checkouts(engine: Engine, limits: DatabaseLimits, *, check: Callable[[Any, Any], None],
                     abort: Callable[[Any], None]) -> None:
    # The server's own statement_timeout fires first while it is alive; the watchdog is for when not.
    watchdog = Watchdog(limits.statement_timeout_s + 1.0, abort)
    # A live server answers the checkout's ping in milliseconds: give up on a silent one quickly.
    check_limit_s = min(PING_LIMIT_S, limits.statement_timeout_s)

    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        watchdog.arm(record, dbapi_connection, check_limit_s)
        try:
            check(dbapi_connection, record)
        except BaseException:
            watchdog.disarm(record)
            raise
        watchdog.arm(record, dbapi_connection)  # the connection's use, from now on

    @event.listens_for(engine, "checkin")
    def on_checkin(dbapi_connection: Any, record: Any) -> None:
        watchdog.disarm(record)

    @event.listens_for(engine, "invalidate")
    def on_invalidate(dbapi_connection: Any, record: Any, exception: Any) -> None:
        watchdog.disarm(record)

    _WATCHDOGS[engine] = watchdog


def watchdog_of(engine: Engine) -> Watchdog | None:
    """The engine's watchdog (tests read how many connections it aborted)."""
    return _WATCHDOGS.get(engine)


_WATCHDOGS: weakref.WeakKeyDictionary[Engine, Watchdog] = weakref.WeakKeyDictionary()


class Watchdog:
    """Aborts the connections held longer than ``limit_s``: one thread per process, not per call."""

    TICK_S = 0.1

    def __init__(self, limit_s: float, abort: Callable[[Any], None]) -> None:
        self.limit_s = limit_s
        self._abort = abort
        self._held: dict[int, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._pid: int | None = None  # the thread does not survive a fork: start one per process
        self.aborted = 0

    def arm(self, record: Any, dbapi_connection: Any, limit_s: float | None = None) -> None:
        if self._pid != os.getpid():
            self._start()
        deadline = time.monotonic() + (self.limit_s if limit_s is None else limit_s)
        with self._lock:
            self._held[id(record)] = (deadline, dbapi_connection)

    def disarm(self, record: Any) -> None:
        with self._lock:
            self._held.pop(id(record), None)

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._held.clear()
        # The thread holds the watchdog weakly: it ends when its engine is gone (e.g. the short-lived
        # engine of the start-up check in gunicorn's master).
        threading.Thread(target=Watchdog._run, args=(weakref.ref(self),), name="trialcds-db-watchdog",
                         daemon=True).start()

    @staticmethod
    def _run(watchdog_ref: weakref.ref[Watchdog]) -> None:
        while True:
            time.sleep(Watchdog.TICK_S)
            watchdog = watchdog_ref()
            if watchdog is None or watchdog._pid != os.getpid():
                return
            watchdog._abort_overdue(time.monotonic())
            del watchdog

    def _abort_overdue(self, now: float) -> None:
        with self._lock:
            overdue = [key for key, (deadline, _) in self._held.items() if deadline <= now]
            connections = [self._held.pop(key)[1] for key in overdue]
        for connection in connections:
            self.aborted += 1
            try:
                self._abort(connection)
            except Exception:  # noqa: BLE001 — already closed: nothing left to unblock
                pass
