"""Structured JSON logs: one line per hook call, and nothing that identifies a patient or a caller.

Fields are built from an explicit allow-list of safe values (ids we validated, numbers, fixed
category words), never by dumping a request, a model or an exception message: pydantic errors
echo their input, and an EHR's request carries tokens and patient data. A redacting filter on
every ``trialcds`` log record is a second line of defence for messages written elsewhere.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

ACCESS_LOGGER = "trialcds.access"
_UUID = re.compile(r"^(urn:uuid:)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_SERVICE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_VERDICTS = {"likely-eligible", "needs-review", "not-eligible"}
# A suppression reason: a fixed word, or word:code (the override code a client sent, so shape-checked).
_SUPPRESSION = re.compile(r"^[a-z-]{1,32}(:[A-Za-z0-9._-]{1,64})?$")
# JWT / JWS compact form, and Authorization-style credentials in free text.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer|access_token[\"']?\s*[:=]\s*[\"']?)\s*[^\s\"',}]+")

OUTCOME_BY_STATUS = {
    400: "invalid-request", 401: "unauthenticated", 403: "forbidden-fhir-server", 404: "unknown-service",
    405: "method-not-allowed", 412: "data-unavailable", 413: "body-too-large", 415: "unsupported-media-type",
    503: "database-unavailable",  # the service's own database (the only 503 the app answers)
}
# Extra attributes a log record may carry into the JSON line. Anything else is dropped.
SAFE_FIELDS = ("hookInstance", "service", "status", "outcome", "verdict", "cards", "timings_ms",
               "category", "notes", "pages", "truncated",
               "feedback",  # the feedback call's counts (cds_service/store/feedback_log.py)
               "suppressed")  # why a hook call showed no card (feedback or already in the pipeline)  # the feedback call's counts (cds_service/store/feedback_log.py)


def redact(text: str) -> str:
    return _BEARER.sub(lambda m: m.group(1) + " [redacted]", _JWT.sub("[redacted-jwt]", text))


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        for name in SAFE_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type and where it happened, but not its message: messages of
            # validation errors quote the offending (patient) data.
            exc_type, _, tb = record.exc_info
            line["exception"] = exc_type.__name__
            line["frames"] = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}:{f.name}"
                              for f in traceback.extract_tb(tb)[-8:]]
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"), default=str)


class RedactingFilter(logging.Filter):
    """Scrubs tokens from records logged by any code under ``trialcds``, before any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            try:
                record.msg = record.getMessage()
            except Exception:  # noqa: BLE001 - a bad format string must not break logging
                record.msg = str(record.msg)
            record.args = None
        record.msg = redact(str(record.msg))
        return True


def configure_logging(stream: Any = None, level: int = logging.INFO) -> None:
    """The serving process's logging: every logger (``cds_service.*``, ``trialcds.*``) as JSON
    lines on stderr, through the redacting filter. Idempotent; called by ``trialcds serve`` only,
    so tests keep pytest's own capture."""
    root = logging.getLogger()
    root.setLevel(level)
    if not any(getattr(h, "_trialcds_json", False) for h in root.handlers):
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(JsonLineFormatter())
        handler.addFilter(RedactingFilter())
        handler._trialcds_json = True  # type: ignore[attr-defined]
        root.addHandler(handler)


@dataclass
class HookCallLog:
    """What one hook call will log; hooks.py and record.py fill it in as the call proceeds."""

    service: str | None = None
    hook_instance: str | None = None
    verdict: str | None = None
    cards: int | None = None
    started: float = field(default_factory=time.perf_counter)
    timings: dict[str, float] = field(default_factory=dict)
    suppressed: str | None = None  # e.g. "accepted", "overridden:patient-declined", "in-pipeline:…"
    notes: int = 0

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + (time.perf_counter() - start)

    def fields(self, status: int) -> dict[str, Any]:
        timings = {k: round(v * 1000, 1) for k, v in self.timings.items()}
        timings["total"] = round((time.perf_counter() - self.started) * 1000, 1)
        if status < 300:
            outcome = "cards" if self.cards else "no-cards"
        else:
            outcome = OUTCOME_BY_STATUS.get(status, "error" if status >= 500 else "rejected")
        out: dict[str, Any] = {
            "service": _safe(self.service, _SERVICE_ID),
            "hookInstance": _safe(self.hook_instance, _UUID),
            "status": status,
            "outcome": outcome,
            "timings_ms": timings,
        }
        if self.verdict in _VERDICTS:
            out["verdict"] = self.verdict
        if self.cards is not None:
            out["cards"] = int(self.cards)
        if self.suppressed:
            out["suppressed"] = _safe(self.suppressed, _SUPPRESSION)
        if self.notes:
            out["notes"] = int(self.notes)
        return out


class _NullLog(HookCallLog):
    """Returned outside a hook call so callers never need to check for None."""

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        yield


def _safe(value: str | None, pattern: re.Pattern[str]) -> str | None:
    if value is None:
        return None
    # Caller-controlled strings reach the log only when they have the expected shape.
    return value if isinstance(value, str) and pattern.match(value) else "invalid"


def current() -> HookCallLog:
    """This request's HookCallLog (a do-nothing one outside a hook call or a request)."""
    from flask import g, has_request_context

    if has_request_context():
        entry = g.get("trialcds_hook_log")
        if entry is not None:
            return entry
    return _NullLog()


def emit(entry: HookCallLog, status: int) -> None:
    logging.getLogger(ACCESS_LOGGER).info("hook call", extra=entry.fields(status))
