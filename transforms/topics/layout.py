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
# The first character of each paragraph after the first, by separator: past a separator and
# the white space after it. Searched up to the text's last non-space character only, so that
# every run of white space searched ends before a character and is consumed by the first
# separator found in it: linear time, however long a run of white space.
_NEXT_PARAGRAPHS = {
    _BLANK_LINE: re.compile(r"\n[ \t]*\n\s*+(?=\S)"),
    _INDENTED_LINE: re.compile(r"\n[ \t]{2,}(?=\S)"),
    _LINE: re.compile(r"\n\s*+(?=\S)"),
}
# The text up to the end of its LEAD_WORDS-th word (possessive: a word is never split in two to
# make up the count, and a shorter text fails to match in linear time).
_LEAD = re.compile(rf"(?:\s*+\S++){{{LEAD_WORDS}}}")
# A sentence ends at `.`, `!` or `?`, closing quotes or brackets and white space, before what
# can open a sentence. One pattern per mark: a pattern that opens with a literal character lets
# the regex engine jump from one candidate to the next, which is faster on news text than one
# pattern opening with a set of characters or a lookbehind (benchmarks/README.md, "Figures
# behind choices in the code").
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
    first = _NON_SPACE.search(text)
    if first is None:
        return Layout((), (), len(text))
    last = len(text.rstrip())  # one past the last non-space character
    paragraph_starts = [first.start(), *(
        m.end() for m in _NEXT_PARAGRAPHS[separator].finditer(text, first.start(), last))]
    # The lead ends with the paragraph that holds its LEAD_WORDS-th word (a shorter text is
    # all lead).
    lead = _LEAD.match(text)
    end = separator.search(text, lead.end()) if lead else None
    lead_end = len(text) if end is None else end.start()
    # One pass over the whole text; a sentence end before a paragraph break gives that
    # paragraph's start, which the set holds once.
    starts = sorted({*paragraph_starts,
                     *(m.end() for pattern in _SENTENCE_ENDS for m in pattern.finditer(text))})
    return Layout(tuple(starts), tuple(paragraph_starts), lead_end)
