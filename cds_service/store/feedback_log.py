"""One structured log line per feedback call (cds-contract.md, "Feedback"), like hook calls have.

The line says what the EHR sent and what became of it — counts per outcome, per override reason
code, stored / duplicate / not issued by us — and nothing that identifies a patient, a user or a
card: reason codes reach the log only when they look like codes.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cds_service.protocol import Feedback
from cds_service.security.request_log import ACCESS_LOGGER, OUTCOME_BY_STATUS

_CODE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_SERVICE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_REASONS_LOGGED = 10


@dataclass
class FeedbackCallLog:
    entries: int = 0
    reason: str | None = None  # why the whole call was refused (our own fixed words)
    results: Counter[str] = field(default_factory=Counter)  # stored / duplicate / not-issued
    outcomes: Counter[str] = field(default_factory=Counter)  # accepted / overridden
    reasons: Counter[str] = field(default_factory=Counter)  # override reason codes; "none": plain dismiss

    def count(self, item: Feedback, result: str) -> None:
        self.results[result] += 1
        self.outcomes[item.outcome] += 1
        if item.outcome == "overridden":
            code = item.overrideReason.reason.code if item.overrideReason and item.overrideReason.reason else None
            self.reasons[safe_code(code)] += 1

    def fields(self, service_id: str | None, status: int) -> dict[str, Any]:
        if status < 300:
            outcome = "recorded"
        else:
            outcome = OUTCOME_BY_STATUS.get(status, "error" if status >= 500 else "rejected")
        summary: dict[str, Any] = {
            "entries": self.entries,
            "stored": self.results["stored"],
            "duplicate": self.results["duplicate"],
            "not_issued": self.results["not-issued"],
            "outcomes": dict(self.outcomes),
            "reasons": dict(self.reasons.most_common(MAX_REASONS_LOGGED)),
        }
        if self.reason:
            summary["refused"] = self.reason
        service = service_id if service_id and _SERVICE_ID.match(service_id) else "invalid"
        return {"service": service, "status": status, "outcome": outcome, "feedback": summary}


def safe_code(code: str | None) -> str:
    if not code:
        return "none"
    return code if _CODE.match(code) else "other"


def emit(entry: FeedbackCallLog | None, view_args: Mapping[str, Any], status: int) -> None:
    entry = entry or FeedbackCallLog()
    logging.getLogger(ACCESS_LOGGER).info("feedback call", extra=entry.fields(view_args.get("service_id"), status))
