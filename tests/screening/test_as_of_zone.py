"""``trialcds screen`` without ``--as-of`` screens as of today in ``TRIALCDS_TIMEZONE``, as the card
and ``trialcds evaluate`` do (it used to take today in UTC whatever the site's zone)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from .helpers import resources, write_ndjson

# UTC+14 and UTC−12: at any moment at least one of them is on another date than UTC.
FAR_ZONES = ("Pacific/Kiritimati", "Etc/GMT+12")


def run_screen(folder, out, zone: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRIALCDS_TIMEZONE": zone}
    return subprocess.run([sys.executable, "-m", "cds_service.cli", "screen", "--ndjson", str(folder),
                           "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=300, env=env)


def test_the_default_as_of_date_is_today_in_the_site_zone(seeds, tmp_path):
    one = {"p01-eligible-gem-nabpac": seeds["p01-eligible-gem-nabpac"]}
    folder = write_ndjson(tmp_path / "export", resources(one.values()))
    now = datetime.now(timezone.utc)
    zone = next(z for z in FAR_ZONES if now.astimezone(ZoneInfo(z)).date() != now.date())
    done = run_screen(folder, tmp_path / "out", zone)
    assert done.returncode == 0, done.stderr
    as_of = json.loads((tmp_path / "out" / "summary.json").read_text())["asOf"]
    # Either side of a midnight passing during the run is the zone's date, never UTC's.
    expected = {datetime.now(timezone.utc).astimezone(ZoneInfo(zone)).date().isoformat(),
                now.astimezone(ZoneInfo(zone)).date().isoformat()}
    assert as_of in expected


def test_an_unknown_zone_is_a_usage_error_that_writes_nothing(seeds, tmp_path):
    folder = write_ndjson(tmp_path / "export", resources(seeds.values()))
    done = run_screen(folder, tmp_path / "out", "Mars/Olympus_Mons")
    assert done.returncode == 2
    assert "TRIALCDS_TIMEZONE" in done.stderr
    assert not (tmp_path / "out").exists()
