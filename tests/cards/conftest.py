"""Fixtures of the card tests: seed patients evaluated at their anchor date, cards, and a permissive
markdown renderer (CommonMark + GFM tables, raw HTML allowed — the way some EHRs render ``detail``)."""

from __future__ import annotations

import copy
from datetime import datetime, time, timezone
from html.parser import HTMLParser
from typing import Any

import cmarkgfm
import pytest
from markdown_it import MarkdownIt

from cds_service.cards import StudyTeam, card_for
from cds_service.criteria import Evaluation, evaluate_resources
from cds_service.protocol import Card
from cds_service.seeding import anchor_date, load_expected, patient_id, seed_bundles
from cds_service.trials import get_trial
from fhir_mappings import resources_of_bundle

CARD_VERDICTS = ("likely-eligible", "needs-review")
STUDY_TEAM = StudyTeam(reference="HealthcareService/scanpan-study-team", display="ScanPan study team, Linköping")


def permissive_renderer() -> MarkdownIt:
    """CommonMark with raw HTML passed through, plus GFM tables, strikethrough and autolinks."""
    return MarkdownIt("commonmark", {"html": True, "linkify": True}).enable(["table", "strikethrough", "linkify"])


def render(markdown: str) -> str:
    """markdown-it-py, permissive: what the layout test shows in Chromium."""
    return permissive_renderer().render(markdown)


def render_github(markdown: str) -> str:
    """GitHub's cmark-gfm with raw HTML allowed (``UNSAFE``) and without its tag filter."""
    return cmarkgfm.markdown_to_html_with_extensions(
        markdown, options=cmarkgfm.Options.CMARK_OPT_UNSAFE, extensions=["table", "autolink", "strikethrough"])


RENDERERS = {"markdown-it": render, "cmark-gfm": render_github}


def now() -> datetime:
    return datetime.combine(anchor_date(), time(9, 30), tzinfo=timezone.utc)


def evaluate(bundle: dict, notes: tuple[str, ...] = ()) -> Evaluation:
    return evaluate_resources(get_trial(), list(resources_of_bundle(bundle)), anchor_date(),
                              patient_id=patient_id(bundle), notes=notes)


def card_of(bundle: dict, notes: tuple[str, ...] = ()) -> Card | None:
    return card_for(evaluate(bundle, notes), get_trial(), patient_id(bundle), now(), study_team=STUDY_TEAM)


@pytest.fixture(scope="session")
def trial():
    return get_trial()


@pytest.fixture(scope="session")
def seeds() -> dict[str, dict]:
    return seed_bundles()


@pytest.fixture(scope="session")
def candidate_slugs() -> list[str]:
    """Every seed patient the trial's expectations call likely-eligible or needs-review."""
    return [slug for slug, p in load_expected()["patients"].items() if p["verdict"] in CARD_VERDICTS]


def first_with_verdict(verdict: str) -> str:
    return next(slug for slug, p in load_expected()["patients"].items() if p["verdict"] == verdict)


# --- hostile records -------------------------------------------------------------------------------------

# Record-text fields that can reach a card: code/medication displays and texts, units, string values.
HOSTILE_FIELDS = frozenset({"display", "text", "unit", "valueString", "comment"})


def poisoned(bundle: dict, payload: str) -> dict:
    """A copy of the bundle with ``payload`` appended to every free-text field the mappings may read."""
    def visit(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (v + payload if k in HOSTILE_FIELDS and isinstance(v, str) else visit(v))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [visit(v) for v in node]
        return node
    return visit(copy.deepcopy(bundle))


class TagCollector(HTMLParser):
    """The element structure of rendered HTML, with attributes (a link's href, an image's src)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple[tuple[str, str | None], ...]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, tuple(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, tuple(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def structure(html: str) -> TagCollector:
    parser = TagCollector()
    parser.feed(html)
    parser.close()
    return parser
