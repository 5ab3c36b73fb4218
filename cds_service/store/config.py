"""The store's settings, read from the app's configuration and the environment (see docs/operator.md).

=====================================  =====================================================  =======
``TRIALCDS_DB_CONNECT_TIMEOUT``        seconds to connect to PostgreSQL (libpq, whole seconds)  3
``TRIALCDS_DB_STATEMENT_TIMEOUT``      seconds per statement / connection use; SQLite busy wait 5
``TRIALCDS_DB_POOL_TIMEOUT``           seconds to wait for a pooled connection                  3
``TRIALCDS_DB_POOL_SIZE``              connections kept per worker (plus 2 overflow)            4
``TRIALCDS_ACCEPTED_DAYS``             no card after one of our suggestions was accepted        180
``TRIALCDS_OVERRIDE_DAYS``             no card after an override with a reason                  30
                                       (``TRIALCDS_SUPPRESS_DAYS``, the old name, still works)
``TRIALCDS_OVERRIDE_DAYS_BY_REASON``   per reason code: ``code=days,code=days``                 —
``TRIALCDS_DISMISS_DAYS``              no card for the dismissing user after a plain dismiss    1
``TRIALCDS_RETENTION_DAYS``            issued cards and feedback kept this long                 longest rule + 7
``TRIALCDS_FEEDBACK_MAX_ENTRIES``      feedback entries per request (more → 400)                50
=====================================  =====================================================  =======
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cds_service.store.engine import DatabaseLimits, StoreConfigError
from cds_service.store.feedback_store import Retention, SuppressionRules

RETENTION_MARGIN_DAYS = 7


@dataclass(frozen=True)
class StoreSettings:
    limits: DatabaseLimits
    rules: SuppressionRules
    retention: Retention
    feedback_max_entries: int


def load_store_settings(config: Mapping[str, Any]) -> StoreSettings:
    """From ``config`` (app.config over os.environ). Raises StoreConfigError with a one-line reason."""
    limits = DatabaseLimits(
        connect_timeout_s=_number(config, "TRIALCDS_DB_CONNECT_TIMEOUT", 3.0, float, minimum=1),
        statement_timeout_s=_number(config, "TRIALCDS_DB_STATEMENT_TIMEOUT", 5.0, float, minimum=0.1),
        pool_timeout_s=_number(config, "TRIALCDS_DB_POOL_TIMEOUT", 3.0, float, minimum=0.1),
        pool_size=_number(config, "TRIALCDS_DB_POOL_SIZE", 4, int, minimum=1))
    override_days = _number(config, "TRIALCDS_OVERRIDE_DAYS", None, int)
    if override_days is None:
        override_days = _number(config, "TRIALCDS_SUPPRESS_DAYS", 30, int)
    rules = SuppressionRules(
        accepted_days=_number(config, "TRIALCDS_ACCEPTED_DAYS", 180, int),
        override_days=override_days,
        override_days_by_reason=parse_days_by_reason(str(config.get("TRIALCDS_OVERRIDE_DAYS_BY_REASON") or "")),
        dismiss_days=_number(config, "TRIALCDS_DISMISS_DAYS", 1, int))
    keep_days = _number(config, "TRIALCDS_RETENTION_DAYS", rules.longest_days + RETENTION_MARGIN_DAYS, int)
    if keep_days < rules.longest_days:
        raise StoreConfigError(f"TRIALCDS_RETENTION_DAYS ({keep_days}) is shorter than the longest suppression "
                               f"rule ({rules.longest_days} days): feedback would be forgotten too early")
    return StoreSettings(limits=limits, rules=rules, retention=Retention(keep_days=keep_days),
                         feedback_max_entries=_number(config, "TRIALCDS_FEEDBACK_MAX_ENTRIES", 50, int, minimum=1))


def parse_days_by_reason(raw: str) -> dict[str, int]:
    """``"patient-declined=90, not-interested=30"`` → {code: days}."""
    days: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        code, sep, value = part.partition("=")
        if not sep or not code.strip() or not value.strip().isdigit():
            raise StoreConfigError(f"TRIALCDS_OVERRIDE_DAYS_BY_REASON: expected code=days, not {part!r}")
        days[code.strip()] = int(value)
    return days


def _number(config: Mapping[str, Any], name: str, default: Any, kind: type, minimum: float = 0) -> Any:
    raw = config.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise StoreConfigError(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise StoreConfigError(f"{name} must be at least {minimum:g}")
    return value
