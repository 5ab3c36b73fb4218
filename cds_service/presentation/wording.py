"""Clinical wording for cards: display texts as a clinician writes them. Pure string functions."""

from __future__ import annotations

import re

# SNOMED CT fully specified names end in a semantic tag — "Pancreatic ductal adenocarcinoma
# (disorder)" — that is terminology bookkeeping, not clinical language. EHRs copy FSNs into
# Coding.display, so the tags reach the reasons the criteria write. The list is SNOMED CT's
# hierarchy tags (SNOMED CT Editorial Guide, "Semantic Tags"); a parenthesised text that is not one
# of them ("(since 2026-05-03)", "(left lobe)") is kept.
SEMANTIC_TAGS = (
    "administration method", "assessment scale", "attribute", "basic dose form", "body structure", "cell",
    "cell structure", "clinical drug", "core metadata concept", "disorder", "disposition", "dose form",
    "environment", "environment / location", "ethnic group", "event", "finding", "foundation metadata concept",
    "geographic location", "inactive concept", "intended site", "life style", "link assertion",
    "linkage concept", "medicinal product", "medicinal product form", "metadata", "morphologic abnormality",
    "namespace concept", "navigational concept", "observable entity", "occupation", "organism", "person",
    "physical force", "physical object", "procedure", "product", "product name", "qualifier value",
    "racial group", "record artifact", "regime/therapy", "release characteristic", "religion/philosophy",
    "role", "situation", "social concept", "special concept", "specimen", "staging scale", "state of matter",
    "substance", "supplier", "tumor staging", "transformation", "unit of presentation",
)
_TAG = re.compile(r"\s*\((?:%s)\)(?=$|[\s;,.:)])" % "|".join(re.escape(t) for t in SEMANTIC_TAGS), re.IGNORECASE)


def without_semantic_tags(text: str) -> str:
    """``"Secondary malignant neoplasm of liver (disorder) (since 2026-05-03)"`` →
    ``"Secondary malignant neoplasm of liver (since 2026-05-03)"``."""
    return _TAG.sub("", text)


# Criterion ids are kebab-case words; a few are abbreviations a clinician writes in capitals.
_ABBREVIATIONS = {"pdac": "PDAC", "ecog": "ECOG", "ca": "CA", "ct": "CT", "mri": "MRI", "recist": "RECIST"}


def criterion_short_name(criterion_id: str) -> str:
    """``"pdac-diagnosis"`` → ``"PDAC diagnosis"``: the name in the card's one-line list of criteria met."""
    return " ".join(_ABBREVIATIONS.get(word, word) for word in criterion_id.split("-"))


def count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"
