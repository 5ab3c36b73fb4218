"""A real, throw-away PostgreSQL server for tests: Debian's ``postgresql`` binaries, a new cluster in a
temporary folder, on a free loopback port, stopped (and deleted) at the end.

PostgreSQL refuses to run as root, and CI runs as root: then the cluster belongs to the ``postgres``
system user (created by the Debian package) and every server command runs through ``runuser``.
Authentication is ``trust`` on 127.0.0.1 only — the cluster lives for one test session.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.serve_process import free_port

PG_BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
RUN_AS = "postgres"


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's binaries, or None (then the PostgreSQL tests are skipped)."""
    for candidate in PG_BIN_CANDIDATES:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


class PostgresServer:
    """One cluster. ``url(database)`` for SQLAlchemy; ``create_database()`` for a fresh database."""

    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "server.log"
        self.port = free_port()
        self._as_root = os.geteuid() == 0

    # --- commands --------------------------------------------------------------------------------

    def _run(self, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", RUN_AS, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True,
                               cwd="/")  # postgres cannot read root's working directory

    def init(self) -> None:
        self.sockets.mkdir(parents=True)
        if self._as_root:
            shutil.chown(self.root, RUN_AS, RUN_AS)
            shutil.chown(self.sockets, RUN_AS, RUN_AS)
        self._run(["initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                   "--no-sync", "--locale=C"])

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c max_connections=60 -c shared_buffers=32MB")
        self._run(["pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "30", "start"])

    def stop(self, mode: str = "fast") -> None:
        self.resume()  # a frozen server cannot stop
        self._run(["pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop"])

    def is_running(self) -> bool:
        try:
            self._run(["pg_ctl", "-D", str(self.data), "status"], timeout=10)
        except subprocess.CalledProcessError:
            return False
        return True

    # --- freezing: a server that stops answering -------------------------------------------------

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def _processes(self) -> list[int]:
        postmaster = self.postmaster_pid()
        return [postmaster, *_children(postmaster)]

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every backend: connections stay open, nothing answers (the
        kernel still accepts and acknowledges TCP, as with a frozen VM)."""
        for pid in self._processes():
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        try:
            pids = self._processes()
        except (OSError, ValueError):
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    # --- databases -------------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=5",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


@contextmanager
def postgres_cluster() -> Iterator[PostgresServer]:
    """A started cluster, stopped and removed on the way out (even when the test failed)."""
    bin_dir = pg_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (scripts/system-deps.sh installs Debian's postgresql)")
    root = Path(tempfile.mkdtemp(prefix="trialcds-pg-"))
    root.chmod(0o755)
    server = PostgresServer(bin_dir, root)
    try:
        server.init()
        server.start()
        yield server
    finally:
        try:
            if server.is_running():
                server.stop("immediate")
        finally:
            shutil.rmtree(root, ignore_errors=True)


def wait_until(predicate, timeout_s: float, interval_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()
