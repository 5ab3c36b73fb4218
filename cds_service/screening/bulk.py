"""FHIR Bulk Data Access (HL7 IG 2.0) client: a server's export downloaded into a folder of NDJSON.

``trialcds screen --fhir-server URL [--group ID]`` calls ``download_export``; the folder it returns is
read by ``inputs.NdjsonSource`` like any other Bulk Data output. The protocol, step by step:

1. **Kick-off** ``GET [base]/Patient/$export`` (``Group/[id]/$export`` with ``--group``, ``[base]/$export``
   at system level) with ``Prefer: respond-async``, ``Accept: application/fhir+json``,
   ``_outputFormat=application/fhir+ndjson`` and ``_type`` = the types the trial reads (derived from
   its prefetch templates by ``reads.TrialReads``). The server answers 202 and a status URL
   (``Content-Location``).
2. **Poll** the status URL: 202 while the export runs (its ``X-Progress`` is shown, the next poll
   waits the ``Retry-After`` the server asks for), 200 with the manifest when it is done, 4xx/5xx
   (with an OperationOutcome) when it failed.
3. **Download** every ``output`` file, streamed to disk (``Type_n.ndjson``, written as ``.part`` and
   renamed when whole); the bearer token goes with it only when the manifest says
   ``requiresAccessToken``. Any ``error`` file with content fails the run with its first message.
4. **Referenced resources**: a Patient- or Group-level export carries only the Patient compartment;
   a Medication or a ResearchStudy names no patient (HAPI refuses ``_type=Medication`` there, as the
   IG allows). The ones the exported resources point at are then read by id (``Medication?_id=…``,
   100 a request) into ``Medication_0000.ndjson`` — what the hook's ``_include`` brings.
5. **Clean up**: ``DELETE`` the status URL once the files are safely down, so the server can drop
   them.

The state of the export (request, status URL, manifest, files done) is kept in ``bulk-export.json``
inside the folder after every step: a run that is interrupted (Ctrl-C, a crash, a lost connection)
and started again with the same ``--out`` polls the same export and downloads only the files not yet
down, instead of asking the server for a new export. A finished export is not reused: the next run
asks for a fresh one.

Never logged: the token, patient data. Errors are ``BulkExportError`` (``trialcds screen`` exits 3).
"""

from __future__ import annotations

import email.utils
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import requests

from cds_service.screening.progress import Progress

STATE_FILE = "bulk-export.json"
NDJSON = "application/fhir+ndjson"
DOWNLOAD_BLOCK = 1024 * 1024
IDS_PER_READ = 100
# The FHIR R4 Patient compartment (CompartmentDefinition/patient, plus Device as HAPI adds it). A
# Patient- or Group-level export carries only these types (IG 2.0); any other type the trial reads
# (what its prefetch ``_include``s: Medication, ResearchStudy…) is read by reference after the download.
PATIENT_COMPARTMENT = frozenset("""
    Account AdverseEvent AllergyIntolerance Appointment AppointmentResponse AuditEvent Basic BodyStructure
    CarePlan CareTeam ChargeItem Claim ClaimResponse ClinicalImpression Communication CommunicationRequest
    Composition Condition Consent Coverage CoverageEligibilityRequest CoverageEligibilityResponse
    DetectedIssue Device DeviceRequest DeviceUseStatement DiagnosticReport DocumentManifest DocumentReference
    Encounter EnrollmentRequest EpisodeOfCare ExplanationOfBenefit FamilyMemberHistory Flag Goal Group
    ImagingStudy Immunization ImmunizationEvaluation ImmunizationRecommendation Invoice List MeasureReport
    Media MedicationAdministration MedicationDispense MedicationRequest MedicationStatement
    MolecularSequence NutritionOrder Observation Patient Person Procedure Provenance QuestionnaireResponse
    RelatedPerson RequestGroup ResearchSubject RiskAssessment Schedule ServiceRequest Specimen
    SupplyDelivery SupplyRequest VisionPrescription""".split())
# Polling: the server's Retry-After is honoured within these bounds; without one, the wait doubles.
MIN_WAIT_S, MAX_WAIT_S, FIRST_WAIT_S = 0.5, 300.0, 1.0
TIMEOUT_S = (10.0, 120.0)  # connect, read (between bytes)
CONNECTION_ATTEMPTS = 4  # waits of 1, 2 and 4 s between them


class BulkExportError(Exception):
    """The export failed (server error, error file, bad manifest); the message says what and where."""


@dataclass(frozen=True)
class ExportRequest:
    base_url: str
    level: str  # "patient" | "group" | "system"
    group_id: str | None
    exported_types: tuple[str, ...]
    referenced_types: tuple[str, ...]

    @property
    def kickoff_url(self) -> str:
        path = {"patient": "Patient/$export", "group": f"Group/{self.group_id}/$export", "system": "$export"}[self.level]
        query = urlencode({"_outputFormat": NDJSON, "_type": ",".join(self.exported_types)}, safe=",/")
        return f"{self.base_url}/{path}?{query}"

    def to_json(self) -> dict[str, Any]:
        return {"kickoff": self.kickoff_url, "referencedTypes": list(self.referenced_types)}


def plan_request(base_url: str, group_id: str | None, resource_types: Iterable[str], level: str | None = None) -> ExportRequest:
    """Which types the kick-off asks for, and which are read by reference afterwards."""
    level = level or ("group" if group_id else "patient")
    if level not in ("patient", "group", "system"):
        raise ValueError(f"unknown export level {level!r}")
    if level == "group" and not group_id:
        raise ValueError("a Group-level export needs a Group id")
    types = sorted(set(resource_types))
    if level == "system":
        exported, referenced = types, []
    else:
        exported = [t for t in types if t in PATIENT_COMPARTMENT]
        referenced = [t for t in types if t not in PATIENT_COMPARTMENT]
    return ExportRequest(base_url.rstrip("/"), level, group_id if level == "group" else None,
                         tuple(exported), tuple(referenced))


def download_export(base_url: str, group_id: str | None, resource_types: Iterable[str], folder: Path,
                    token: str | None, progress: Progress, *, level: str | None = None,
                    session: requests.Session | None = None, sleep: Callable[[float], None] = time.sleep) -> Path:
    """Run (or resume) a Bulk Data export into ``folder``; returns the folder of NDJSON files."""
    request = plan_request(base_url, group_id, resource_types, level)
    client = _Client(session or requests.Session(), token)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    state = _State.load(folder)
    if state.resumable_for(request):
        progress.log(f"bulk export: resuming the export started {state.data.get('startedAt', '?')} "
                     f"(state in {folder / STATE_FILE})")
    else:
        state = _State.fresh(folder, request)
        _clear_downloads(folder)
        state.data["statusUrl"] = _kick_off(client, request)
        state.save()
    manifest = state.data.get("manifest")
    if manifest is None:
        try:
            manifest = _poll(client, state.data["statusUrl"], progress, sleep)
        except _ExportGone:
            # The server forgot the export (restarted, expired): ask again, once.
            progress.log("bulk export: the server no longer knows the interrupted export; starting a new one")
            state = _State.fresh(folder, request)
            _clear_downloads(folder)
            state.data["statusUrl"] = _kick_off(client, request)
            state.save()
            manifest = _poll(client, state.data["statusUrl"], progress, sleep)
        _check_manifest(manifest)
        state.data["manifest"] = manifest
        state.save()
    _download_outputs(client, manifest, folder, state, progress)
    _raise_for_error_files(client, manifest, folder)
    if request.referenced_types and not state.data.get("referencedDone"):
        _read_referenced(client, request, folder, progress)
        state.data["referencedDone"] = True
        state.save()
    _delete_export(client, state.data["statusUrl"], progress)
    state.data["finished"] = True
    state.save()
    return folder


# --- HTTP ----------------------------------------------------------------------------------------

class _ExportGone(Exception):
    pass


class _Client:
    def __init__(self, session: requests.Session, token: str | None) -> None:
        self.session, self.token = session, token

    def get(self, url: str, *, accept: str, auth: bool = True, stream: bool = False,
            headers: dict[str, str] | None = None) -> requests.Response:
        return self._send("GET", url, accept, auth, stream, headers)

    def delete(self, url: str) -> requests.Response:
        return self._send("DELETE", url, "application/fhir+json", True, False, None)

    def _send(self, method: str, url: str, accept: str, auth: bool, stream: bool,
              headers: dict[str, str] | None) -> requests.Response:
        all_headers = {"Accept": accept, **(headers or {})}
        if auth and self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        # A dropped connection in a long export is retried (every request here is idempotent except
        # the kick-off, which is not retried: a second kick-off would start a second export).
        attempts = 1 if "Prefer" in all_headers else CONNECTION_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                return self.session.request(method, url, headers=all_headers, stream=stream, timeout=TIMEOUT_S,
                                            allow_redirects=True)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == attempts:
                    raise BulkExportError(f"{method} {_where(url)}: {exc.__class__.__name__}: the FHIR server "
                                          f"could not be reached ({attempts} attempts)") from None
                time.sleep(2 ** (attempt - 1))
            except requests.RequestException as exc:
                raise BulkExportError(f"{method} {_where(url)}: {exc.__class__.__name__}") from None
        raise AssertionError("unreachable")


def _where(url: str) -> str:
    """A URL for messages: without its query (ids of jobs are fine, but keep lines short)."""
    return url.split("?", 1)[0]


def _server_says(response: requests.Response) -> str:
    """The first diagnostics of an OperationOutcome body, else the start of the body."""
    text = response.text[:2000] if response.content else ""
    try:
        body = orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        for issue in body.get("issue") or ():
            if isinstance(issue, dict) and (issue.get("diagnostics") or issue.get("details")):
                return str(issue.get("diagnostics") or issue["details"].get("text") or "")[:300]
    return " ".join(text.split())[:300] or "(no body)"


def _fail(what: str, response: requests.Response) -> BulkExportError:
    return BulkExportError(f"{what}: HTTP {response.status_code} from {_where(response.url)}: {_server_says(response)}")


def _kick_off(client: _Client, request: ExportRequest) -> str:
    response = client.get(request.kickoff_url, accept="application/fhir+json",
                          headers={"Prefer": "respond-async"})
    if response.status_code != 202:
        raise _fail("Bulk export kick-off refused", response)
    status_url = response.headers.get("Content-Location")
    if not status_url:
        raise BulkExportError(f"Bulk export kick-off: {_where(request.kickoff_url)} answered 202 without a "
                              f"Content-Location (the status URL)")
    return status_url


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP-date), None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def _poll(client: _Client, status_url: str, progress: Progress, sleep: Callable[[float], None]) -> dict:
    phase = progress.phase("bulk export on the server", unit="polls")
    wait = FIRST_WAIT_S
    while True:
        response = client.get(status_url, accept="application/json")
        if response.status_code == 200:
            phase.done()
            try:
                manifest = response.json()
            except ValueError:
                raise BulkExportError(f"Bulk export status {_where(status_url)}: the manifest is not JSON") from None
            return manifest
        if response.status_code in (404, 410):
            raise _ExportGone()
        if response.status_code not in (202, 429):
            raise _fail("Bulk export failed", response)
        phase.advance()
        if response.headers.get("X-Progress"):
            phase.message(response.headers["X-Progress"][:120])
        asked = retry_after_seconds(response.headers.get("Retry-After"))
        if asked is None:
            delay, wait = wait, min(wait * 2, 30.0)
        else:
            delay = asked
        sleep(min(max(delay, MIN_WAIT_S), MAX_WAIT_S))


def _check_manifest(manifest: Any) -> None:
    if not isinstance(manifest, dict) or not isinstance(manifest.get("output", []), list):
        raise BulkExportError("Bulk export: the completion manifest has no output list")
    for item in [*manifest.get("output", []), *(manifest.get("error") or [])]:
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            raise BulkExportError("Bulk export: a manifest entry has no url")


# --- download ------------------------------------------------------------------------------------

_SAFE_TYPE = re.compile(r"^[A-Za-z]{1,64}$")


def output_file_name(rtype: str, number: int) -> str:
    return f"{rtype if _SAFE_TYPE.match(rtype or '') else 'Resource'}_{number:04d}.ndjson"


def _download_outputs(client: _Client, manifest: dict, folder: Path, state: _State, progress: Progress) -> None:
    outputs = manifest.get("output") or []
    done: dict[str, str] = state.data.setdefault("downloaded", {})
    needs_token = bool(manifest.get("requiresAccessToken"))
    phase = progress.phase(f"downloading {len(outputs)} export files", unit="bytes")
    for number, item in enumerate(outputs, start=1):
        name = output_file_name(str(item.get("type", "")), number)
        if done.get(item["url"]) == name and (folder / name).is_file():
            continue
        _stream_to(client, item["url"], folder / name, needs_token, phase.advance)
        done[item["url"]] = name
        state.save()
    phase.done()


def _stream_to(client: _Client, url: str, path: Path, needs_token: bool, advance: Callable[[float], None]) -> None:
    part = path.with_name(path.name + ".part")
    response = client.get(url, accept=NDJSON, auth=needs_token, stream=True)
    with response:
        if response.status_code != 200:
            raise _fail("Bulk export file download failed", response)
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with open(fd, "wb") as f:
                for block in response.iter_content(DOWNLOAD_BLOCK):
                    f.write(block)
                    advance(len(block))
        except requests.RequestException as exc:
            raise BulkExportError(f"Bulk export file download from {_where(url)} broke off: "
                                  f"{exc.__class__.__name__}") from None
    os.replace(part, path)


def _raise_for_error_files(client: _Client, manifest: dict, folder: Path) -> None:
    """IG 2.0: ``error`` lists NDJSON files of OperationOutcomes. Any issue in them fails the run."""
    errors = manifest.get("error") or []
    if not errors:
        return
    needs_token = bool(manifest.get("requiresAccessToken"))
    first, count = None, 0
    for number, item in enumerate(errors, start=1):
        # not *.ndjson: the folder is read as the export, and these are the server's messages
        path = folder / "errors" / f"error_{number:04d}.txt"
        path.parent.mkdir(mode=0o700, exist_ok=True)
        _stream_to(client, item["url"], path, needs_token, lambda n: None)
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            count += 1
            if first is None:
                try:
                    outcome = orjson.loads(line)
                    issue = (outcome.get("issue") or [{}])[0]
                    first = str(issue.get("diagnostics") or issue.get("code") or "an OperationOutcome")[:300]
                except (orjson.JSONDecodeError, AttributeError, IndexError, TypeError):
                    first = "an unreadable line"
    if count:
        raise BulkExportError(f"Bulk export: the server reported {count} error(s) in its error files "
                              f"(kept in {folder / 'errors'}); the first: {first}")


def _clear_downloads(folder: Path) -> None:
    """A new export must not be mixed with files of an earlier one."""
    for path in folder.glob("*.ndjson*"):
        path.unlink()
    errors = folder / "errors"
    if errors.is_dir():
        for path in errors.iterdir():
            path.unlink()
    for path in folder.glob("*.part"):
        path.unlink()


# --- resources the export cannot carry, read by reference ----------------------------------------

def _reference_pattern(rtype: str) -> re.Pattern[bytes]:
    # "reference": "Medication/abc", also absolute ("http://…/Medication/abc") and versioned.
    return re.compile(rb'"reference"\s*:\s*"(?:[^"]*/)?' + re.escape(rtype.encode()) + rb'/([A-Za-z0-9\-.]{1,64})(?:/_history/[^"]*)?"')


def referenced_ids(folder: Path, rtype: str) -> list[str]:
    """The ids of ``rtype`` resources that the downloaded files point at, sorted."""
    pattern, marker = _reference_pattern(rtype), f"{rtype}/".encode()
    found: set[str] = set()
    for path in sorted(folder.glob("*.ndjson")):
        with open(path, "rb") as f:
            for line in f:
                if marker in line:  # most lines point at nothing of the kind: skip the regex
                    found.update(m.decode() for m in pattern.findall(line))
    return sorted(found)


def _read_referenced(client: _Client, request: ExportRequest, folder: Path, progress: Progress) -> None:
    for rtype in request.referenced_types:
        ids = referenced_ids(folder, rtype)
        phase = progress.phase(f"reading the {rtype} resources the export points at", total=len(ids),
                               unit="resources")
        path = folder / output_file_name(rtype, 0)
        part = path.with_name(path.name + ".part")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as f:
            for start in range(0, len(ids), IDS_PER_READ):
                batch = ids[start:start + IDS_PER_READ]
                url = f"{request.base_url}/{rtype}?" + urlencode({"_id": ",".join(batch), "_count": IDS_PER_READ})
                for resource in _search_pages(client, url):
                    f.write(orjson.dumps(resource) + b"\n")
                phase.advance(len(batch))
        os.replace(part, path)
        phase.done()


def _search_pages(client: _Client, url: str) -> Iterable[dict]:
    pages = 0
    next_url: str | None = url
    while next_url and pages < 1000:
        response = client.get(next_url, accept="application/fhir+json")
        if response.status_code != 200:
            raise _fail("Reading referenced resources failed", response)
        bundle = response.json()
        for entry in bundle.get("entry") or ():
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and (entry.get("search") or {}).get("mode", "match") == "match":
                yield resource
        next_url = next((link.get("url") for link in bundle.get("link") or ()
                         if isinstance(link, dict) and link.get("relation") == "next"), None)
        pages += 1


# --- clean-up ------------------------------------------------------------------------------------

def _delete_export(client: _Client, status_url: str, progress: Progress) -> None:
    """Tell the server the files are down. Failing to is not fatal: the server expires them anyway."""
    try:
        response = client.delete(status_url)
    except BulkExportError as exc:
        progress.log(f"bulk export: could not delete the export on the server ({exc})")
        return
    if response.status_code >= 300 and response.status_code not in (404, 410):
        progress.log(f"bulk export: the server refused to delete the export (HTTP {response.status_code}: "
                     f"{_server_says(response)})")


# --- state in --out ------------------------------------------------------------------------------

class _State:
    def __init__(self, folder: Path, data: dict[str, Any]) -> None:
        self.folder, self.data = folder, data

    @classmethod
    def load(cls, folder: Path) -> _State:
        try:
            data = orjson.loads((folder / STATE_FILE).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            data = {}
        return cls(folder, data if isinstance(data, dict) else {})

    @classmethod
    def fresh(cls, folder: Path, request: ExportRequest) -> _State:
        return cls(folder, {"request": request.to_json(),
                            "startedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def resumable_for(self, request: ExportRequest) -> bool:
        return (self.data.get("request") == request.to_json() and isinstance(self.data.get("statusUrl"), str)
                and not self.data.get("finished"))

    def save(self) -> None:
        path = self.folder / STATE_FILE
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as f:
            f.write(orjson.dumps(self.data, option=orjson.OPT_INDENT_2))
        os.replace(tmp, path)
