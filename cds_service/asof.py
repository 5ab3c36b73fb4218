"""The as-of date of a decision: today in the site's time zone (setting ``TRIALCDS_TIMEZONE``).

The spec's general rules: time windows count back from the as-of date, which is today's date where the
site is (an IANA zone name, default UTC) — a hook call at 00:30 in Linköping is already tomorrow there
while it is still today in UTC. Only the standard library is imported, so ``trialcds evaluate`` stays fast.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

TIMEZONE_SETTING = "TRIALCDS_TIMEZONE"
DEFAULT_TIMEZONE = "UTC"


def site_zone(name: str | None) -> ZoneInfo:
    """The zone named by the setting (empty → UTC); a ValueError naming the setting for an unknown one."""
    name = (name or "").strip() or DEFAULT_TIMEZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{TIMEZONE_SETTING} must be an IANA time zone name such as Europe/Stockholm or UTC, "
                         f"not {name!r}") from None


def site_today(zone_name: str | None, now: datetime | None = None) -> date:
    """Today's date in the site's zone; ``now`` (an aware datetime) is injectable for tests."""
    moment = now if now is not None else datetime.now(timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(site_zone(zone_name)).date()
