"""Hostile chart text through the CDS Hooks sandbox's own card renderer: react-markdown's pipeline
(remark-parse + remark-gfm → remark-rehype → rehype-raw, raw HTML allowed), run in Node.

This renderer links bare URLs even when their punctuation is backslash-escaped. It found a real gap
when the service was tried in the sandbox, which markdown-it and cmark-gfm had not shown.
The npm packages (tests/cards/remark/package.json, pinned) are installed once into var/remark-gfm/.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.cards.conftest import card_of, poisoned
from tests.cards.test_hostile_text import FORBIDDEN_TAGS, PAYLOADS, expected_tags

HERE = Path(__file__).resolve().parent / "remark"
REPO_ROOT = HERE.parents[2]
INSTALL_DIR = REPO_ROOT / "var" / "remark-gfm"

pytestmark = pytest.mark.slow


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sandbox_renderer() -> Path:
    """The folder holding render.mjs and its node_modules, installed when package.json changed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        _unavailable("node and npm are needed to run the CDS Hooks sandbox's markdown renderer")
    manifest = (HERE / "package.json").read_bytes()
    stamp = INSTALL_DIR / ".package.sha256"
    digest = hashlib.sha256(manifest).hexdigest()
    if not stamp.exists() or stamp.read_text() != digest:
        INSTALL_DIR.mkdir(parents=True, exist_ok=True)
        (INSTALL_DIR / "package.json").write_bytes(manifest)
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
                              cwd=INSTALL_DIR, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            _unavailable(f"npm install failed: {done.stderr[-800:]}")
        stamp.write_text(digest)
    shutil.copyfile(HERE / "render.mjs", INSTALL_DIR / "render.mjs")
    return INSTALL_DIR


def render_like_the_sandbox(folder: Path, documents: list[str]) -> list[list[tuple[str, dict]]]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as batch:
        json.dump(documents, batch)
        batch.flush()
        done = subprocess.run(["node", "render.mjs", batch.name], cwd=folder, capture_output=True, text=True,
                              timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return [[(tag, props) for tag, props in tree] for tree in json.loads(done.stdout)]


def test_the_sandbox_renderer_would_show_chart_markup(sandbox_renderer):
    """The renderer is as permissive as described: unescaped chart text becomes tags and links."""
    trees = render_like_the_sandbox(sandbox_renderer, ['<img src="x.png"> **b** see https://evil.example/x'])
    tags = [tag for tag, _ in trees[0]]
    assert {"img", "strong", "a"} <= set(tags)


def test_hostile_record_text_renders_as_plain_words_in_the_sandbox(sandbox_renderer, seeds, candidate_slugs):
    cards = [card_of(poisoned(seeds[slug], payload), notes=(payload,))
             for slug in candidate_slugs for payload in PAYLOADS.values()]
    assert all(card is not None for card in cards)
    trees = render_like_the_sandbox(sandbox_renderer, [card.detail for card in cards])
    for card, tree in zip(cards, trees):
        tags = [tag for tag, _ in tree]
        assert not FORBIDDEN_TAGS & set(tags), card.detail
        assert all(not props for _, props in tree), card.detail  # no href, src, on* …
        assert tags == expected_tags(card.extension["trialcds.eligibility"]), card.detail
