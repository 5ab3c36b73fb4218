"""`make demo`: the whole path an EHR takes, on the bundled synthetic patients.

1. start the local HAPI FHIR server (scripts/fhir-up.sh) and load the seed patients into it;
2. start `trialcds serve --dev` in the background;
3. fire `patient-view` for every seed patient WITHOUT prefetch (the service fetches from HAPI);
4. print patient, verdict and card summary, and leave the service running with curl examples;
5. screen the whole HAPI server through FHIR Bulk Data export (`trialcds screen --fhir-server`) and
   print the screening funnel and the path of report.html (var/demo-screen/).

Where Java or Maven is missing, HAPI cannot run: the demo says so and sends each request with the
prefetch an EHR would have sent, built from the seed bundles.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var"
BIN = Path(sys.executable).parent
PORT = int(os.environ.get("TRIALCDS_DEMO_PORT", "8080"))
SERVICE = f"http://127.0.0.1:{PORT}"
FHIR_UNAVAILABLE = 3  # scripts/fhir-up.sh: java or mvn missing

sys.path.insert(0, str(ROOT))
from cds_service.seeding import (  # noqa: E402
    anchor_date,
    load_expected,
    patient_id,
    prefetch_from_bundle,
    rebase_bundle,
    seed_bundles,
)
from cds_service.trials import get_trial  # noqa: E402


def start_fhir() -> str | None:
    """The local HAPI base URL, or None when this machine cannot run it."""
    print("Starting the local HAPI FHIR server (the first build downloads its jars: minutes) …", flush=True)
    done = subprocess.run(["bash", str(ROOT / "scripts" / "fhir-up.sh")], stdout=subprocess.PIPE, text=True)
    if done.returncode == FHIR_UNAVAILABLE:
        return None
    if done.returncode != 0:
        sys.exit(f"demo: the HAPI FHIR server did not start (see {VAR / 'hapi.log'})")
    return done.stdout.strip().splitlines()[-1]


def seed(fhir_base: str) -> None:
    subprocess.run([str(BIN / "trialcds"), "seed", "--fhir-server", fhir_base], check=True,
                   stdout=subprocess.DEVNULL)


def start_service() -> None:
    stop_previous_service()
    VAR.mkdir(exist_ok=True)
    log = open(VAR / "serve.log", "ab")
    process = subprocess.Popen([str(BIN / "trialcds"), "serve", "--dev", "--port", str(PORT), "--workers", "2"],
                               stdout=log, stderr=log, start_new_session=True)
    (VAR / "serve.pid").write_text(str(process.pid))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{SERVICE}/healthz", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.3)
    sys.exit(f"demo: trialcds serve did not start (see {VAR / 'serve.log'})")


def stop_previous_service() -> bool:
    """Stop the service an earlier demo left running (its whole process group); True if there was one."""
    pid_file = VAR / "serve.pid"
    if not pid_file.exists():
        return False
    try:
        os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        time.sleep(1)
        stopped = True
    except (ProcessLookupError, ValueError, PermissionError):
        stopped = False
    pid_file.unlink(missing_ok=True)
    return stopped


def hook_request(pid: str, fhir_base: str | None, prefetch: dict | None) -> dict:
    body: dict = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
                  "context": {"userId": "Practitioner/demo", "patientId": pid}}
    if fhir_base:
        body["fhirServer"] = fhir_base
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def main() -> int:
    fhir_base = start_fhir()
    trial = get_trial()
    today = datetime.now(timezone.utc).date()
    bundles = {slug: rebase_bundle(b, anchor_date(), today) for slug, b in seed_bundles().items()}
    if fhir_base:
        seed(fhir_base)
        print(f"HAPI FHIR at {fhir_base}: {len(bundles)} seed patients loaded. Requests carry NO prefetch.")
    else:
        print("Java/Maven missing: no local HAPI FHIR server. Requests carry the prefetch built from the seeds.")
    start_service()
    expected = load_expected()["patients"]
    url = f"{SERVICE}/cds-services/{trial.service.id}"
    rows, agree = [], 0
    for slug, bundle in bundles.items():
        pid = patient_id(bundle)
        prefetch = None if fhir_base else prefetch_from_bundle(bundle, trial)
        response = requests.post(url, json=hook_request(pid, fhir_base, prefetch), timeout=30)
        if response.status_code != 200:
            rows.append((slug, f"HTTP {response.status_code}", response.text[:80]))
            continue
        cards = response.json().get("cards", [])
        verdict = cards[0]["extension"]["trialcds.eligibility"]["verdict"] if cards else "not-eligible"
        agree += verdict == expected.get(slug, {}).get("verdict")
        rows.append((slug, verdict, cards[0]["summary"] if cards else "(no card)"))
    print_table(rows)
    print(f"\n{agree}/{len(rows)} verdicts as recorded in seeds/expected.json (as of {today.isoformat()}).")
    print_try_it(trial.service.id, fhir_base, next(iter(bundles.values())))
    screened = screen_population(fhir_base, today)
    return 0 if agree == len(rows) and screened else 1


def screen_population(fhir_base: str | None, today) -> bool:
    """The research coordinator's view: every patient on the server, screened through Bulk export."""
    if not fhir_base:
        print("\nNo local HAPI FHIR server: skipping the population screen (trialcds screen --fhir-server).")
        return True
    out = VAR / "demo-screen"
    print(f"\nScreening every patient on {fhir_base} through FHIR Bulk Data export "
          f"(trialcds screen --fhir-server {fhir_base} --out {out.relative_to(ROOT)}) …", flush=True)
    done = subprocess.run([str(BIN / "trialcds"), "screen", "--fhir-server", fhir_base, "--out", str(out),
                           "--as-of", today.isoformat(), "--quiet"])
    # 1: the outputs are written but the server holds records the screen had to skip (summary.json)
    return done.returncode in (0, 1)


def print_table(rows: list[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{'patient':<{width}}  {'verdict':<15}  card summary")
    print(f"{'-' * width}  {'-' * 15}  {'-' * 60}")
    for slug, verdict, summary in rows:
        print(f"{slug:<{width}}  {verdict:<15}  {summary}")


def print_try_it(service_id: str, fhir_base: str | None, bundle: dict) -> None:
    pid = patient_id(bundle)
    server = f', "fhirServer": "{fhir_base}"' if fhir_base else ""
    print(f"""
The service is still running at {SERVICE} (log: var/serve.log; stop it with `make demo-down`).
Try it yourself:
  curl -s {SERVICE}/cds-services | python3 -m json.tool
  curl -s -X POST {SERVICE}/cds-services/{service_id} -H 'Content-Type: application/json' \\
       -d '{{"hook": "patient-view", "hookInstance": "{uuid.uuid4()}", "context": {{"patientId": "{pid}"}}{server}}}' \\
       | python3 -m json.tool
  .venv/bin/trialcds evaluate --bundle seeds/patients/{pid}.json --as-of {anchor_date().isoformat()}""")


if __name__ == "__main__":
    if sys.argv[1:] == ["--stop"]:
        print("demo: service stopped" if stop_previous_service() else "demo: no demo service was running")
        sys.exit(0)
    sys.exit(main())
