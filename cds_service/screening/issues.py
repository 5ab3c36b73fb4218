"""What could not be used of the input: counted by kind, the first ones listed (summary.json).

Workers each keep their own ``InputIssues`` and the engine merges them; the listing is sorted so a
re-run gives the same summary whichever worker met which problem first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

LISTED_PER_KIND = 200  # enough to find the problem; the counts stay exact

# kind → what it means, for summary.json and the report. Only these make the run "not read whole".
LOSSES = {
    "malformed-line": "a line that is not a JSON object with a resourceType (skipped)",
    "unreadable-file": "a file that could not be read or decompressed to its end",
    "resource-without-patient": "a resource that names no patient (skipped)",
    "patient-without-patient-resource": "resources of a patient id with no Patient resource (skipped)",
    "malformed-bundle": "a Bundles-folder file that is not a FHIR Bundle with exactly one Patient (skipped)",
}
# Expected and harmless: types or codes the trial does not read, a Medication nobody points at.
INFO = {
    "not-read-by-trial": "resources of a type or code the trial does not read",
    "unreferenced-medication": "a Medication or ResearchStudy no read resource points at",
    "duplicate-resource": "the same resource twice for one patient (the first kept)",
    "bundle-without-patient": "a Bundle with no Patient, such as Synthea's hospital and practitioner files",
}


@dataclass
class InputIssues:
    counts: Counter = field(default_factory=Counter)
    listed: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, where: str = "", n: int = 1) -> None:
        if n <= 0:
            return
        self.counts[kind] += n
        if where and kind in LOSSES:
            items = self.listed.setdefault(kind, [])
            if len(items) < LISTED_PER_KIND:
                items.append(where)

    def merge(self, other: InputIssues) -> None:
        self.counts.update(other.counts)
        for kind, items in other.listed.items():
            self.listed[kind] = sorted(self.listed.get(kind, []) + items)[:LISTED_PER_KIND]

    @property
    def read_whole(self) -> bool:
        return not any(self.counts.get(kind) for kind in LOSSES)

    def to_json(self) -> dict[str, Any]:
        return {
            "readWhole": self.read_whole,
            "skipped": {kind: {"count": self.counts[kind], "meaning": LOSSES[kind],
                               "first": sorted(self.listed.get(kind, []))}
                        for kind in LOSSES if self.counts.get(kind)},
            "ignored": {kind: {"count": self.counts[kind], "meaning": INFO[kind]}
                        for kind in INFO if self.counts.get(kind)},
        }

    # Plain tuples/dicts travel between processes cheaply and predictably.
    def to_state(self) -> tuple[dict, dict]:
        return dict(self.counts), self.listed

    @classmethod
    def from_state(cls, state: tuple[dict, dict]) -> InputIssues:
        return cls(Counter(state[0]), {k: list(v) for k, v in state[1].items()})
