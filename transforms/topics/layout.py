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
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’')\]]*\s+(?=[\"“‘(\[]?[A-Z0-9])")


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where a text's sentences start and which paragraph each is in, and where its lead
    ends (character offsets into the text)."""

    sentence_starts: tuple[int, ...]
    sentence_paragraphs: tuple[int, ...]
    paragraphs: int
    lead_end: int

    @property
    def sentences(self) -> int:
        return len(self.sentence_starts)


def text_layout(text: str) -> Layout:
    """The paragraphs, sentences and lead of `text`."""
    if _BLANK_LINE.search(text):
        separator = _BLANK_LINE
    elif _INDENTED_LINE.search(text):
        separator = _INDENTED_LINE
    else:
        separator = _LINE
    starts: list[int] = []
    owners: list[int] = []
    paragraph = 0
    lead_end = -1
    words = 0
    position = 0
    for boundary in (*(m.start() for m in separator.finditer(text)), len(text)):
        chunk = text[position:boundary]
        if chunk.strip():
            if lead_end < 0:
                words += len(chunk.split())
                if words >= LEAD_WORDS:
                    lead_end = boundary
            starts.append(position + len(chunk) - len(chunk.lstrip()))
            owners.append(paragraph)
            for end in _SENTENCE_END.finditer(chunk):
                starts.append(position + end.end())
                owners.append(paragraph)
            paragraph += 1
        position = boundary + 1
    return Layout(tuple(starts), tuple(owners), paragraph,
                  len(text) if lead_end < 0 else lead_end)
