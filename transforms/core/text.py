"""Small text helpers shared by the stages: HTML fragments to text, word counts, fingerprints."""

from __future__ import annotations

import hashlib
import re

import lxml.etree
import lxml.html

_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200b\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_WORD = re.compile(r"\w+", re.UNICODE)


def clean_whitespace(text: str) -> str:
    """Collapse runs of spaces, trim every line, keep paragraph breaks as one blank line."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(fragment: str | None) -> str:
    """Plain text of an HTML fragment (a feed summary or content); "" for nothing usable."""
    if not fragment or not fragment.strip():
        return ""
    if "<" not in fragment and "&" not in fragment:
        return clean_whitespace(fragment)
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return clean_whitespace(fragment)
    for block in root.iter("p", "br", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr"):
        block.tail = "\n" + (block.tail or "")
    return clean_whitespace(root.text_content())


def valid_unicode(text: str) -> str:
    """The text with lone surrogates (JSON's "\\ud800" decodes to one, and no UTF-8 encoder
    takes it) replaced by U+FFFD; a high and low surrogate that stand apart become their one
    character."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def word_count(text: str) -> int:
    """Words as runs of letters and digits (so it works for any script that uses spaces)."""
    return len(_WORD.findall(text))


def content_fingerprint(text: str) -> str:
    """A hash of the text ignoring case and whitespace, to spot the same story at two URLs."""
    normalized = " ".join(_WORD.findall(text.lower()))
    return "sha256:" + hashlib.sha256(normalized.encode("utf-8")).hexdigest()
