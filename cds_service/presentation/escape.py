"""The one escaping step between a patient's record and a card: text in, inert markdown out.

A card's ``detail`` is GitHub-flavoured markdown, and EHRs render it in different ways — some
with raw HTML allowed. Any text that comes from the record or the request (condition and
medication names, observation values, notes, ids) could therefore add a tag, a script, a link,
an image, emphasis, a heading or a table row to the card. Two rules make that impossible:

* every such text passes through :func:`escape` (markdown *and* HTML metacharacters, link and
  image syntax, table pipes, line breaks) — it comes out as plain words whatever renders it;
* card markdown is only ever assembled with :func:`md`, whose template is our own literal
  markdown and whose values are escaped unless they are already :class:`Markdown` we built.

So the question "is this text escaped?" has one answer in one place, not one per f-string.
"""

from __future__ import annotations

import re
import unicodedata

# HTML metacharacters become character references: inert in HTML, and in markdown (CommonMark
# decodes them to literal characters, never to markup). ``&`` first, or it would re-escape the rest.
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
# ASCII punctuation CommonMark lets us backslash-escape (spec §2.4): emphasis, code, links and images,
# headings, lists, block quotes, tables (GFM reads ``\|`` as a literal pipe), footnotes, and the
# ``:`` ``/`` ``.`` of URLs, which keeps GFM's extended autolinks (``www.…``, ``https://…``) from firing.
# (``,;%?`` are inert in every position and stay as they are, so plain-text readers see less noise.)
_MARKDOWN_PUNCTUATION = set("!#$()*+-./:=@[\\]^_`{|}~")
# Both as one str.translate table (the two sets share no character): one pass in C per text.
_ESCAPES = {**{ord(ch): "\\" + ch for ch in _MARKDOWN_PUNCTUATION}, **{ord(ch): ref for ch, ref in _HTML.items()}}
# White space of every kind, line and paragraph separators included (\r \n \v \f \x1c-\x1e \x85
# \u2028 \u2029 would end a list item or start a block): folded to one space.
_SPACES = re.compile(r"\s+")
# A run this long with no space could push a narrow card sideways: it gets a zero-width break chance.
LONGEST_UNBROKEN = 40
_LONG_RUN = re.compile(r"\S{%d}(?=\S)" % LONGEST_UNBROKEN)
ZERO_WIDTH_SPACE = "\u200b"
MAX_LENGTH = 300  # one record text never fills a card


class Markdown(str):
    """Markdown this service wrote (or escaped): safe to place in a card as it is."""


def plain(text: object, max_length: int = MAX_LENGTH) -> str:
    """One line of visible characters: control and format characters dropped (bidi overrides,
    zero-width joiners), line breaks and runs of white space folded to one space, long texts cut."""
    # Every line break is also white space (\s), so one substitution folds both.
    value = _SPACES.sub(" ", str(text))
    # isprintable() is False for every category-C character (and for some spaces): only such a
    # text needs the per-character pass; most record text is plain printable words.
    if not value.isprintable():
        value = "".join(ch for ch in value if not unicodedata.category(ch).startswith("C"))
        value = _SPACES.sub(" ", value)
    value = value.strip()
    return value if len(value) <= max_length else value[: max_length - 1].rstrip() + "…"


# GFM "autolink literals" (https://github.github.com/gfm/#autolinks-extension-) turn a bare
# ``https://…``, ``www.…`` or ``name@host`` into a link. Renderers differ in whether a backslash
# escape stops them (remark-gfm, used by the CDS Hooks sandbox, links ``http\:\/\/…`` anyway), so an
# invisible zero-width space goes where every one of them needs an exact match: inside ``://``,
# after ``www`` and before ``@``. The text reads the same; it is no longer a URL.
_AUTOLINK_TRIGGERS = re.compile(r"(?<=:)(?=//)|(?<=\bwww)(?=\.)|(?=@)", re.IGNORECASE)


def escape(text: object) -> Markdown:
    """Record or request text → markdown that renders as exactly these words, and nothing else."""
    value = plain(text)
    if len(value) > LONGEST_UNBROKEN:  # (a shorter text cannot hold a long run)
        value = _LONG_RUN.sub(lambda m: m.group(0) + ZERO_WIDTH_SPACE, value)
    if "@" in value or "/" in value or "." in value:  # (every autolink trigger needs one of them)
        value = _AUTOLINK_TRIGGERS.sub(ZERO_WIDTH_SPACE, value)
    return Markdown(value.translate(_ESCAPES))


def md(template: str, *values: object) -> Markdown:
    """``template`` (our own literal markdown, ``{}`` placeholders) filled with escaped values.

    A value that is already :class:`Markdown` (built by this function or :func:`escape`) goes in
    as it is; anything else is escaped. Literal braces in a template are written ``{{ }}``."""
    return Markdown(template.format(*(v if isinstance(v, Markdown) else escape(v) for v in values)))


def join(parts: list[Markdown], separator: str = "\n\n") -> Markdown:
    """Blocks of card markdown, joined; refuses a part that did not come through :func:`md`."""
    for part in parts:
        if not isinstance(part, Markdown):
            raise TypeError("card markdown must be built with md() so record text is escaped")
    return Markdown(separator.join(parts))
