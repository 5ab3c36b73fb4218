"""The card a clinician sees fits the EHR: every candidate seed patient's card detail, rendered to HTML and
loaded in headless Chromium at 1,024 px wide, has nothing cut off sideways and is at most 600 px tall."""

from __future__ import annotations

import html as html_lib
from pathlib import Path

import pytest

from tests.cards.conftest import card_of, render

WIDTH = 1024
MAX_DETAIL_HEIGHT = 600
# A plain EHR card: the sans-serif text most EHR sidebars use, a border and some padding. No rule
# here hides overflow or wraps long words, so what would spill sideways in an EHR spills here too.
CARD_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><style>
  body {{ margin: 0; font: 14px/1.45 "DejaVu Sans", Arial, sans-serif; color: #1b1b1b; }}
  .card {{ margin: 8px; border: 1px solid #b8c4d0; border-left: 4px solid #2f6fb0; border-radius: 4px; padding: 8px 12px; }}
  .summary {{ font-weight: 600; font-size: 15px; margin: 0 0 6px; }}
</style></head><body>
  <div class="card"><p class="summary">{summary}</p><div id="detail">{detail}</div></div>
</body></html>"""

OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('#detail *')].filter(e => e.getBoundingClientRect().right > width + 0.5);
  return {scrollWidth: document.documentElement.scrollWidth, width, wide: wide.map(e => e.tagName)};
}"""


def card_page(summary: str, detail_markdown: str) -> str:
    return CARD_PAGE.format(summary=html_lib.escape(summary), detail=render(detail_markdown))


@pytest.mark.slow
def test_every_candidate_card_fits_1024_px_without_overflow(seeds, candidate_slugs, tmp_path: Path):
    from tests.browser import chromium_page

    heights: dict[str, float] = {}
    with chromium_page(width=WIDTH, height=800) as page:
        for slug in candidate_slugs:
            card = card_of(seeds[slug])
            assert card is not None and card.detail, slug
            page.set_content(card_page(card.summary, card.detail))
            overflow = page.evaluate(OVERFLOW_JS)
            assert overflow["scrollWidth"] <= WIDTH and not overflow["wide"], (slug, overflow)
            heights[slug] = page.evaluate("document.getElementById('detail').getBoundingClientRect().height")
            page.screenshot(path=str(tmp_path / f"{slug}.png"), full_page=True)
    print("card detail heights (px):", {slug: round(h) for slug, h in heights.items()})
    too_tall = {slug: round(h) for slug, h in heights.items() if h > MAX_DETAIL_HEIGHT}
    assert not too_tall, too_tall
    assert len(list(tmp_path.glob("*.png"))) == len(candidate_slugs)


@pytest.mark.slow
def test_the_layout_check_catches_a_card_that_is_too_tall_or_too_wide(tmp_path: Path):
    """The measurement itself can fail: the old 18-row criterion table shape is caught on both counts."""
    from tests.browser import chromium_page

    table = "| Status | Criterion | Reason | Evidence |\n|---|---|---|---|\n" + "\n".join(
        f"| unknown | criterion {i} | a reason | `Observation/{'x' * 120}-{i}` |" for i in range(18))
    with chromium_page(width=WIDTH) as page:
        page.set_content(card_page("old card", table))
        overflow = page.evaluate(OVERFLOW_JS)
        height = page.evaluate("document.getElementById('detail').getBoundingClientRect().height")
    assert overflow["scrollWidth"] > WIDTH or overflow["wide"]
    assert height > MAX_DETAIL_HEIGHT
