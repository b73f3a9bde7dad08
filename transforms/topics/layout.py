"""The layout of an article's text, as the labelling rule reads it: paragraphs, sentences, and
the lead (the first paragraphs, about LEAD_WORDS words).

Texts come in three shapes: the pipeline's own (one paragraph per line), web copy with blank
lines between paragraphs, and wire copy hard-wrapped at 70 columns with each paragraph's first
line indented. Paragraphs are told apart accordingly; a line break inside a paragraph is a
wrap. Sentences end at `.`, `!` or `?` (and a closing quote or bracket) before a capital
letter, a digit or an opening quote; an abbreviation such as "U.S. And" splits a sentence in
two now and then, which the measures built on sentences (shares, counts of several) tolerate.
"""

from __future__ import annotations

import dataclasses
import re

# The lead is the first paragraphs up to this many words: two paragraphs of a typical story,
# several lines of wire copy.
LEAD_WORDS = 100

_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_INDENTED_LINE = re.compile(r"\n(?=[ \t]{2,}\S)")
_LINE = re.compile(r"\n")
# A sentence ends at `.`, `!` or `?`, closing quotes or brackets and white space, before what
# can open a sentence. One pattern per mark: a pattern that opens with a literal character lets
# the regex engine jump from one candidate to the next, several times faster on news text than
# one pattern opening with a set of characters (or with a lookbehind).
_SENTENCE_ENDS = tuple(
    re.compile(re.escape(mark) + r"[\"”’')\]]*\s+(?=[\"“‘(\[]?[A-Z0-9])") for mark in ".!?"
)
_NON_SPACE = re.compile(r"\S")


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where a text's sentences and paragraphs start, and where its lead ends (character
    offsets into the text)."""

    sentence_starts: tuple[int, ...]
    paragraph_starts: tuple[int, ...]
    lead_end: int

    @property
    def sentences(self) -> int:
        return len(self.sentence_starts)

    @property
    def paragraphs(self) -> int:
        return len(self.paragraph_starts)


def text_layout(text: str) -> Layout:
    """The paragraphs, sentences and lead of `text`."""
    if _BLANK_LINE.search(text):
        separator = _BLANK_LINE
    elif _INDENTED_LINE.search(text):
        separator = _INDENTED_LINE
    else:
        separator = _LINE
    paragraph_starts: list[int] = []  # offset of each non-blank paragraph's first character
    lead_end = -1
    words = 0
    position = 0
    for boundary in (*(m.start() for m in separator.finditer(text)), len(text)):
        first = _NON_SPACE.search(text, position, boundary)
        if first is not None:
            paragraph_starts.append(first.start())
            if lead_end < 0:
                words += len(text[position:boundary].split())
                if words >= LEAD_WORDS:
                    lead_end = boundary
        position = boundary + 1
    # One pass over the whole text; a sentence end before a paragraph break gives that
    # paragraph's start, which the set holds once.
    starts = sorted({*paragraph_starts,
                     *(m.end() for pattern in _SENTENCE_ENDS for m in pattern.finditer(text))})
    return Layout(tuple(starts), tuple(paragraph_starts),
                  len(text) if lead_end < 0 else lead_end)
