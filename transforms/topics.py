"""The topic taxonomy, its compiled matcher, and TagTopics.

A taxonomy is plain data (frozen dataclasses, loaded from YAML by `pipeline.config`). The matcher
compiles every literal term and exclusion of every topic into one Aho-Corasick automaton per case
mode, so tagging costs one pass over the text however many topics there are; regular expressions
are the opt-in exception. Scores add each match's weight, boosted in the title and the lead;
thresholds turn a score into `about` or `mention`.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterator

import ahocorasick
import apache_beam as beam

from transforms.records import Article, Evidence, TaggedArticle, TopicTag

ZONES = ("title", "lead", "body")
LEAD_PARAGRAPHS = 2

# English inflections a term may carry without being listed: tariff -> tariffs, China -> China's.
_SUFFIXES = ("s", "es", "'s", "\u2019s")


@dataclasses.dataclass(frozen=True)
class Term:
    """A phrase that signals a topic. `pattern` terms are regular expressions."""

    text: str
    weight: float = 1.0
    case_sensitive: bool = False
    pattern: bool = False


@dataclasses.dataclass(frozen=True)
class Topic:
    """One topic: its terms, the contexts that cancel a match, boosts and thresholds."""

    name: str
    description: str
    terms: tuple[Term, ...]
    exclusions: tuple[str, ...] = ()
    title_boost: float = 3.0
    lead_boost: float = 2.0
    about: float = 4.0
    mention: float = 1.0


@dataclasses.dataclass(frozen=True)
class Taxonomy:
    """A versioned set of topics; the version is written into every record."""

    version: str
    topics: tuple[Topic, ...]


@dataclasses.dataclass
class _Hit:
    topic: int
    term: Term
    start: int
    end: int


class TopicMatcher:
    """A taxonomy compiled for matching. Build once per worker (DoFn.setup), reuse for all text."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        # Automaton values: (kind, topic index, term or exclusion phrase).
        self._folded = ahocorasick.Automaton()
        self._exact = ahocorasick.Automaton()
        self._patterns: list[tuple[int, Term, re.Pattern[str]]] = []
        folded_keys: dict[str, list[tuple[str, int, object]]] = defaultdict(list)
        exact_keys: dict[str, list[tuple[str, int, object]]] = defaultdict(list)
        for index, topic in enumerate(taxonomy.topics):
            for term in topic.terms:
                if term.pattern:
                    flags = 0 if term.case_sensitive else re.IGNORECASE
                    self._patterns.append((index, term, re.compile(term.text, flags)))
                elif term.case_sensitive:
                    exact_keys[term.text].append(("term", index, term))
                else:
                    folded_keys[term.text.lower()].append(("term", index, term))
            for phrase in topic.exclusions:
                folded_keys[phrase.lower()].append(("exclude", index, phrase))
        for automaton, keys in ((self._folded, folded_keys), (self._exact, exact_keys)):
            for key, values in keys.items():
                automaton.add_word(key, (key, values))
            if keys:
                automaton.make_automaton()

    def tag(self, title: str, text: str) -> tuple[TopicTag, ...]:
        """Topics that reach at least the `mention` threshold, highest score first."""
        zones = split_zones(title, text)
        hits: dict[int, list[tuple[str, _Hit]]] = defaultdict(list)
        for zone, zone_text in zones:
            for hit in self._hits(zone_text):
                hits[hit.topic].append((zone, hit))
        tags = [
            tag
            for index, topic in enumerate(self.taxonomy.topics)
            if (tag := _score(topic, hits.get(index, []))) is not None
        ]
        return tuple(sorted(tags, key=lambda t: (-t.score, t.name)))

    def _hits(self, text: str) -> list[_Hit]:
        terms: list[_Hit] = []
        excluded: list[tuple[int, int, int]] = []  # (topic, start, end) of exclusion phrases
        for haystack, automaton in ((text.lower(), self._folded), (text, self._exact)):
            if not len(automaton):
                continue
            for end_index, (key, values) in automaton.iter(haystack):
                start, end = end_index - len(key) + 1, end_index + 1
                end = _match_end(haystack, start, end)
                if end is None:
                    continue
                for kind, topic, item in values:
                    if kind == "term":
                        assert isinstance(item, Term)
                        terms.append(_Hit(topic, item, start, end))
                    else:
                        excluded.append((topic, start, end))
        for topic, term, regex in self._patterns:
            terms.extend(_Hit(topic, term, m.start(), m.end()) for m in regex.finditer(text))
        allowed = [
            hit for hit in terms
            if not any(
                topic == hit.topic and start < hit.end and hit.start < end
                for topic, start, end in excluded
            )
        ]
        return _longest_per_topic(allowed)


def _longest_per_topic(hits: list[_Hit]) -> list[_Hit]:
    """Drop matches covered by a longer match of the same topic ("trade" inside "trade war")."""
    kept: list[_Hit] = []
    for hit in sorted(hits, key=lambda h: (h.topic, -(h.end - h.start), h.start)):
        if not any(k.topic == hit.topic and k.start < hit.end and hit.start < k.end for k in kept):
            kept.append(hit)
    return sorted(kept, key=lambda h: (h.start, h.topic))


def split_zones(title: str, text: str) -> list[tuple[str, str]]:
    """The article as (zone, text) pairs: the title, the lead (first paragraphs), the body."""
    paragraphs = [p for p in text.split("\n") if p.strip()]
    return [
        ("title", title or ""),
        ("lead", "\n".join(paragraphs[:LEAD_PARAGRAPHS])),
        ("body", "\n".join(paragraphs[LEAD_PARAGRAPHS:])),
    ]


def _is_word_char(char: str) -> bool:
    # Scripts written without spaces (CJK) have no word boundaries to respect.
    return char.isalnum() and not "\u2e80" <= char <= "\u9fff"


def _match_end(text: str, start: int, end: int) -> int | None:
    """Where a literal match really ends, or None if it falls inside a longer word.

    A match must start at a word boundary and end at one, optionally after an inflection
    suffix (tariff -> tariffs), so "trade" does not match inside "trademark".
    """
    if start > 0 and _is_word_char(text[start]) and _is_word_char(text[start - 1]):
        return None
    if not _is_word_char(text[end - 1]) or end == len(text) or not _is_word_char(text[end]):
        return end
    for suffix in _SUFFIXES:
        stop = end + len(suffix)
        if text.startswith(suffix, end) and (stop == len(text) or not _is_word_char(text[stop])):
            return stop
    return None


def _score(topic: Topic, hits: list[tuple[str, _Hit]]) -> TopicTag | None:
    boosts = {"title": topic.title_boost, "lead": topic.lead_boost, "body": 1.0}
    score = sum(hit.term.weight * boosts[zone] for zone, hit in hits)
    if score < topic.mention or not hits:
        return None
    counts: dict[str, int] = defaultdict(int)
    zones: dict[str, set[str]] = defaultdict(set)
    for zone, hit in hits:
        counts[hit.term.text] += 1
        zones[hit.term.text].add(zone)
    evidence = tuple(
        Evidence(term=term, count=n, zones=tuple(z for z in ZONES if z in zones[term]))
        for term, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    )
    relevance = "about" if score >= topic.about else "mention"
    return TopicTag(name=topic.name, relevance=relevance, score=round(score, 3), evidence=evidence)


class _TagFn(beam.DoFn):
    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        self._matcher: TopicMatcher | None = None

    def setup(self) -> None:
        self._matcher = TopicMatcher(self.taxonomy)

    def process(self, article: Article) -> Iterator[TaggedArticle]:
        assert self._matcher is not None
        yield TaggedArticle(article, self._matcher.tag(article.title or "", article.text))


class TagTopics(beam.PTransform):
    """Article -> TaggedArticle, with the taxonomy compiled once per worker."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        super().__init__()
        self.taxonomy = taxonomy

    def expand(self, articles: beam.PCollection) -> beam.PCollection:
        return articles | "Tag" >> beam.ParDo(_TagFn(self.taxonomy))
