"""The public shapes of a decision: trial definitions in, evaluation objects out.

Plain dataclasses with a small, strict reader for the trial definition (unknown keys and wrong types are
refused when the definition loads, not at a bedside). No pydantic here: ``trialcds evaluate`` imports this
module, and it must start at once. The few pydantic-style methods other modules call
(``model_validate``, ``model_validate_json``, ``model_dump``, ``model_dump_json``) are kept, with the
same meaning.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import date, datetime
from typing import Any, Literal

Status = Literal["pass", "fail", "unknown"]
Verdict = Literal["likely-eligible", "needs-review", "not-eligible"]
CRITERION_TYPES = ("inclusion", "exclusion")


class DefinitionError(ValueError):
    """A trial definition that does not have the declared shape."""


def _check(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise DefinitionError(f"{where}: expected {getattr(kind, '__name__', kind)}, got a boolean")
    if not isinstance(value, kind):
        names = "/".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise DefinitionError(f"{where}: expected {names}, got {type(value).__name__}")
    return value


def _fields_of(data: Any, cls: type, where: str, required: tuple[str, ...]) -> dict[str, Any]:
    """The object's keys, refusing unknown ones and missing required ones."""
    _check(data, dict, where)
    known = {f.name for f in fields(cls)}
    extra = sorted(set(data) - known)
    if extra:
        raise DefinitionError(f"{where}: unknown field(s) {', '.join(extra)}")
    missing = [name for name in required if name not in data]
    if missing:
        raise DefinitionError(f"{where}: missing field(s) {', '.join(missing)}")
    return data


_JSON_SCALARS = (str, int, float, type(None))


def _json_ready(value: Any) -> Any:
    """Dates as ISO text and tuples as lists, as pydantic's ``mode="json"`` gives them."""
    if isinstance(value, _JSON_SCALARS):  # most values: first, and unchanged
        return value
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):  # as asdict would give it
        return _json_ready(asdict(value))
    return value


class _Dumpable:
    """``model_dump`` / ``model_dump_json`` as pydantic spells them (JSON-ready dicts, field order kept)."""

    def model_dump(self, mode: str = "python", **_: Any) -> dict[str, Any]:
        data = asdict(self)  # type: ignore[call-overload]
        return _json_ready(data) if mode == "json" else data

    def model_dump_json(self, **_: Any) -> str:
        return json.dumps(self.model_dump(mode="json"), ensure_ascii=False)


@dataclass(frozen=True)
class CriterionDefinition(_Dumpable):
    id: str
    type: Literal["inclusion", "exclusion"]
    automated: bool
    rule: str
    label: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def model_validate(cls, data: Any, where: str = "criterion") -> CriterionDefinition:
        data = _fields_of(data, cls, where, ("id", "type", "automated", "rule", "label"))
        where = f"criterion {data.get('id', '?')}"
        for name in ("id", "rule", "label"):
            _check(data[name], str, f"{where}.{name}")
        if data["type"] not in CRITERION_TYPES:
            raise DefinitionError(f"{where}.type: inclusion or exclusion, not {data['type']!r}")
        _check(data["automated"], bool, f"{where}.automated")
        params = _check(data.get("params", {}), dict, f"{where}.params")
        return cls(id=data["id"], type=data["type"], automated=data["automated"], rule=data["rule"],
                   label=data["label"], params=dict(params))


@dataclass(frozen=True)
class ServiceDefinition(_Dumpable):
    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str]
    usageRequirements: str | None = None

    @classmethod
    def model_validate(cls, data: Any, where: str = "service") -> ServiceDefinition:
        data = _fields_of(data, cls, where, ("id", "hook", "title", "description", "prefetch"))
        for name in ("id", "hook", "title", "description"):
            _check(data[name], str, f"{where}.{name}")
        if data.get("usageRequirements") is not None:
            _check(data["usageRequirements"], str, f"{where}.usageRequirements")
        prefetch = _check(data["prefetch"], dict, f"{where}.prefetch")
        for key, template in prefetch.items():
            _check(template, str, f"{where}.prefetch.{key}")
        return cls(id=data["id"], hook=data["hook"], title=data["title"], description=data["description"],
                   prefetch=dict(prefetch), usageRequirements=data.get("usageRequirements"))


@dataclass(frozen=True)
class Identifier(_Dumpable):
    system: str
    value: str

    @classmethod
    def model_validate(cls, data: Any, where: str = "studyIdentifier") -> Identifier:
        data = _fields_of(data, cls, where, ("system", "value"))
        return cls(system=_check(data["system"], str, f"{where}.system"), value=_check(data["value"], str, f"{where}.value"))


@dataclass(frozen=True)
class OverrideReason(_Dumpable):
    code: str
    display: str

    @classmethod
    def model_validate(cls, data: Any, where: str = "overrideReasons") -> OverrideReason:
        data = _fields_of(data, cls, where, ("code", "display"))
        return cls(code=_check(data["code"], str, f"{where}.code"), display=_check(data["display"], str, f"{where}.display"))


@dataclass(frozen=True)
class TrialDefinition(_Dumpable):
    """One trial, declared in one file under ``seeds/trials/``."""

    id: str
    title: str
    sponsor: str
    site: str
    status: str
    url: str
    studyIdentifier: Identifier
    service: ServiceDefinition
    criteria: list[CriterionDefinition]
    acronym: str | None = None
    protocol: str | None = None
    facts: list[str] = field(default_factory=list)
    overrideReasons: list[OverrideReason] = field(default_factory=list)

    @classmethod
    def model_validate(cls, data: Any) -> TrialDefinition:
        data = _fields_of(data, cls, "trial", ("id", "title", "sponsor", "site", "status", "url",
                                                "studyIdentifier", "service", "criteria"))
        for name in ("id", "title", "sponsor", "site", "status", "url"):
            _check(data[name], str, f"trial.{name}")
        for name in ("acronym", "protocol"):
            if data.get(name) is not None:
                _check(data[name], str, f"trial.{name}")
        criteria = _check(data["criteria"], list, "trial.criteria")
        facts = _check(data.get("facts", []), list, "trial.facts")
        for name in facts:
            _check(name, str, "trial.facts[]")
        reasons = _check(data.get("overrideReasons", []), list, "trial.overrideReasons")
        return cls(
            id=data["id"], title=data["title"], sponsor=data["sponsor"], site=data["site"], status=data["status"],
            url=data["url"], acronym=data.get("acronym"), protocol=data.get("protocol"),
            studyIdentifier=Identifier.model_validate(data["studyIdentifier"]),
            service=ServiceDefinition.model_validate(data["service"]),
            criteria=[CriterionDefinition.model_validate(c) for c in criteria],
            facts=list(facts), overrideReasons=[OverrideReason.model_validate(r) for r in reasons])

    @classmethod
    def model_validate_json(cls, text: str | bytes) -> TrialDefinition:
        return cls.model_validate(json.loads(text))


@dataclass
class CriterionResult(_Dumpable):
    id: str
    type: Literal["inclusion", "exclusion"]
    automated: bool
    label: str
    status: Status
    reason: str
    evidence: list[str]


@dataclass
class Evaluation(_Dumpable):
    """The evaluation object of the contract: cards, ``trialcds evaluate`` and batch output share it."""

    trial: str
    patient: str | None
    asOf: str
    verdict: Verdict
    criteria: list[CriterionResult]
    facts: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``model_dump(mode="json")`` without an empty ``notes``, built field by field: every card
        carries this (~10 KB), and ``asdict``'s deep copy of it cost more than building the card."""
        data: dict[str, Any] = {
            "trial": self.trial, "patient": self.patient, "asOf": self.asOf, "verdict": self.verdict,
            "criteria": [{"id": c.id, "type": c.type, "automated": c.automated, "label": c.label,
                          "status": c.status, "reason": c.reason, "evidence": _json_ready(c.evidence)}
                         for c in self.criteria],
            "facts": _json_ready(self.facts),
        }
        if self.notes:
            data["notes"] = _json_ready(self.notes)
        return data
