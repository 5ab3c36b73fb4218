"""report.html rendering (the browser test looks at it in Chromium): the zoomed funnel."""

from __future__ import annotations

from cds_service.screening.report import render_report


def summary_with(funnel_counts: list[int]) -> dict:
    funnel = [{"step": f"s{i}", "label": f"Step {i}", "patients": n} for i, n in enumerate(funnel_counts)]
    return {"asOf": "2026-11-24", "source": {"kind": "ndjson", "folder": "x"}, "engine": {"name": "local"},
            "counts": {"screened": funnel_counts[0], "likely-eligible": 0, "needs-review": funnel_counts[-1],
                       "not-eligible": funnel_counts[0] - funnel_counts[-1], "newCandidates": None},
            "funnel": funnel, "exclusionReasons": [], "input": {"readWhole": True}, "versions": {"trialcds": "0"}}


def test_a_rare_disease_funnel_is_shown_again_zoomed_from_the_disease_step(trial):
    page = render_report(summary_with([100_000, 99_000, 120, 60, 30]), [], trial)
    assert 'id="funnel-zoom"' in page
    zoom = page[page.index('id="funnel-zoom"'):]
    assert 'data-count="120"' in zoom and 'data-count="99000"' not in zoom
    assert zoom.count('class="bar"') == 3


def test_a_funnel_without_a_steep_drop_is_not_zoomed(trial):
    assert 'id="funnel-zoom"' not in render_report(summary_with([100, 90, 50, 30]), [], trial)
