"""Boilerplate rules: what is page furniture around a story rather than part of it.

trafilatura finds the article's main content; these rules take out what it keeps along with it:
image captions, a repeated headline, credit and copyright lines, "read also" links, calls to
subscribe or share, update stamps, and a tail of related links.
"""

from __future__ import annotations

import re

# Image captions and credits: part of the page, not of the story a reader reads (XPath
# expressions trafilatura prunes before extracting).
CAPTIONS = ["//figcaption", "//figure//*[contains(@class, 'caption')]"]

# Lines that are furniture around a story, not part of it: photo credits, copyright notices,
# signatures of embedded social-media posts, "read also" links (in the languages of the news we
# see most), calls to subscribe, share, print or comment, update stamps, and tag-list headings.
_BOILERPLATE_LINE = re.compile(
    r"^(?:(?:photos?|images?|pictures?|fotos?|bild|foto|credit)s?\s*[:\u00a9]"
    r"|.{0,120}\u00a9|.{0,120}\bcopyright\b"
    r"|.*pic\.twitter\.com/"
    r"|[\u2014\u2013-]\s.{1,80}\(@\w{1,30}\)\s.{0,30}\d{4}$"
    r"|(?:read|see) (?:more|also)\b.{0,150}$|related(?: articles?| stories| coverage)?:.{0,150}$"
    r"|(?:les ogs\u00e5|lesen sie auch|lire aussi|leia tamb\u00e9m|lee tambi\u00e9n|"
    r"leggi anche|lees ook|l\u00e4s ocks\u00e5|mehr zum thema)\b.{0,150}$"
    r"|(?:sign up|subscribe|join our|follow us|share this|click here|order reprints|"
    r"print article|advertisement|anzeige|publicidade)\b.{0,100}$"
    r"|(?:updated|published|posted|aktualisiert|ver\u00f6ffentlicht)(?: at| on)?[: ]"
    r".{0,40}\d.{0,20}$"
    r"|(?:tags|categories|categorias|schlagw\u00f6rter)\s*:?$)",
    re.IGNORECASE,
)
_SENTENCE_ENDS = (".", "!", "?", "\"", "\u201d", "\u2019", "'", ")", "\u3002", ":", "\u00bb")


def without_headline(text: str, titles: tuple[str, ...]) -> str:
    """The body without a first line that repeats the headline (the page's <h1>)."""
    first, _, rest = text.partition("\n")
    if any(_comparable(first) == _comparable(title) for title in titles if title):
        return rest.strip()
    return text


def without_boilerplate(text: str) -> str:
    """The body without credit, copyright and embedded-post signature lines, and without a
    tail of short lines that are not sentences (related links, tag lists)."""
    lines = [line for line in text.split("\n")
             if len(line) > 200 or not _BOILERPLATE_LINE.match(line)]
    while len(lines) > 3 and _looks_like_link(lines[-1]):
        lines.pop()
    return "\n".join(lines)


def _looks_like_link(line: str) -> bool:
    stripped = line.strip()
    return len(stripped.split()) < 12 and not stripped.endswith(_SENTENCE_ENDS)


def _comparable(value: str) -> str:
    return " ".join(re.findall(r"\w+", value.casefold()))
