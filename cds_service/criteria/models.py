"""The public shapes of a decision: trial definitions in, evaluation objects out (pydantic)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["pass", "fail", "unknown"]
Verdict = Literal["likely-eligible", "needs-review", "not-eligible"]


class CriterionDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    type: Literal["inclusion", "exclusion"]
    automated: bool
    rule: str
    label: str
    params: dict[str, Any] = Field(default_factory=dict)


class ServiceDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    hook: str
    title: str
    description: str
    usageRequirements: str | None = None
    prefetch: dict[str, str]


class Identifier(BaseModel):
    system: str
    value: str


class OverrideReason(BaseModel):
    code: str
    display: str


class TrialDefinition(BaseModel):
    """One trial, declared in one file under ``seeds/trials/``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str
    acronym: str | None = None
    sponsor: str
    site: str
    status: str
    url: str
    protocol: str | None = None
    studyIdentifier: Identifier
    service: ServiceDefinition
    criteria: list[CriterionDefinition]
    facts: list[str] = Field(default_factory=list)
    overrideReasons: list[OverrideReason] = Field(default_factory=list)


class CriterionResult(BaseModel):
    id: str
    type: Literal["inclusion", "exclusion"]
    automated: bool
    label: str
    status: Status
    reason: str
    evidence: list[str]


class Evaluation(BaseModel):
    """The evaluation object of the contract: cards, ``trialcds evaluate`` and batch output share it."""

    trial: str
    patient: str | None
    asOf: str
    verdict: Verdict
    criteria: list[CriterionResult]
    facts: dict[str, Any]
    notes: list[str] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        if not data["notes"]:
            del data["notes"]
        return data
