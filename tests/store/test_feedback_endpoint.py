"""The feedback endpoint over HTTP (Flask's test client, SQLite and PostgreSQL): the per-request cap,
cards we never issued, one structured log line per call, and database failures as 503s."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone

import pytest

from cds_service.app import create_app
from cds_service.seams import AUTHENTICATE
from cds_service.seeding import anchor_date, rebase_bundle, seed_bundles
from cds_service.security.request_log import ACCESS_LOGGER, JsonLineFormatter
from cds_service.store import migrate
from cds_service.trials import get_trial
from tests.service.helpers import FEEDBACK_URL, SERVICE_URL, hook_request, the_card

SLUG = "p01-eligible-gem-nabpac"


@pytest.fixture(scope="module")
def bundle() -> dict:
    return rebase_bundle(seed_bundles()[SLUG], anchor_date(), datetime.now(timezone.utc).date())


@pytest.fixture
def app(migrated_url):
    app = create_app({"TRIALCDS_DATABASE_URL": migrated_url, "TRIALCDS_DEV": True, "TRIALCDS_FEEDBACK_MAX_ENTRIES": 5})
    yield app
    app.extensions["trialcds.engine"].dispose()


def overridden(card_uuid: str, code: str | None = "patient-declined", second: int = 0) -> dict:
    item = {"card": card_uuid, "outcome": "overridden",
            "outcomeTimestamp": datetime.now(timezone.utc).replace(microsecond=second).isoformat()}
    if code:
        item["overrideReason"] = {"reason": {"system": "https://trialcds.example/override-reason", "code": code}}
    return item


class Lines(logging.Handler):
    """The feedback call's log lines, formatted as trialcds serve writes them."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonLineFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = json.loads(self.format(record))
        if line["event"] == "feedback call":
            self.lines.append(line)


@pytest.fixture
def log_lines():
    handler = Lines()
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(previous)


def test_feedback_over_the_cap_is_refused_whole(app, bundle, log_lines):
    client = app.test_client()
    card = the_card(client.post(SERVICE_URL, json=hook_request(bundle, get_trial("nct05271110"))))
    too_many = {"feedback": [overridden(card["uuid"], second=i) for i in range(6)]}
    response = client.post(FEEDBACK_URL, json=too_many)
    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert "at most 5" in response.get_json()["issue"][0]["diagnostics"]
    assert app.extensions["trialcds.store"].feedback_count(card["uuid"]) == 0  # nothing half-stored
    assert log_lines[-1]["status"] == 400 and log_lines[-1]["feedback"]["refused"] == "too-many-entries"
    assert client.post(FEEDBACK_URL, json={"feedback": too_many["feedback"][:5]}).status_code == 200
    assert app.extensions["trialcds.store"].feedback_count(card["uuid"]) == 5


def test_one_log_line_per_call_with_outcomes_reasons_and_counts(app, bundle, log_lines):
    client = app.test_client()
    card = the_card(client.post(SERVICE_URL, json=hook_request(bundle, get_trial("nct05271110"))))
    body = {"feedback": [overridden(card["uuid"]), overridden(card["uuid"]),  # the second: a duplicate
                         overridden(card["uuid"], code=None, second=1),  # a plain dismiss
                         overridden(str(uuid.uuid4()), code="<script>"),  # never issued; hostile code
                         ]}
    assert client.post(FEEDBACK_URL, json=body).status_code == 200
    [line] = log_lines
    assert (line["service"], line["status"], line["outcome"]) == ("nct05271110", 200, "recorded")
    assert line["feedback"] == {"entries": 4, "stored": 2, "duplicate": 1, "not_issued": 1,
                                "outcomes": {"overridden": 4},
                                "reasons": {"patient-declined": 2, "none": 1, "other": 1}}
    text = json.dumps(line)
    assert card["uuid"] not in text and "<script>" not in text and bundle["entry"][0]["resource"]["id"] not in text


def test_the_hook_call_and_feedback_are_503_when_postgresql_is_stopped(bundle, postgres):
    # (The SQLite faults are tested against a real serve process: tests/reliability.)
    url = postgres.create_database()
    migrate.upgrade_database(url)
    app = create_app({"TRIALCDS_DATABASE_URL": url, "TRIALCDS_DEV": False, "TRIALCDS_DB_UPGRADE": False})
    app.extensions[AUTHENTICATE] = lambda request, audience: None  # authentication is not under test here
    client = app.test_client()
    trial = get_trial("nct05271110")
    card = the_card(client.post(SERVICE_URL, json=hook_request(bundle, trial)))
    postgres.stop()
    try:
        for path, body in ((SERVICE_URL, hook_request(bundle, trial)),
                           (FEEDBACK_URL, {"feedback": [overridden(card["uuid"])]})):
            response = client.post(path, json=body)
            assert response.status_code == 503, response.get_data(as_text=True)
            assert response.headers["Retry-After"] == "5"
            assert response.get_json()["resourceType"] == "OperationOutcome"
        health = client.get("/healthz")
        assert health.status_code == 503 and health.get_json()["database"] == "unreachable"
    finally:
        postgres.start()
    assert client.get("/healthz").status_code == 200  # the same app recovers without a restart
    assert client.post(FEEDBACK_URL, json={"feedback": [overridden(card["uuid"])]}).status_code == 200
    assert client.post(SERVICE_URL, json=hook_request(bundle, trial)).get_json()["cards"] == []
