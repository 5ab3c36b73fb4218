"""CDS Hooks 2.0.1 messages as pydantic v2 models: the request, the card, discovery and feedback.

https://cds-hooks.hl7.org/2.0/ — the field names are the spec's. Two rules hold throughout:

* unknown fields are ignored (forward compatibility with the CDS Hooks 3.0 ballot, which adds fields);
* optional fields are omitted from output, never sent as ``null`` or ``""``: every optional string
  is ``min_length=1`` so an empty one cannot be built, and ``to_json`` drops ``None``.

Nothing here knows FHIR beyond "a resource is a JSON object"; prefetch values stay plain JSON.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator, model_validator

Text = Annotated[str, StringConstraints(min_length=1)]
# A FHIR resource id (FHIR R4 "id" datatype). Enforced because the id is rendered into query URLs.
FhirId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/?#]+[^\s]*$")]
SUMMARY_MAX = 139  # the spec: "<140-character summary"


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


# --- data types ----------------------------------------------------------------------------------

class Coding(Message):
    system: Text
    code: Text
    display: Text | None = None


# --- the hook call ---------------------------------------------------------------------------------

class FhirAuthorization(Message):
    # SecretStr: the token never shows up in a repr, a log line or a dumped model.
    access_token: SecretStr
    token_type: Text | None = None
    expires_in: int | None = None
    scope: Text | None = None
    subject: Text | None = None
    patient: Text | None = None

    @field_validator("access_token")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("access_token is empty")
        return value


class HookContext(Message):
    # Hook-specific fields are kept (not validated) so prefetch templates can use any of them.
    model_config = ConfigDict(extra="allow")

    patientId: FhirId
    userId: Text | None = None
    encounterId: Text | None = None


class HookRequest(Message):
    hook: Text
    hookInstance: Text
    fhirServer: Url | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: HookContext
    prefetch: dict[str, Any] | None = None

    @property
    def access_token(self) -> str | None:
        return self.fhirAuthorization.access_token.get_secret_value() if self.fhirAuthorization else None


# --- the response ----------------------------------------------------------------------------------

class Source(Message):
    label: Text
    url: Url | None = None
    icon: Url | None = None
    topic: Coding | None = None


class Action(Message):
    type: Literal["create", "update", "delete"]
    description: Text
    resource: dict[str, Any] | None = None
    resourceId: Text | None = None


class Suggestion(Message):
    label: Text
    uuid: Text | None = None
    isRecommended: bool | None = None
    actions: list[Action] | None = None


class Link(Message):
    label: Text
    url: Url
    type: Literal["absolute", "smart"]
    appContext: Text | None = None


class Card(Message):
    uuid: Text | None = None
    summary: Annotated[str, StringConstraints(min_length=1, max_length=SUMMARY_MAX)]
    detail: Text | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = None
    links: list[Link] | None = None
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _spec_rules(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when suggestions are present")
        if any(reason.display is None for reason in self.overrideReasons or ()):
            raise ValueError("override reasons need a display")
        return self


class CardsResponse(Message):
    cards: list[Card] = Field(default_factory=list)


# --- discovery -------------------------------------------------------------------------------------

class ServiceDescription(Message):
    hook: Text
    title: Text | None = None
    description: Text
    id: Text
    prefetch: dict[str, str] | None = None
    usageRequirements: Text | None = None
    # The CDS Hooks version implemented: RECOMMENDED by the 3.0 ballot's discovery response,
    # absent from 2.0 (whose clients ignore it).
    version: Text | None = None


class DiscoveryResponse(Message):
    services: list[ServiceDescription]


# --- feedback --------------------------------------------------------------------------------------

class AcceptedSuggestion(Message):
    id: Text


class OverrideReason(Message):
    reason: Coding | None = None
    userComment: Text | None = None

    @model_validator(mode="after")
    def _reason_or_comment(self) -> OverrideReason:
        if self.reason is None and self.userComment is None:
            raise ValueError("overrideReason needs a reason, a userComment or both")
        return self


class Feedback(Message):
    card: Text
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: datetime

    @field_validator("outcomeTimestamp")
    @classmethod
    def _as_utc(cls, value: datetime) -> datetime:
        # The spec says UTC; a timestamp without an offset is read as UTC rather than refused.
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

    @model_validator(mode="after")
    def _accepted_names_suggestions(self) -> Feedback:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("an accepted outcome needs acceptedSuggestions")
        return self


class FeedbackRequest(Message):
    feedback: list[Feedback]
