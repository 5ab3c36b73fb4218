"""The database under a running service (issue 11, failures 1, 3, 6; deliverables 1, 2, 6).

Each test runs real ``trialcds serve`` processes in production mode (2 workers, signed client tokens)
and breaks their database on purpose: the SQLite file or its folder deleted, a read-only SQLite
file, PostgreSQL stopped, PostgreSQL frozen (SIGSTOP: connections stay open, nothing answers). Each
asserts the status (503 + OperationOutcome + Retry-After), how long it took, that nothing
acknowledged was lost, and that the same processes serve normally once the database is back.
Plus two instances on one PostgreSQL: a token is accepted once across both, an override on one
silences the card on the other.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cds_service.seeding import anchor_date, rebase_bundle, seed_bundles
from cds_service.store import card_issue, feedback, make_engine, migrate
from cds_service.trials import get_trial
from tests.pg import PostgresServer, postgres_cluster, wait_until
from tests.security.keys import Signer, ec_signer
from tests.serve_process import REPO_ROOT, TRIALCDS, free_port
from tests.service.helpers import FEEDBACK_URL, SERVICE_URL, hook_request

pytestmark = pytest.mark.slow

PUBLIC_URL = "https://cds.example.org"  # the audience every token names, whichever instance it reaches
ISS = "https://ehr.example.org/"
ELIGIBLE, OTHER = "p01-eligible-gem-nabpac", "p10-review-ecog2"
SQLITE_503_S = 2.0  # a lost SQLite file is noticed at once
PG_STOPPED_503_S = 3.0  # connection refused: at once
PG_FROZEN_503_S = 7.0  # ping 1 s + connect timeout 3 s (+ scheduling) on a server that does not answer
RECOVERY_S = 15.0


@pytest.fixture(scope="module")
def bundles() -> dict[str, dict]:
    today = datetime.now(timezone.utc).date()
    return {slug: rebase_bundle(bundle, anchor_date(), today) for slug, bundle in seed_bundles().items()}


@pytest.fixture(scope="module")
def trial():
    return get_trial("nct05271110")


@pytest.fixture(scope="module")
def signer() -> Signer:
    return ec_signer(kid="db-faults")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_cluster() as server:
        yield server


# --- a real service ---------------------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    seconds: float


@dataclass
class Service:
    base: str
    signer: Signer
    log: Path

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                timeout: float = 30) -> Answer:
        headers = {"Content-Type": "application/json"}
        if path.startswith("/cds-services/"):
            service_path = path.removesuffix("/feedback")
            headers["Authorization"] = f"Bearer {token or self.token(service_path)}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw, head = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            status, raw, head = error.code, error.read(), dict(error.headers)
        seconds = time.monotonic() - started
        head = {name.lower(): value for name, value in head.items()}
        return Answer(status, head, json.loads(raw) if raw else None, seconds)

    def token(self, service_path: str = SERVICE_URL) -> str:
        return self.signer.token(aud=PUBLIC_URL + service_path)

    def hook(self, bundle: dict, trial, **kwargs: Any) -> Answer:
        return self.request("POST", SERVICE_URL, hook_request(bundle, trial), **kwargs)

    def override(self, card_uuid: str, code: str | None = "patient-declined") -> Answer:
        item: dict[str, Any] = {"card": card_uuid, "outcome": "overridden",
                                "outcomeTimestamp": datetime.now(timezone.utc).isoformat()}
        if code:
            item["overrideReason"] = {"reason": {"system": "https://trialcds.example/override-reason", "code": code}}
        return self.request("POST", FEEDBACK_URL, {"feedback": [item]})

    def health(self) -> Answer:
        return self.request("GET", "/healthz", timeout=30)


def service_env(tmp_path: Path, signer: Signer, database_url: str) -> dict[str, str]:
    clients = tmp_path / "clients.json"
    clients.write_text(json.dumps({"clients": [{"iss": ISS, "jwks": signer.jwks()}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIALCDS_")}
    env.update({"TRIALCDS_DATABASE_URL": database_url, "TRIALCDS_CLIENTS_FILE": str(clients),
                "TRIALCDS_PUBLIC_URL": PUBLIC_URL, "PYTHONUNBUFFERED": "1"})
    return env


def db_upgrade(env: dict[str, str]) -> None:
    """What ``trialcds db upgrade`` does (tested as a command in tests/store), without another process."""
    migrate.upgrade_database(env["TRIALCDS_DATABASE_URL"])


@contextmanager
def serving(env: dict[str, str], signer: Signer, log: Path, *, prefix: tuple[str, ...] = ()) -> Iterator[Service]:
    """``trialcds serve`` (production, 2 workers) until discovery answers — discovery needs no
    database, so a service started on a broken one is still reachable. Stopped on the way out."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen([*prefix, TRIALCDS, "serve", "--host", "127.0.0.1", "--port", str(port),
                                    "--workers", "2"], env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            service = Service(f"http://127.0.0.1:{port}", signer, log)
            up = wait_until(lambda: process.poll() is not None or _answers(service.base), 60, 0.2)
            assert up and process.poll() is None, f"serve did not start:\n{log.read_text()[-3000:]}"
            yield service
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _answers(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/cds-services", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def assert_unavailable(answer: Answer, within_s: float) -> None:
    assert answer.status == 503, (answer.status, answer.body)
    assert answer.headers.get("retry-after") == "5"
    assert answer.seconds < within_s, f"503 took {answer.seconds:.2f} s"


def assert_outcome_503(answer: Answer, within_s: float) -> None:
    assert_unavailable(answer, within_s)
    assert answer.body["resourceType"] == "OperationOutcome" and answer.body["issue"][0]["code"] == "transient"


def feedback_rows(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(feedback)).scalar_one()
    finally:
        engine.dispose()


def assert_logged_as_unavailable(log: Path) -> None:
    """The log lines of the failed calls say what happened; none is a 500."""
    time.sleep(0.3)  # let the workers flush
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    calls = [line for line in lines if line.get("event") in ("hook call", "feedback call")]
    assert any(line.get("status") == 503 and line.get("outcome") == "database-unavailable" for line in calls)
    assert not [line for line in calls if line.get("status", 0) >= 500 and line.get("status") != 503]


def card_of(answer: Answer) -> dict:
    assert answer.status == 200, (answer.status, answer.body)
    [card] = answer.body["cards"]
    return card


def prove_recovered(service: Service, bundles: dict, trial, overridden_slug: str) -> None:
    """Healthy again (same processes), the override acknowledged before the fault still holds, and a
    new patient gets a card that is recorded."""
    assert wait_until(lambda: service.health().status == 200, RECOVERY_S, 0.25), service.log.read_text()[-2000:]
    assert service.hook(bundles[overridden_slug], trial).body == {"cards": []}
    other = card_of(service.hook(bundles[OTHER], trial))
    assert service.override(other["uuid"], code=None).status == 200


# --- SQLite ---------------------------------------------------------------------------------------

@pytest.fixture
def sqlite_service(tmp_path, signer):
    folder = tmp_path / "db"
    url = f"sqlite:///{folder / 'trialcds.sqlite'}"
    env = service_env(tmp_path, signer, url)
    db_upgrade(env)
    with serving(env, signer, tmp_path / "serve.log") as service:
        yield service, folder, url


def test_a_deleted_sqlite_file_is_503_never_a_silent_write_and_a_restored_one_serves(sqlite_service, bundles, trial):
    service, folder, url = sqlite_service
    path = folder / "trialcds.sqlite"
    card = card_of(service.hook(bundles[ELIGIBLE], trial))
    assert service.override(card["uuid"]).status == 200
    backup = folder.parent / "backup.sqlite"
    with sqlite3.connect(path) as live, sqlite3.connect(backup) as copy:
        live.backup(copy)  # the operator's backup, taken while the service runs
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)

    for _ in range(3):  # both workers, pooled connections that still hold the deleted file open
        assert_outcome_503(service.hook(bundles[OTHER], trial), SQLITE_503_S)
        assert_outcome_503(service.override(card["uuid"], code="not-interested"), SQLITE_503_S)
        health = service.health()
        assert_unavailable(health, SQLITE_503_S)
        assert health.body["database"] == "unreachable"
    assert not path.exists(), "the service must never create a new, empty database (a new salt)"

    shutil.copyfile(backup, path)
    prove_recovered(service, bundles, trial, ELIGIBLE)
    assert_logged_as_unavailable(service.log)
    assert feedback_rows(url) == 2  # the override from before the fault, and the dismiss after it


def test_a_deleted_sqlite_folder_is_503_and_serves_when_it_is_back(sqlite_service, bundles, trial):
    service, folder, url = sqlite_service
    card = card_of(service.hook(bundles[ELIGIBLE], trial))
    assert service.override(card["uuid"]).status == 200
    aside = folder.with_name("moved-away")
    folder.rename(aside)  # as good as deleted for the service: nothing at the configured path
    try:
        for _ in range(3):
            assert_outcome_503(service.hook(bundles[OTHER], trial), SQLITE_503_S)
            assert_unavailable(service.health(), SQLITE_503_S)
        assert not folder.exists()
    finally:
        aside.rename(folder)
    prove_recovered(service, bundles, trial, ELIGIBLE)
    assert feedback_rows(url) == 2


def test_a_read_only_sqlite_file_is_503_and_healthz_says_so(tmp_path, signer, bundles, trial):
    folder = tmp_path / "db"
    url = f"sqlite:///{folder / 'trialcds.sqlite'}"
    env = service_env(tmp_path, signer, url)
    db_upgrade(env)
    # An override stored before the file became read-only (the same store code the service runs).
    with serving(env, signer, tmp_path / "first.log") as first:
        card = card_of(first.hook(bundles[ELIGIBLE], trial))
        assert first.override(card["uuid"]).status == 200
    os.chmod(folder / "trialcds.sqlite", 0o444)
    os.chmod(folder, 0o555)
    # Root ignores file modes: the service runs without the capabilities that let it.
    prefix = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--") if os.geteuid() == 0 else ()
    try:
        with serving(env, signer, tmp_path / "serve.log", prefix=prefix) as service:
            health = service.health()
            assert_unavailable(health, SQLITE_503_S)
            assert health.body["database"] == "read-only"
            assert_outcome_503(service.hook(bundles[OTHER], trial), SQLITE_503_S)  # would record a card
            os.chmod(folder, 0o755)
            os.chmod(folder / "trialcds.sqlite", 0o644)
            prove_recovered(service, bundles, trial, ELIGIBLE)
    finally:
        os.chmod(folder, 0o755)
    assert feedback_rows(url) == 2


# --- PostgreSQL -----------------------------------------------------------------------------------

@pytest.fixture
def pg_service(tmp_path, signer, postgres):
    url = postgres.create_database()
    env = service_env(tmp_path, signer, url)
    db_upgrade(env)
    with serving(env, signer, tmp_path / "serve.log") as service:
        yield service, url


def test_a_stopped_postgresql_is_503_at_once_and_the_same_workers_recover(pg_service, postgres, bundles, trial):
    service, url = pg_service
    card = card_of(service.hook(bundles[ELIGIBLE], trial))
    assert service.override(card["uuid"]).status == 200
    postgres.stop()
    try:
        for _ in range(3):
            assert_outcome_503(service.hook(bundles[OTHER], trial), PG_STOPPED_503_S)
            assert_outcome_503(service.override(card["uuid"], code="not-interested"), PG_STOPPED_503_S)
            assert_unavailable(service.health(), PG_STOPPED_503_S)
        assert service.request("GET", "/cds-services").status == 200  # discovery needs no database
    finally:
        postgres.start()
    prove_recovered(service, bundles, trial, ELIGIBLE)
    assert_logged_as_unavailable(service.log)
    assert feedback_rows(url) == 2


def test_a_postgresql_that_stops_answering_is_503_in_bounded_time(pg_service, postgres, bundles, trial):
    service, url = pg_service
    card = card_of(service.hook(bundles[ELIGIBLE], trial))
    assert service.override(card["uuid"]).status == 200
    postgres.freeze()
    timings: list[float] = []
    try:
        for _ in range(3):
            answer = service.hook(bundles[OTHER], trial)
            assert_outcome_503(answer, PG_FROZEN_503_S)
            timings.append(answer.seconds)
            assert_unavailable(service.health(), PG_FROZEN_503_S)
        discovery = service.request("GET", "/cds-services")
        assert discovery.status == 200 and discovery.seconds < 1.0  # nothing else waits on the database
    finally:
        postgres.resume()
    print(f"hook call → 503 with PostgreSQL frozen: {', '.join(f'{t:.2f}' for t in timings)} s")
    prove_recovered(service, bundles, trial, ELIGIBLE)
    assert feedback_rows(url) == 2


def test_two_instances_on_one_postgresql_share_replay_and_suppression(tmp_path, signer, postgres, bundles, trial):
    url = postgres.create_database()
    env = service_env(tmp_path, signer, url)
    db_upgrade(env)
    with serving(env, signer, tmp_path / "a.log") as first, serving(env, signer, tmp_path / "b.log") as second:
        token = first.token()
        card = card_of(first.hook(bundles[ELIGIBLE], trial, token=token))
        replayed = second.hook(bundles[ELIGIBLE], trial, token=token)
        assert (replayed.status, replayed.body) == (401, None)  # accepted once, by either instance

        assert card_of(second.hook(bundles[ELIGIBLE], trial))  # not yet overridden: B shows it too
        assert first.override(card["uuid"]).status == 200
        assert second.hook(bundles[ELIGIBLE], trial).body == {"cards": []}  # overridden on A, silent on B
        assert card_of(second.hook(bundles[OTHER], trial))  # other patients unaffected


# --- SIGBUS: a truncated SQLite file under the workers --------------------------------------------

BUSY_WAIT_S = 2  # TRIALCDS_DB_STATEMENT_TIMEOUT: SQLite's busy wait, here shorter than the default 5 s
SIGBUS_503_S = BUSY_WAIT_S + 2.0  # a call on the broken file waits out the busy wait once, then 503


@pytest.fixture
def sqlite_service_short_busy_wait(tmp_path, signer):
    folder = tmp_path / "db"
    url = f"sqlite:///{folder / 'trialcds.sqlite'}"
    env = service_env(tmp_path, signer, url)
    env["TRIALCDS_DB_STATEMENT_TIMEOUT"] = str(BUSY_WAIT_S)
    db_upgrade(env)
    with serving(env, signer, tmp_path / "serve.log") as service:
        yield service, folder, url


def test_a_worker_killed_by_sigbus_is_replaced_by_one_that_answers_503_and_then_serves(
        sqlite_service_short_busy_wait, bundles, trial):
    """The database file and its ``-shm`` truncated under the running service (a full disk's cleanup,
    a careless restore): SQLite memory-maps the ``-shm`` wal-index in WAL mode (``mmap_size`` is 0, so
    not the database itself), and the next worker to touch it dies of SIGBUS. gunicorn respawns it.

    Found by experiment — the mechanism was not a broken pool or engine inherited from the master (the
    app and its engine are built in each worker after the fork; the master's start-up check disposes
    its own), nor a lock left behind (the kernel drops a dead process's POSIX locks), nor a reused
    ``-shm`` (with only the ``-shm`` truncated, the respawned workers rebuild it and serve at once): it
    was the *boot* of the new worker. ``create_app`` checked the database (schema and salt); on the
    truncated file that raised ("database is locked" while switching the empty file to WAL, or
    "no trialcds schema"), the worker exited with gunicorn's boot-error code 3, and gunicorn's master
    then *halts the whole service* ("Worker failed to boot") — nothing listened any more until an
    operator restarted it. Now a worker forked by a master that proved the database starts anyway,
    answers 503 + Retry-After while the database is broken, and serves once it has been restored.
    Nothing acknowledged is lost: an override answered 200 before the fault is still in force after.
    """
    service, folder, url = sqlite_service_short_busy_wait
    path = folder / "trialcds.sqlite"
    card = card_of(service.hook(bundles[ELIGIBLE], trial))
    assert service.override(card["uuid"]).status == 200  # acknowledged: must survive
    backup = folder.parent / "backup.sqlite"
    with sqlite3.connect(path) as live, sqlite3.connect(backup) as copy:
        live.backup(copy)  # the operator's backup, taken while the service runs

    os.truncate(path, 0)
    os.truncate(f"{path}-shm", 0)
    answers: list[Answer] = []
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline and sum(a.status == 503 for a in answers) < 3:
        try:
            answers.append(service.hook(bundles[OTHER], trial, timeout=15))
        except (ConnectionError, urllib.error.URLError, TimeoutError) as exc:
            # The call that met the SIGBUS dies with its worker; a halted service refuses connections.
            assert "refused" not in str(exc), f"the service is down:\n{service.log.read_text()[-3000:]}"
            time.sleep(0.2)
    log = service.log.read_text()
    assert "was sent SIGBUS" in log, "the fault did not kill a worker: nothing was tested"
    assert "Worker failed to boot" not in log
    assert sum(a.status == 503 for a in answers) >= 3, [(a.status, a.body) for a in answers]
    for answer in answers:  # no 500, no card recorded on a broken file
        assert_outcome_503(answer, 15)
    assert_outcome_503(answers[-1], SIGBUS_503_S)  # the respawned workers: up and answering
    assert_unavailable(service.health(), SIGBUS_503_S)
    print(f"after the SIGBUS, 503 in {', '.join(f'{a.seconds:.2f}' for a in answers)} s")

    # The operator restores the backup (a new file moved into place; the stale WAL files removed).
    restored = folder / "restored.sqlite"
    shutil.copyfile(backup, restored)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.replace(restored, path)
    prove_recovered(service, bundles, trial, ELIGIBLE)
    assert_logged_as_unavailable(service.log)
    assert feedback_rows(url) == 2  # the override from before the fault, and the dismiss after it


def test_nothing_acknowledged_is_lost_when_workers_die_of_sigbus_under_load(sqlite_service, bundles, trial):
    """The ``-shm`` alone truncated, twice, while two clients write: workers die of SIGBUS mid-call,
    gunicorn respawns them and they rebuild the wal-index from the WAL. Every card the service sent
    (each is recorded before the answer) and every feedback answered 200 is in the database after:
    a commit is in the WAL file before it is acknowledged, and the ``-shm`` is only an index of it."""
    service, folder, url = sqlite_service
    shm = Path(f"{folder / 'trialcds.sqlite'}-shm")
    stop = threading.Event()
    sent_cards: set[str] = set()
    overridden: set[str] = set()
    lost_calls = [0]

    def call(make: Callable[[], Answer]) -> Answer | None:
        try:
            return make()
        except (ConnectionError, urllib.error.URLError, TimeoutError):
            lost_calls[0] += 1  # its worker died: never acknowledged
            return None

    def cards_for(slug: str) -> None:
        while not stop.is_set():
            answer = call(lambda: service.hook(bundles[slug], trial, timeout=10))
            if answer is not None and answer.status == 200:
                sent_cards.update(card["uuid"] for card in answer.body["cards"])

    def overrides() -> None:
        for slug in [slug for slug in bundles if slug != OTHER]:
            answer = call(lambda: service.hook(bundles[slug], trial, timeout=10))
            if answer is None or answer.status != 200 or not answer.body["cards"]:
                continue
            card_uuid = answer.body["cards"][0]["uuid"]
            sent_cards.add(card_uuid)
            acknowledged = call(lambda: service.override(card_uuid))
            if acknowledged is not None and acknowledged.status == 200:
                overridden.add(card_uuid)
            time.sleep(0.2)

    writers = [threading.Thread(target=cards_for, args=(OTHER,)), threading.Thread(target=overrides)]
    for writer in writers:
        writer.start()
    for _ in range(2):
        time.sleep(1.0)
        os.truncate(shm, 0)
    time.sleep(1.0)
    stop.set()
    for writer in writers:
        writer.join(timeout=30)

    assert "was sent SIGBUS" in service.log.read_text(), "no worker died: nothing was tested"
    assert sent_cards and overridden and lost_calls[0] >= 1, (len(sent_cards), len(overridden), lost_calls)
    assert wait_until(lambda: service.health().status == 200, RECOVERY_S, 0.25)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            stored_cards = set(conn.execute(select(card_issue.c.card_uuid)).scalars())
            stored_feedback = set(conn.execute(select(feedback.c.card_uuid)).scalars())
    finally:
        engine.dispose()
    assert sent_cards <= stored_cards, f"{len(sent_cards - stored_cards)} cards sent but not recorded"
    assert overridden <= stored_feedback, f"{len(overridden - stored_feedback)} acknowledged overrides lost"
    print(f"{len(sent_cards)} cards and {len(overridden)} overrides acknowledged, all stored; "
          f"{lost_calls[0]} calls died with their worker")
