"""The speed changes of issue 13 keep every result: the faster code against a plain reference.

- ``escape()`` (one ``str.translate`` pass, regexes only where they can match) against the
  character-by-character definition, on fuzzed text full of the characters it must neutralise;
- ``Evaluation.to_json`` (built field by field) against ``asdict`` + JSON-ready conversion;
- the rules' record-wide derivations are worked out once per evaluation, not once per medication;
- a large record is evaluated with the cyclic GC paused, gives the same evaluation as without the
  pause, and leaves the collector as it found it (also when nested, and when it was off).
"""

from __future__ import annotations

import functools
import gc
import random
import re
import unicodedata
from dataclasses import asdict
from datetime import date, datetime

import pytest

from cds_service.criteria import engine, rules
from cds_service.criteria.models import Evaluation
from cds_service.presentation import escape as esc
from tests.core.builders import GEMCITABINE, eligible, evaluate, med_statement

# --- escape ----------------------------------------------------------------------------------------

_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")


def reference_plain(text: object, max_length: int = esc.MAX_LENGTH) -> str:
    value = re.sub(r"\s+", " ", _LINE_BREAKS.sub(" ", str(text)))
    value = "".join(ch for ch in value if not unicodedata.category(ch).startswith("C"))
    value = re.sub(r"\s+", " ", value).strip()
    return value if len(value) <= max_length else value[: max_length - 1].rstrip() + "…"


def reference_escape(text: object) -> str:
    value = esc._LONG_RUN.sub(lambda m: m.group(0) + esc.ZERO_WIDTH_SPACE, reference_plain(text))
    value = esc._AUTOLINK_TRIGGERS.sub(esc.ZERO_WIDTH_SPACE, value)
    out = []
    for ch in value:
        if ch in esc._HTML:
            out.append(esc._HTML[ch])
        elif ch in esc._MARKDOWN_PUNCTUATION:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


PIECES = (list("abc XYZ09.:/@w_-*<>&'\"|#!()[]{}~`\\+=$^%;,?") + ["www.", "http://", "https://x.y/z", "a@b.c"]
          + [chr(i) for i in range(0x20)] + list("\x7f\x85\xa0\u200b\u200d\u202e\u2028\u2029\u3000\ufeffé\U0001F600"))


def test_escape_equals_the_character_by_character_definition() -> None:
    rng = random.Random(13)
    for _ in range(20_000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 70)))
        if rng.random() < 0.1:
            text *= rng.randint(2, 8)  # long texts: the cut at MAX_LENGTH and runs over 40 characters
        assert esc.escape(text) == reference_escape(text), repr(text)
        assert esc.plain(text, 25) == reference_plain(text, 25), repr(text)


# --- Evaluation.to_json ------------------------------------------------------------------------------

def reference_json_ready(value: object) -> object:
    if isinstance(value, dict):
        return {k: reference_json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [reference_json_ready(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def reference_to_json(evaluation: Evaluation) -> dict:
    data = reference_json_ready(asdict(evaluation))
    assert isinstance(data, dict)
    if not data["notes"]:
        del data["notes"]
    return data


@pytest.mark.parametrize("resources", [
    eligible(),
    eligible(ecog=None, imaging=None),  # unknowns and their notes
    eligible(chemo=[med_statement(GEMCITABINE, 200, id="c1"), med_statement(GEMCITABINE, 100, id="c2")]),
    [],
])
def test_to_json_equals_asdict(resources: list[dict]) -> None:
    evaluation = evaluate(resources)
    assert evaluation.to_json() == reference_to_json(evaluation)
    # Tuples become lists and dates ISO text, in facts too (as pydantic's mode="json" gave them).
    evaluation.facts["extra"] = {"when": date(2024, 1, 2), "pair": (1, "x")}
    assert evaluation.to_json()["facts"]["extra"] == {"when": "2024-01-02", "pair": [1, "x"]}


# --- the rules' derivations, once per evaluation -------------------------------------------------------

def test_record_wide_derivations_once_per_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"this_cancer_refs": 0, "pdac_diagnosis_date": 0}

    def counted(name: str):
        original = getattr(rules, name)

        @functools.wraps(original)
        def wrapper(facts):
            calls[name] += 1
            return original(facts)
        return wrapper

    for name in calls:
        monkeypatch.setattr(rules, name, counted(name))
    chemo = [med_statement(GEMCITABINE, 200 - i, id=f"chemo-{i}", reasonReference=[{"reference": "Condition/x"}])
             for i in range(60)]
    evaluation = evaluate(eligible(chemo=chemo))
    assert evaluation.verdict  # evaluated
    # Once per evaluation (each rule and summary shares it), however many medications: was once per drug.
    assert calls["this_cancer_refs"] == 1
    assert calls["pdac_diagnosis_date"] == 1


# --- the cyclic GC pause for large records ---------------------------------------------------------------

def test_gc_pause_restores_the_collector() -> None:
    assert gc.isenabled()
    with engine.cyclic_gc_paused():
        assert not gc.isenabled()
        with engine.cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()
    gc.disable()
    try:
        with engine.cyclic_gc_paused():
            pass
        assert not gc.isenabled()  # it was off: it stays off
    finally:
        gc.enable()


def test_gc_pause_ends_on_error() -> None:
    with pytest.raises(RuntimeError):
        with engine.cyclic_gc_paused():
            raise RuntimeError("boom")
    assert gc.isenabled()


def test_large_record_same_evaluation_with_and_without_the_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    lesions = [r for r in eligible() if r["resourceType"] == "Observation"]
    resources = eligible() + [{**r, "id": f"{r.get('id', 'obs')}-{i}"} for i in range(engine.LARGE_RECORD // 2)
                              for r in lesions]
    assert len(resources) >= engine.LARGE_RECORD
    seen = []
    original = engine.extract_facts

    def spy(record, as_of):
        seen.append(gc.isenabled())
        return original(record, as_of)

    monkeypatch.setattr(engine, "extract_facts", spy)
    paused = evaluate(resources)
    monkeypatch.setattr(engine, "LARGE_RECORD", 10 ** 9)
    unpaused = evaluate(resources)
    assert seen == [False, True]  # the large record was read with the collector off, then not
    assert gc.isenabled()
    assert paused.to_json() == unpaused.to_json()
