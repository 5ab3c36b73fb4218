"""Chart text cannot change the card: hostile text in every record field that reaches the card is
rendered by a permissive CommonMark + GFM renderer (raw HTML on) and must come out as plain words."""

from __future__ import annotations

import re

import pytest

from cds_service.presentation.escape import Markdown, escape, join, md
from tests.cards.conftest import RENDERERS, card_of, first_with_verdict, poisoned, render, structure

# What a chart could hold to attack a card: markup of every kind markdown and HTML know.
PAYLOADS = {
    "img-tag": '<img src="http://127.0.0.1:9/pixel.png" onerror="window.pwned=1">',
    "script": "<script>window.pwned=1</script>",
    "html-link": '<a href="http://evil.example/">click</a>',
    "md-link": "[urgent: open](http://evil.example/phish)",
    "md-image": "![x](http://evil.example/track.png)",
    "autolink": "<http://evil.example/auto>",
    "reference-link": "[ref] and [ref]: http://evil.example/ref",
    "bold-em": "**BOLD** __bold__ *em* _em_ ~~strike~~",
    "code": "`code` and ```fence```",
    "table-row": "| injected | row |\n|---|---|\n| a | b |",
    "heading-list": "\n# Heading\n- list item\n> quote\n1. numbered",
    "line-breaks": "\r\n\r\n**after a blank line**\u2028<b>sep</b>\u2029\x0b\x0c",
    "entity": "&lt;img src=x&gt; &#60;b&#62;",
    "html-block": "\n<div>\n<iframe src=\"http://evil.example/\"></iframe>\n</div>\n",
    "bidi-zero-width": "\u202egnp.exe\u200b\u2066",
    "bare-urls": "see https://evil.example/x or www.evil-example.com or mail dr.x@evil-example.com",
}
# Tags that no record text may ever produce in a card.
FORBIDDEN_TAGS = {"a", "img", "script", "iframe", "table", "code", "pre", "del", "s", "blockquote", "b",
                  "h1", "h2", "h3", "h4", "h5", "h6", "div", "ol", "hr", "br"}


def visible_text(html: str) -> str:
    return "".join(structure(html).text)


# --- the escaping step itself -----------------------------------------------------------------------------

@pytest.mark.parametrize("renderer", sorted(RENDERERS))
@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_escaped_payload_renders_as_exactly_its_words(name, renderer):
    payload = PAYLOADS[name]
    html = RENDERERS[renderer](md("Reason: {}", payload))
    tags = [tag for tag, _ in structure(html).tags]
    assert tags == ["p"], (name, html)
    # The words are all there, as text: line breaks folded, invisible format characters dropped.
    expected = " ".join(re.sub(r"[\u202e\u200b\u2066]", "", payload).split())
    shown = visible_text(html).replace("\u200b", "")
    assert " ".join(shown.split()) == f"Reason: {expected}", name


@pytest.mark.parametrize("text", ["https://evil.example/x", "HTTP://EVIL.EXAMPLE", "www.evil-example.com",
                                  "WWW.Evil.com", "ftp://x.org", "mailto:a@b.com", "dr.x@evil-example.com"])
def test_no_autolink_literal_survives_escaping_whatever_the_renderer(text):
    # GFM renderers differ in whether backslash escapes stop their autolinks (remark-gfm, which the
    # CDS Hooks sandbox uses, links "http\\:\\/\\/…" anyway), so the triggers themselves are broken.
    unescaped = re.sub(r"\\(.)", r"\1", escape(text))
    assert "://" not in unescaped and not re.search(r"(?i)\bwww\.", unescaped)
    assert not re.search(r"[A-Za-z0-9.]@", unescaped)
    assert unescaped.replace("\u200b", "") == text


def test_values_already_markdown_are_not_escaped_twice_and_plain_strings_always_are():
    bold = md("**{}**", "a*b")
    assert bold == "**a\\*b**"
    assert md("{} {}", bold, "*x*") == "**a\\*b** \\*x\\*"
    with pytest.raises(TypeError):
        join([bold, "**raw**"])  # a part that skipped md() is refused
    assert isinstance(escape("x"), Markdown)


def test_a_very_long_word_gets_break_chances_and_a_long_text_is_cut():
    escaped = escape("A" * 100)
    assert "\u200b" in escaped and escaped.replace("\u200b", "") == "A" * 100
    assert len(escape("word " * 200)) < 320


# --- a whole card from a poisoned record ------------------------------------------------------------------

def expected_tags(evaluation: dict) -> list[str]:
    """The elements the card's own template makes for this evaluation: the contract's sections as
    bold paragraphs with lists, the closing "Met" line and the italic data-notes line. Anything
    beyond these came from the record."""
    criteria = evaluation["criteria"]
    open_items = sum(1 for c in criteria if c["automated"] and c["status"] == "unknown")
    review = sum(1 for c in criteria if not c["automated"] and c["status"] != "fail")
    tags = ["p", "strong"]
    for items in ([open_items] if open_items else []) + [max(review, 1), max(len(evaluation["facts"]), 1)]:
        tags += ["p", "strong", "ul"] + ["li"] * items
    tags += ["p", "strong"]
    return tags + (["p", "em"] if evaluation.get("notes") else [])


@pytest.mark.parametrize("renderer", sorted(RENDERERS))
def test_hostile_record_text_cannot_add_markup_to_any_candidate_card(seeds, candidate_slugs, renderer):
    render_html = RENDERERS[renderer]
    for slug in candidate_slugs:
        clean = card_of(seeds[slug], notes=("an ordinary note",))
        assert clean is not None, slug
        clean_tags = [tag for tag, _ in structure(render_html(clean.detail)).tags]
        assert clean_tags == expected_tags(clean.extension["trialcds.eligibility"]), slug
        for name, payload in PAYLOADS.items():
            card = card_of(poisoned(seeds[slug], payload), notes=(payload,))
            assert card is not None, (slug, name)
            html = render_html(card.detail)
            found = structure(html)
            tags = [tag for tag, _ in found.tags]
            assert not FORBIDDEN_TAGS & set(tags), (slug, name, html)
            assert all(not attrs for _, attrs in found.tags), (slug, name, html)  # no href, src, on* …
            # Only the elements the template makes for this evaluation: no emphasis, item or row from the record.
            assert tags == expected_tags(card.extension["trialcds.eligibility"]), (slug, name, html)
            assert "|" not in card.summary and "<" not in card.summary  # the summary holds our words only


def test_hostile_text_does_reach_the_cards_as_words(seeds, candidate_slugs):
    # Otherwise the test above would also pass for cards that simply never show record text.
    payload = PAYLOADS["img-tag"] + " " + PAYLOADS["md-link"]
    shown = 0
    for slug in candidate_slugs:
        card = card_of(poisoned(seeds[slug], payload))
        assert card is not None
        text = visible_text(render(card.detail)).replace("\u200b", "")
        shown += '<img src="http://127.0.0.1:9/pixel.png"' in text and "[urgent: open](http" in text
    assert shown >= 2


def test_chart_markup_is_inert_in_a_real_browser(seeds, tmp_path):
    """The poisoned card in headless Chromium: no request leaves (the <img> fetch of issue 10), no script runs."""
    from tests.browser import chromium_page

    bundle = seeds[first_with_verdict("needs-review")]
    payload = " ".join(PAYLOADS.values())
    card = card_of(poisoned(bundle, payload), notes=(payload,))
    assert card is not None
    html = f"<!doctype html><html><body>{render(card.detail)}</body></html>"
    with chromium_page(width=1024) as page:
        page.set_content(html)
        page.wait_for_timeout(200)
        assert page.evaluate("window.pwned === undefined")
        assert page.evaluate("document.querySelectorAll('a, img, script, iframe, table').length") == 0
        assert page.blocked_requests == []  # type: ignore[attr-defined]
        page.screenshot(path=str(tmp_path / "hostile-card.png"), full_page=True)
