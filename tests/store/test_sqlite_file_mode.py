"""The SQLite file holds the salt of the patient hashes, so ``trialcds db upgrade`` creates it readable by
its owner only, whatever the umask; SQLite's -wal and -shm files follow the database file's mode."""

from __future__ import annotations

import os
import stat
import subprocess

from tests.serve_process import REPO_ROOT, TRIALCDS


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def db_upgrade(url: str, umask: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRIALCDS_DATABASE_URL": url}
    return subprocess.run([TRIALCDS, "db", "upgrade"], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60, preexec_fn=lambda: os.umask(umask))


def test_db_upgrade_creates_an_owner_only_file(tmp_path):
    path = tmp_path / "new" / "trialcds.sqlite"
    done = db_upgrade(f"sqlite:///{path}", 0o022)
    assert done.returncode == 0, done.stderr
    assert mode(path) == 0o600
    for side in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if side.exists():
            assert mode(side) & 0o077 == 0, side


def test_an_existing_file_keeps_the_operators_mode(tmp_path):
    path = tmp_path / "trialcds.sqlite"
    path.touch()
    path.chmod(0o640)  # e.g. a group the backup job runs as
    done = db_upgrade(f"sqlite:///{path}", 0o022)
    assert done.returncode == 0, done.stderr
    assert mode(path) == 0o640
