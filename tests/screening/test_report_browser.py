"""report.html in headless Chromium with the network blocked: the charts, the rows, a patient's
criterion table on expanding, the verdict filter; a screenshot is saved (and copied to docs/img)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.browser import chromium_page

from .helpers import background_patient, evaluations, resources, screen, write_ndjson

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "screening-report.png"


@pytest.fixture(scope="module")
def report(seeds, as_of, tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    items = resources(seeds.values())
    for n in range(60):
        items += background_patient(n)
    folder = write_ndjson(root / "in", items)
    # A first run over half the seed patients, so the second marks some candidates new.
    write_ndjson(root / "in-before", resources(list(seeds.values())[::2]))
    assert screen("--ndjson", root / "in-before", "--out", root / "before", "--as-of", as_of, "--quiet") == 0
    assert screen("--ndjson", folder, "--out", root / "out", "--as-of", as_of, "--quiet", "--previous", root / "before") == 0
    return root / "out"


@pytest.mark.slow
def test_report_shows_funnel_exclusions_and_an_expandable_worklist_offline(report, tmp_path):
    found = evaluations(report)
    candidates = {ref: e for ref, e in found.items() if e["verdict"] != "not-eligible"}
    url = (report / "report.html").resolve().as_uri()
    other_requests: list[str] = []
    with chromium_page(width=1200, height=900) as page:
        def only_the_file(route):  # stricter than the harness: nothing but the page itself
            if route.request.url == url:
                route.continue_()
            else:
                other_requests.append(route.request.url)
                route.abort()
        page.route("**/*", only_the_file)
        page.goto(url)

        funnel_bars = page.locator("#funnel-chart g.bar")
        assert funnel_bars.count() >= 3
        assert int(funnel_bars.first.get_attribute("data-count")) == len(found)
        assert int(funnel_bars.last.get_attribute("data-count")) == len(candidates)
        assert page.locator("#funnel-chart rect").first.bounding_box()["width"] > 100
        assert page.locator("#exclusion-chart g.bar").count() >= 3

        rows = page.locator("tbody.patient")
        assert rows.count() == len(candidates)
        first = rows.first
        criteria = first.locator("tr.criteria")
        assert not criteria.is_visible()
        first.locator("button.toggle").click()
        assert criteria.is_visible()
        ref = first.locator("tr.main .ref").inner_text()
        shown = criteria.locator("tbody tr")
        assert shown.count() == len(candidates[ref]["criteria"])
        assert candidates[ref]["criteria"][1]["label"] in criteria.inner_text()

        # A needs-review row names what to check without expanding anything.
        review = page.locator("tbody.patient[data-verdict=needs-review]").first
        review_ref = review.locator("tr.main .ref").inner_text()
        open_items = [c for c in candidates[review_ref]["criteria"] if c["automated"] and c["status"] == "unknown"]
        assert open_items and review.locator("ul.open li").count() == len(open_items)
        assert open_items[0]["label"] in review.locator("td.open-items").inner_text()

        page.check("input[value=needs-review]")
        visible = [b for b in rows.all() if b.is_visible()]
        assert visible and all(b.get_attribute("data-verdict") == "needs-review" for b in visible)
        assert len(visible) == sum(e["verdict"] == "needs-review" for e in candidates.values())
        page.check("input[value=new]")
        visible_new = [b for b in rows.all() if b.is_visible()]
        assert visible_new and all(b.get_attribute("data-new") == "true" for b in visible_new)
        page.check("input[value=all]")
        assert all(b.is_visible() for b in rows.all())

        shot = tmp_path / "screening-report.png"
        page.set_viewport_size({"width": 1200, "height": 1500})
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(shot), full_page=False)
        page.emulate_media(media="print")
        assert not page.locator(".controls").is_visible()
    assert other_requests == [] and page.blocked_requests == []
    assert shot.stat().st_size > 10_000
    if os.environ.get("TRIALCDS_UPDATE_DOCS_IMG"):
        shutil.copyfile(shot, DOCS_SCREENSHOT)
