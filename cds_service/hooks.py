"""HTTP: the CDS Hooks endpoints (discovery, hook call, feedback), health, errors and CORS.

One hook call, top to bottom (``hook_call``)::

    authenticate → find the service → validate the request (protocol) → FHIR-server policy
    → suppressed by feedback? (store) → gather the record (record) → already in the study's
    pipeline? (mappings) → evaluate (criteria, via mappings)
    → the card (cards) → remember it was issued (store) → {"cards": [...]}

This layer moves JSON and status codes; it never reads FHIR codes. Every error leaves as an
OperationOutcome (a bare 401 for authentication), never as a stack trace.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, TypeVar

import orjson
from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from cds_service.seams import AUTHENTICATE, FHIR_POLICY
from cds_service.asof import site_today
from cds_service.cards import StudyTeam, card_for
from cds_service.criteria import TrialDefinition, evaluate_resources
from cds_service.errors import AuthenticationFailed, InvalidRequest, ServiceError, UnknownService, operation_outcome
from cds_service.protocol import (CardsResponse, DiscoveryResponse, FeedbackRequest, HookRequest, Message,
                                  ServiceDescription)
from cds_service.record import gather_record
from cds_service.security import request_log
from cds_service.security.install import fetch_limits
from cds_service.store import feedback_log, get_engine, get_settings, get_store
from cds_service.trials import all_trials
from fhir_mappings.pipeline import pipeline_reason

log = logging.getLogger(__name__)
bp = Blueprint("hooks", __name__)

CDS_HOOKS_VERSION = "2.0.1"
RETRY_AFTER_S = 5  # a database outage: when a client may try again
M = TypeVar("M", bound=Message)


# --- endpoints ------------------------------------------------------------------------------------------

@bp.get("/cds-services")
def discovery() -> Response:
    services = [describe(trial) for trial in all_trials().values()]
    return jsonify(DiscoveryResponse(services=services).to_json())


def describe(trial: TrialDefinition) -> ServiceDescription:
    service = trial.service
    return ServiceDescription(hook=service.hook, title=service.title, description=service.description,
                              id=service.id, prefetch=dict(service.prefetch) or None,
                              usageRequirements=service.usageRequirements or None, version=CDS_HOOKS_VERSION)


@bp.post("/cds-services/<service_id>")
def hook_call(service_id: str) -> Response:
    authenticate(service_id)
    trial = find_trial(service_id)
    call = parse(HookRequest)
    hook_log = request_log.current()  # the call's JSON log line (security/request_log.py)
    hook_log.hook_instance = call.hookInstance
    if call.hook != trial.service.hook:
        raise InvalidRequest(f"service {trial.service.id} answers the {trial.service.hook} hook only")
    if call.fhirServer:
        current_app.extensions[FHIR_POLICY](call.fhirServer)
    store, now, patient_id = get_store(current_app), datetime.now(timezone.utc), call.context.patientId
    user_id = call.context.userId  # a plain dismiss hides the card from this user only (hashed in the store)
    # What clinicians said about earlier cards (accepted, overridden with a reason, dismissed by this
    # user): checked first, so a silenced card costs no FHIR fetch. The reason goes to the log line.
    hook_log.suppressed = store.suppression(trial.service.id, patient_id, user_id, now)
    if hook_log.suppressed:
        return json_response(CardsResponse(cards=[]).to_json())
    with hook_log.timed("fetch"):
        record = gather_record(trial.service.prefetch, call.context.model_dump(), call.prefetch, call.fhirServer,
                               call.access_token, float(current_app.config["TRIALCDS_FETCH_DEADLINE"]),
                               **fetch_limits(current_app))
    study_team = StudyTeam.from_config(current_app.config)
    # Already in the study's pipeline (a ResearchSubject for the study, an active referral to the
    # study team): the mappings read the record, this layer only hears the reason.
    hook_log.suppressed = pipeline_reason(record.resources, trial.studyIdentifier.system,
                                          trial.studyIdentifier.value, study_team.reference)
    if hook_log.suppressed:
        return json_response(CardsResponse(cards=[]).to_json())
    with hook_log.timed("evaluate"):
        as_of = site_today(current_app.config.get("TRIALCDS_TIMEZONE"), now)  # today where the site is
        evaluation = evaluate_resources(trial, record.resources, as_of, patient_id=patient_id,
                                        notes=record.notes)
        card = card_for(evaluation, trial, patient_id, now, study_team=study_team)
    hook_log.verdict, hook_log.cards = evaluation.verdict, int(card is not None)
    if card is not None:
        store.record_card(card.uuid or "", trial.service.id, patient_id, now, user_id=user_id)
    log.info("hook %s: %s", trial.service.id, evaluation.verdict)
    return json_response(CardsResponse(cards=[card] if card else []).to_json())


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    authenticate(service_id)
    trial = find_trial(service_id)
    items = parse(FeedbackRequest).feedback
    cap = get_settings(current_app).feedback_max_entries
    if len(items) > cap:
        # Refused, not truncated: a 200 for a cut list would tell the EHR that feedback was kept
        # when it was dropped. The client splits its list and retries.
        g.trialcds_feedback_log = feedback_log.FeedbackCallLog(entries=len(items), reason="too-many-entries")
        raise InvalidRequest(f"at most {cap} feedback entries per request")
    store, now = get_store(current_app), datetime.now(timezone.utc)
    entry = g.trialcds_feedback_log = feedback_log.FeedbackCallLog(entries=len(items))
    for item in items:
        entry.count(item, store.record_feedback(trial.service.id, item, now))
    return jsonify({})


@bp.after_app_request
def emit_feedback_log(response: Response) -> Response:
    if request.endpoint == "hooks.feedback" and request.method == "POST":
        feedback_log.emit(g.pop("trialcds_feedback_log", None), request.view_args or {}, response.status_code)
    return response


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 only when the database can be read AND written now (within the store's time limits)."""
    state = get_store(current_app).health(datetime.now(timezone.utc))
    if state == "ok":
        return jsonify({"status": "ok", "database": "ok"}), 200
    response = jsonify({"status": "unavailable", "database": state})
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response, 503


# --- request helpers -------------------------------------------------------------------------------------

def authenticate(service_id: str) -> None:
    base = current_app.config.get("TRIALCDS_PUBLIC_URL") or request.url_root
    current_app.extensions[AUTHENTICATE](request, f"{base.rstrip('/')}/cds-services/{service_id}")


def find_trial(service_id: str) -> TrialDefinition:
    trial = all_trials().get(service_id)
    if trial is None:
        raise UnknownService("no such CDS service")  # the id is not echoed: it is the caller's text
    return trial


def parse(model: type[M]) -> M:
    try:
        data = orjson.loads(request.get_data())
    except orjson.JSONDecodeError:
        raise InvalidRequest("the request body is not valid JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(describe_errors(exc)) from None


def json_response(data: Any) -> Response:
    """``jsonify(data)``, encoded by orjson: a card carries the whole evaluation (~10 KB of JSON)."""
    try:
        body = orjson.dumps(data)
    except TypeError:  # what orjson cannot encode (an integer beyond 64 bits): Flask's own encoder
        return jsonify(data)
    return current_app.response_class(body, mimetype=current_app.json.mimetype)


def describe_errors(exc: ValidationError, limit: int = 5) -> str:
    """Where and what, never the offending value (it could be a token or patient data)."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False)[:limit]:
        where = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append(f"{where}: {'missing' if error['type'] == 'missing' else error['msg']}")
    return "invalid request — " + "; ".join(problems)


# --- errors ----------------------------------------------------------------------------------------------

def outcome_response(status: int, diagnostics: str, code: str) -> tuple[Response, int]:
    return jsonify(operation_outcome(diagnostics, code)), status


@bp.app_errorhandler(ServiceError)
def on_service_error(exc: ServiceError) -> tuple[Response, int]:
    log.info("%s: %s", exc.status, exc.diagnostics)
    return outcome_response(exc.status, exc.diagnostics, exc.issue_code)


@bp.app_errorhandler(SQLAlchemyError)
def on_database_error(exc: SQLAlchemyError) -> tuple[Response, int]:
    """The service's own database failed or did not answer in time: 503, try again shortly. The pool
    is emptied so the next call connects afresh — a worker recovers when the database does."""
    log.warning("503: database unavailable (%s)", type(exc).__name__)
    get_engine(current_app).dispose()
    response, status = outcome_response(503, "the service's database is unavailable; retry later", "transient")
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response, status


@bp.app_errorhandler(AuthenticationFailed)
def on_authentication_failed(exc: AuthenticationFailed) -> Response:
    log.warning("401: %s", exc)
    return Response(status=401, headers={"WWW-Authenticate": "Bearer"})


@bp.app_errorhandler(HTTPException)
def on_http_exception(exc: HTTPException) -> Any:
    if exc.code is None or exc.code < 400:
        return exc  # redirects and the like pass through
    response, status = outcome_response(exc.code, exc.name, "not-found" if exc.code == 404 else "invalid")
    # Werkzeug's own headers that the status needs (Allow on a 405, Retry-After), not its HTML type.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response, status


@bp.app_errorhandler(Exception)
def on_unexpected(exc: Exception) -> tuple[Response, int]:
    log.exception("unexpected error")  # the trace goes to the log, never to the client
    return outcome_response(500, "internal error", "exception")


# --- CORS (browser CDS clients such as the CDS Hooks sandbox) -------------------------------------

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Max-Age": "600",
}


@bp.after_app_request
def add_cors_headers(response: Response) -> Response:
    # Any origin is safe here: callers authenticate with a bearer JWT, never with cookies.
    response.headers.update(CORS_HEADERS)
    return response
