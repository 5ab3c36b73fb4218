"""``trialcds seed`` without ``--as-of`` shifts the seeds to today in ``TRIALCDS_TIMEZONE`` — the as-of date
of the service's hook calls — not to today in UTC (which put window-edge seeds a day off east or west
of UTC). A real ``trialcds seed`` process posts to a loopback server that records the transaction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

from cds_service.seeding import anchor_date, seed_bundles

# UTC+14 and UTC−12: at any moment at least one of them is on another date than UTC.
FAR_ZONES = ("Pacific/Kiritimati", "Etc/GMT+12")
SLUG = "p01-eligible-gem-nabpac"


class Recorder(BaseHTTPRequestHandler):
    posted: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.posted.append(json.loads(body))
        reply = b'{"resourceType": "Bundle", "type": "transaction-response"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:
        pass


def run_seed(zone: str, base: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRIALCDS_TIMEZONE": zone}
    return subprocess.run([sys.executable, "-m", "cds_service.cli", "seed", "--fhir-server", base, "--only", SLUG],
                          capture_output=True, text=True, timeout=120, env=env)


def birth_date(transaction: dict) -> str:
    return next(e["resource"]["birthDate"] for e in transaction["entry"] if e["resource"]["resourceType"] == "Patient")


def test_seeds_are_shifted_to_today_in_the_site_zone():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        now = datetime.now(timezone.utc)
        zone = next(z for z in FAR_ZONES if now.astimezone(ZoneInfo(z)).date() != now.date())
        Recorder.posted.clear()
        done = run_seed(zone, f"http://127.0.0.1:{server.server_address[1]}/fhir")
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    # Either side of a midnight passing during the run is the zone's date, never UTC's.
    zone_dates = {now.astimezone(ZoneInfo(zone)).date(), datetime.now(timezone.utc).astimezone(ZoneInfo(zone)).date()}
    assert any(f"dates as of {d.isoformat()}" in done.stdout for d in zone_dates), done.stdout
    # The shift really went into the resources: the birth date moved by (zone's today − anchor) days.
    original = birth_date({"entry": seed_bundles()[SLUG]["entry"]})
    shifted = {(datetime.fromisoformat(original) + (d - anchor_date())).date().isoformat() for d in zone_dates}
    assert len(Recorder.posted) == 1 and birth_date(Recorder.posted[0]) in shifted


def test_an_unknown_zone_is_a_usage_error_before_any_request():
    Recorder.posted.clear()
    done = run_seed("Mars/Olympus_Mons", "http://127.0.0.1:9/fhir")
    assert done.returncode == 2
    assert "TRIALCDS_TIMEZONE" in done.stderr
