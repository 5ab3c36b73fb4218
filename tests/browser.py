"""A real browser for the tests that look at what a person sees: Debian's Chromium, driven by Playwright.

Playwright's own browser download cannot run here (the machine reaches package registries only), so the
Python package drives the Chromium that ``scripts/system-deps.sh`` installs from Debian
(``/usr/bin/chromium``, or ``TRIALCDS_CHROMIUM``). Usage::

    from tests.browser import chromium_page

    with chromium_page(width=1024) as page:
        page.set_content(html)            # or page.goto(file_url)
        page.screenshot(path=tmp_path / "card.png", full_page=True)

``offline=True`` (the default) aborts every request that is not for a ``file:``, ``data:`` or
``about:`` URL and records it in ``page.blocked_requests``, so a test can assert a page is
self-contained. Without Chromium the test is skipped on a developer machine and fails under CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# The flags keep Chromium from reaching for Google's services, which this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:")


def chromium_path() -> str:
    """The Chromium binary, or skip (developer machine) / fail (CI) with the reason."""
    candidate = os.environ.get("TRIALCDS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if Path(candidate).exists():
        return candidate
    reason = "Debian's chromium is not installed (scripts/system-deps.sh installs it as root)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)
    raise AssertionError("unreachable")


@contextmanager
def chromium_page(width: int = 1024, height: int = 800, offline: bool = True) -> Iterator[object]:
    """A fresh headless Chromium page of the given viewport; closed (with its browser) afterwards."""
    executable = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.blocked_requests = []  # type: ignore[attr-defined]
            if offline:
                def guard(route: object) -> None:
                    url = route.request.url  # type: ignore[attr-defined]
                    if url.startswith(LOCAL_SCHEMES):
                        route.continue_()  # type: ignore[attr-defined]
                    else:
                        page.blocked_requests.append(url)  # type: ignore[attr-defined]
                        route.abort()  # type: ignore[attr-defined]
                page.route("**/*", guard)
            yield page
        finally:
            browser.close()
