"""How relevant a topic is to an article: `about` or `mention`, following the labelling rule.

A topic is `about` an article when it is a subject of the headline or the lead, or when the
body develops it: it is named in several sentences, more of them the longer the text, or in
several sentences of one section (consecutive paragraphs). A topic named in a sentence or two
elsewhere is a `mention`, however long the text. What decides is where the topic's terms are
and how much of the text they cover, never how many times words occur in the whole text: a
long article that keeps returning to a subject has many matches and so does a long article
with a passing aside, while their shares of sentences differ.

Sentences are weighed by their evidence: the weights of the topic's terms in a sentence, up to
SENTENCE_WEIGHT. A sentence that names a topic only by a weak term ("import", "heroin", weight
0.5) is half a sentence about it; one with a strong term or two ordinary ones is a sentence and
a half; more terms in one sentence add nothing, since it is still one sentence.

`Relevance` holds the thresholds (global, so a topic defined by its terms alone is judged like
any other; a taxonomy or a topic may set its own); `Signals` are what one topic's matches show
in one article; `judge` compares the two.
"""

from __future__ import annotations

import dataclasses
import math
from bisect import bisect_right
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from transforms.topics.layout import Layout

if TYPE_CHECKING:  # taxonomy imports this module
    from transforms.topics.taxonomy import Term

INFINITE = math.inf  # a criterion that never applies
# Makes a NamedTuple from a tuple of its fields, as the NamedTuple's own `_make` does, without
# the Python frame of its generated __new__: the tagger makes signals, a tag and its evidence
# for every topic of every article.
new_tuple = tuple.__new__
# The most one sentence counts for (the weight of one strong term). Measured on the labelled
# sets against 1 and 2: the cross-set figures (tuned on one set, scored on the other) were best.
SENTENCE_WEIGHT = 1.5


@dataclasses.dataclass(frozen=True)
class Relevance:
    """The thresholds that make a topic `about` an article; any one criterion is enough."""

    # The defaults are those of the bundled taxonomy (chosen with `topics tune`).
    headline: float = 0.5  # total term weight in the headline
    lead: float = 4  # total term weight in the lead ...
    lead_sentences: float = 3  # ... over at least this many of its sentences
    sentences: float = 2  # sentences naming the topic (weighed), this many ...
    share: float = 0.08  # ... plus this share of the text's sentences ...
    paragraphs: float = 1  # ... in at least this many paragraphs
    section: float = 6  # or this many (weighed) sentences naming it in consecutive paragraphs

    def to_dict(self) -> dict[str, Any]:
        return {name: (None if value == INFINITE else value)
                for name, value in dataclasses.asdict(self).items()}


DEFAULT_RELEVANCE = Relevance()


class Signals(NamedTuple):
    """What one topic's matches show in one article. (A NamedTuple: one is made for every
    topic of every article.)"""

    headline: float  # term weight in the headline
    lead: float  # term weight in the lead
    lead_sentences: int  # sentences of the lead with a match
    sentences: float  # sentences of the text with a match, weighed by their evidence
    share: float  # their share of the text's sentences
    paragraphs: int  # paragraphs with a match
    section: float  # the most (weighed) sentences with a match in a run of consecutive paragraphs
    text_sentences: int  # sentences in the whole text


def signals(
    headline: float, matches: Iterable[tuple[int, int, Term]], layout: Layout
) -> Signals:
    """The signals of a topic from its term weight in the headline and its (start, end, term)
    matches in the text of an article laid out as `layout`, in text order.

    One pass, as the matches come: a sentence counts its terms' weight up to SENTENCE_WEIGHT,
    and a run of consecutive paragraphs grows by what each of its sentences counts for."""
    sentence_starts, paragraph_starts, lead_end = (
        layout.sentence_starts, layout.paragraph_starts, layout.lead_end)
    lead = weighed = run = section = 0.0
    lead_sentences = paragraphs = 0
    sentence = paragraph = -2  # the numbers of the current sentence and paragraph
    in_sentence = counted = 0.0  # the current sentence's term weight, and what it counts for
    for start, _, term in matches:
        weight = term.weight
        number = bisect_right(sentence_starts, start)
        if number != sentence:  # the sentence's first match
            sentence, in_sentence = number, weight
            added = counted = weight if weight < SENTENCE_WEIGHT else SENTENCE_WEIGHT
            number = bisect_right(paragraph_starts, start)
            if number != paragraph:
                paragraphs += 1
                if number - paragraph > 1:
                    run = 0.0  # a paragraph without the topic in between ends the run
                paragraph = number
            if start < lead_end:  # a sentence of the lead (sentences do not cross its end)
                lead_sentences += 1
        else:
            in_sentence += weight
            capped = in_sentence if in_sentence < SENTENCE_WEIGHT else SENTENCE_WEIGHT
            added, counted = capped - counted, capped
        if start < lead_end:
            lead += weight
        weighed += added
        run += added
        if run > section:
            section = run
    total = len(sentence_starts) or 1
    return new_tuple(Signals, (headline, lead, lead_sentences, weighed, weighed / total,
                               paragraphs, section, total))


CRITERIA = ("headline", "lead", "developed", "section")


def ratios(found: Signals, thresholds: Relevance) -> tuple[float, float, float, float]:
    """How far the article is toward each criterion (CRITERIA): 1 or more meets it."""
    headline, lead, lead_sentences, sentences, _, paragraphs, section, text_sentences = found
    return (
        headline / thresholds.headline,
        min(lead / thresholds.lead, lead_sentences / thresholds.lead_sentences),
        min(sentences / (thresholds.sentences + thresholds.share * text_sentences),
            paragraphs / thresholds.paragraphs),
        section / thresholds.section,
    )


def verdict_of(found: Signals, thresholds: Relevance) -> tuple[str, float]:
    """("about" or "mention", score). The score is how far the strongest criterion is past its
    threshold: 1 or more is `about`."""
    score = max(ratios(found, thresholds))
    return ("about" if score >= 1 else "mention"), round(score, 3)


def judge(found: Signals, thresholds: Relevance) -> tuple[str, float, tuple[str, ...]]:
    """The verdict (`verdict_of`) and the criteria met."""
    met = tuple(name for name, ratio in zip(CRITERIA, ratios(found, thresholds), strict=True)
                if ratio >= 1)
    return (*verdict_of(found, thresholds), met)


def explain_signals(found: Signals, thresholds: Relevance) -> list[str]:
    """For a person: each criterion, what the article shows against what it takes."""
    def limit(value: float) -> str:
        return "off" if value == INFINITE else f"{value:g}"

    _, _, met = judge(found, thresholds)
    rows = [
        ("headline", f"term weight {found.headline:g} in the headline"
                     f" (takes {limit(thresholds.headline)})"),
        ("lead", f"term weight {found.lead:g} in {found.lead_sentences} sentence(s) of the lead"
                 f" (takes {limit(thresholds.lead)} in {limit(thresholds.lead_sentences)})"),
        ("developed", f"sentences naming it weigh {found.sentences:g}, {found.share:.0%} of"
                      f" the text's {found.text_sentences}, in {found.paragraphs} paragraph(s)"
                      f" (takes {_developed(found, thresholds)})"),
        ("section", f"sentences naming it weigh {found.section:g} in one run of consecutive"
                    f" paragraphs (takes {limit(thresholds.section)})"),
    ]
    return [f"{'MET ' if name in met else '    '}{name:<9} {text}" for name, text in rows]


def _developed(found: Signals, thresholds: Relevance) -> str:
    if INFINITE in (thresholds.sentences, thresholds.share):
        return "off"
    needed = thresholds.sentences + thresholds.share * found.text_sentences
    return (f"{thresholds.sentences:g} + {thresholds.share:.0%} of {found.text_sentences} ="
            f" {needed:.3g}, in {thresholds.paragraphs:g}")
