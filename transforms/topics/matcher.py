"""TopicMatcher: a taxonomy compiled for tagging texts.

The matcher compiles every literal term and exclusion of every topic into one Aho-Corasick
automaton, so tagging costs one pass over the text however many topics there are; regular
expressions are the opt-in exception, tried only on texts with a word they require where they
say so. A topic whose matches weigh at least its `mention` threshold is tagged; where its
matches are in the article's layout decides whether it is `about` the article
(transforms.topics.relevance).
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import ahocorasick_rs

from transforms.core import Evidence, TopicTag
from transforms.topics.layout import Layout, text_layout
from transforms.topics.relevance import Relevance, Signals, new_tuple, signals, verdict_of
from transforms.topics.taxonomy import Taxonomy, Term, Topic

ZONES = ("title", "lead", "body")
# The zones named by each bit mask of zone indexes (bit 0: title, 1: lead, 2: body).
_ZONE_SETS = tuple(tuple(z for i, z in enumerate(ZONES) if mask >> i & 1) for mask in range(8))
_LEAD, _BODY = ("lead",), ("body",)
_NAME, _SCORE = itemgetter(0), itemgetter(2)  # of a TopicTag
_START = itemgetter(0)  # of a match
_COUNT = itemgetter(1)  # of an Evidence
_NO_TEXT = Layout((), (), 0)
# Kinds of automaton values: a term, a case-sensitive term, an exclusion phrase, a word that a
# pattern requires (its value names the pattern, not a topic).
_TERM, _EXACT, _EXCLUSION, _CUE = 0, 1, 2, 3
# The most keys (distinct terms, exclusions and required words) searched with a DFA: past it,
# a DFA's memory grows too large and a contiguous NFA, a fraction of it, is used instead
# (benchmarks/README.md, "Figures behind choices in the code").
DFA_KEYS = 20_000
# The characters outside ASCII whose lower case starts with an ASCII letter: dotted capital I
# ("İstanbul") and the Kelvin sign (a test checks this against the running Python's Unicode).
_LOWER_INTO_ASCII = frozenset({"\u0130", "\u212a"})
_SURROGATE = re.compile("[\ud800-\udfff]")


class TopicMatcher:
    """A taxonomy compiled for matching. Build once per worker (DoFn.setup), reuse for all text."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        self._thresholds = [taxonomy.thresholds(topic) for topic in taxonomy.topics]
        # (topic index, the term its matches count as, the expression, whether it runs over
        # the case-folded text, whether it waits for a word it requires): regular expressions
        # run over the text after the automaton.
        self._patterns: list[tuple[int, Term, re.Pattern[str], bool, bool]] = []
        keys: dict[str, list[tuple[int, int, Any]]] = defaultdict(list)
        for index, topic in enumerate(taxonomy.topics):
            for term in topic.terms:
                if term.pattern:
                    folded = not term.case_sensitive
                    # A case-insensitive expression runs over the case-folded text, which
                    # needs no IGNORECASE unless it names a capital letter (IGNORECASE is the
                    # slower search).
                    flags = re.IGNORECASE if folded and _names_capitals(term.text) else 0
                    number = len(self._patterns)
                    shown = dataclasses.replace(term, text=term.label) if term.label else term
                    self._patterns.append((index, shown, re.compile(term.text, flags), folded,
                                           bool(term.requires)))
                    for word in term.requires:
                        keys[_same_length_lower(word)].append((_CUE, number, None))
                else:
                    kind = _EXACT if term.case_sensitive else _TERM
                    keys[_same_length_lower(term.text)].append((kind, index, term))
            for phrase in topic.exclusions:
                keys[_same_length_lower(phrase)].append((_EXCLUSION, index, phrase))
        # One automaton over the case-folded text, so the text is walked once. For each of its
        # keys, `_keys` holds whether each end of a match must sit on a word boundary (not for
        # CJK) and what a match means: (kind, topic index, term or exclusion phrase) values.
        # A case-sensitive term is found folded and kept only where the text has its own case.
        self._keys: list[tuple[bool, bool, tuple[tuple[int, int, Any], ...]]] = [
            (_is_word_char(key[0]), _is_word_char(key[-1]), tuple(values))
            for key, values in keys.items()
        ]
        # Most texts are ASCII but for a few characters (curly quotes, dashes), which send
        # str.lower() down its slow path. Where the keys do not need those characters, the
        # automaton searches an ASCII copy with each of them as "?" (made two and a half times
        # faster than str.lower(), and searched without a conversion to UTF-8); a text that
        # holds a character of a key, or one of those that lower-case into ASCII, is
        # lower-cased in full. None: every text is (a key has a cased letter outside ASCII,
        # whose capital the text may hold, or a "?").
        outside = {char for key in keys for char in key if not char.isascii()}
        self._exact_for: tuple[str, ...] | None = (
            None if any("?" in key for key in keys) or any(c.upper() != c for c in outside)
            else tuple(sorted(outside | _LOWER_INTO_ASCII))
        )
        # Overlapping matches, so that each topic resolves its own ("trade war" and "war" may
        # belong to different topics). A DFA is the fastest of the library's automata to
        # search and the largest; past DFA_KEYS a contiguous NFA keeps the automaton well
        # inside a worker's memory.
        implementation = (ahocorasick_rs.Implementation.DFA if len(keys) <= DFA_KEYS
                          else ahocorasick_rs.Implementation.ContiguousNFA)
        self._automaton = (
            ahocorasick_rs.AhoCorasick(list(keys), ahocorasick_rs.MATCHKIND_STANDARD,
                                       implementation=implementation)
            if keys else None
        )

    def __reduce__(self) -> tuple[type[TopicMatcher], tuple[Taxonomy]]:
        # Pickled as its taxonomy and compiled again where it is unpickled: the automaton
        # itself cannot be pickled.
        return TopicMatcher, (self.taxonomy,)

    def tag(self, title: str, text: str) -> tuple[TopicTag, ...]:
        """Topics that reach at least the `mention` threshold, highest score first."""
        return tuple(self._tag(title, text)[0])

    def tag_with_signals(
        self, title: str, text: str
    ) -> list[tuple[TopicTag, Signals]]:
        """The tags, each with the signals it was judged on (for explaining and tuning)."""
        tags, found = self._tag(title, text)
        return [(tag, found[tag.name]) for tag in tags]

    def _tag(self, title: str, text: str) -> tuple[list[TopicTag], dict[str, Signals]]:
        in_title, in_text = self._hits(title), self._hits(text)
        shape = text_layout(text) if in_text else _NO_TEXT
        topics, thresholds = self.taxonomy.topics, self._thresholds
        tags = []
        found = {}
        verdicts: dict[tuple[object, ...], tuple[str, float, Signals]] = {}
        for index in in_title.keys() | in_text.keys():
            judged = tag_topic(topics[index], in_title.get(index, ()), in_text.get(index, ()),
                               shape, thresholds[index], verdicts)
            if judged is not None:
                tags.append(judged[0])
                found[judged[0].name] = judged[1]
        # Highest score first, then by name: two stable sorts on keys read in C.
        tags.sort(key=_NAME)
        tags.sort(key=_SCORE, reverse=True)
        return tags, found

    def _candidates(self, haystack: str) -> list[tuple[int, int, int]]:
        """(key, start, end) of every key found in the case-folded text, overlaps included."""
        if self._automaton is None:  # a taxonomy of patterns only
            return []
        try:
            return self._automaton.find_matches_as_indexes(haystack, overlapping=True)
        except UnicodeEncodeError:  # a lone surrogate (broken input) cannot be searched as is
            searchable = _SURROGATE.sub("\ufffd", haystack)  # the replacement character
            return self._automaton.find_matches_as_indexes(searchable, overlapping=True)

    def _hits(self, text: str) -> dict[int, list[tuple[int, int, Term]]]:
        """(start, end, term) of every counted match in the text, by topic, in one pass over
        the case-folded text. Aho-Corasick reports matches in the order they end, so overlaps
        are resolved as they come: a match that covers earlier ones of its topic replaces them
        ("trade war" over "trade"), one that overlaps them only in part is dropped (leftmost
        wins)."""
        if not text:
            return {}
        # By topic, in text order.
        kept: dict[int, list[tuple[int, int, Term]]] = {}
        excluded: dict[int, list[tuple[int, int]]] = {}
        cued: set[int] = set()  # patterns whose required words are in the text
        # A term may be wrapped across lines (wire copy is hard-wrapped): line breaks and tabs
        # match as spaces, for patterns too. The replacements keep every character in place
        # (str.replace scans with memchr; str.translate is two orders of magnitude slower).
        spaced = text.replace("\n", " ").replace("\r", " ").replace("\t", " ")
        exact_for = self._exact_for
        if exact_for is None or any(char in spaced for char in exact_for):
            haystack = lowered = _same_length_lower(spaced)
        else:  # an ASCII copy, "?" for every other character (one each, so offsets hold)
            haystack = spaced.encode("ascii", "replace").lower().decode("ascii")
            lowered = None  # made if a pattern needs it
        size = len(text)
        keys = self._keys
        for key, start, end in self._candidates(haystack):
            left, right, values = keys[key]
            # Word boundaries, inlined (this loop runs for every candidate): a letter or digit
            # outside the CJK range next to the match means it is inside a word.
            if left and start > 0:
                char = haystack[start - 1]
                if char == "?":  # perhaps a letter folded away: the text's own character
                    char = spaced[start - 1]
                if char.isalnum() and not "\u2e80" <= char <= "\u9fff":
                    continue  # "trade" in "untraded"
            if right and end < size:
                char = haystack[end]
                if char == "?":
                    char = spaced[end]
                if char.isalnum() and not "\u2e80" <= char <= "\u9fff":
                    inflected = _suffix_end(haystack, spaced, end)
                    if inflected is None:
                        continue  # "trade" in "trademark"
                    end = inflected
            for kind, topic, item in values:
                if kind:  # not a plain term (_TERM is 0)
                    if kind == _EXCLUSION:
                        excluded.setdefault(topic, []).append((start, end))
                        continue
                    if kind == _CUE:
                        cued.add(topic)  # here a pattern's number
                        continue
                    if not spaced.startswith(item.text, start):
                        continue  # a case-sensitive term in another case ("Kmt", "kmt")
                stack = kept.get(topic)
                if stack is None:
                    kept[topic] = [(start, end, item)]
                elif stack[-1][1] <= start:  # the usual case: after the topic's last match
                    stack.append((start, end, item))
                else:
                    while stack and stack[-1][1] > start and start <= stack[-1][0]:
                        stack.pop()  # covered by this longer match
                    # One that overlaps an earlier match only in part is dropped.
                    if not stack or stack[-1][1] <= start:
                        stack.append((start, end, item))
        for number, (topic, term, regex, folded, waits) in enumerate(self._patterns):
            if waits and number not in cued:
                continue
            if not folded:
                matches = regex.finditer(spaced)
            else:
                if lowered is None:
                    lowered = _same_length_lower(spaced)
                matches = regex.finditer(lowered)
            found = [(m.start(), m.end(), term) for m in matches]
            if found:
                stack = kept.get(topic)
                if stack is None:
                    kept[topic] = found
                else:  # after the automaton's matches, to be put in text order
                    stack.extend(found)
                    stack.sort(key=_START)
        for topic, spans in excluded.items():
            if topic in kept:
                kept[topic] = [m for m in kept[topic]
                               if not any(s < m[1] and m[0] < e for s, e in spans)]
        return kept


def _same_length_lower(text: str) -> str:
    """Lower case with every character kept in place, so match positions line up with `text`
    (str.lower turns a few characters, such as "İ", into two)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(char.lower()[:1] for char in text)


def _names_capitals(pattern: str) -> bool:
    """Whether a regular expression has a capital letter other than an escape such as \\W (so
    matches it against case-folded text need IGNORECASE)."""
    escaped = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char.isupper():
            return True
    return False


def _is_word_char(char: str) -> bool:
    # Scripts written without spaces (CJK) have no word boundaries to respect.
    return char.isalnum() and not "\u2e80" <= char <= "\u9fff"


def _suffix_end(folded: str, text: str, end: int) -> int | None:
    """Where a match followed by more letters ends if those are an English plural ending
    (tariff -> tariffs, tax -> taxes), or None when the match is part of a longer word. A
    possessive (Taiwan -> Taiwan's) needs nothing here: the apostrophe is a word boundary.
    `folded` is the lower-cased text searched, `text` the text itself."""
    char = folded[end]
    if char == "s":
        stop = end + 1
    elif char == "e" and folded.startswith("s", end + 1):
        stop = end + 2
    else:
        return None
    return stop if stop == len(text) or not _is_word_char(text[stop]) else None


def tag_topic(
    topic: Topic,
    in_title: Sequence[tuple[int, int, Term]],
    in_text: Sequence[tuple[int, int, Term]],
    shape: Layout,
    thresholds: Relevance,
    verdicts: dict[tuple[object, ...], tuple[str, float, Signals]],
) -> tuple[TopicTag, Signals] | None:
    """The tag for one topic from its (start, end, term) matches in the title and in the text
    of an article laid out as `shape`, judged by `thresholds`, with its signals; None when the
    matches weigh less than the topic's `mention` in all. `verdicts` holds the judgments made
    for one article: topics whose matches show the same signals, or that are named once by a
    term of the same weight in the same zone, are judged once (two in three of an article's
    topics with a large taxonomy).

    This runs for every topic matched in every article, the tagger's inner loop with a large
    taxonomy: the evidence is gathered in one pass over the matches, the signals in another.
    """
    if not in_title and len(in_text) == 1:  # most topics of an article with a large taxonomy
        ((start, _, term),) = in_text
        weight = term.weight
        if weight < topic.mention:
            return None
        in_lead = start < shape.lead_end
        named_once = (in_lead, weight, id(thresholds))
        verdict = verdicts.get(named_once)
        if verdict is None:
            found = signals(0.0, in_text, shape)
            verdict = verdicts[named_once] = (*verdict_of(found, thresholds), found)
        relevance, score, found = verdict
        only = new_tuple(Evidence, (term.text, 1, _LEAD if in_lead else _BODY))
        return new_tuple(TopicTag, (topic.name, relevance, score, (only,))), found
    # Each term's evidence packed in an int: its count times 8 plus the bit mask of its zones.
    seen: dict[str, int] = {}
    headline = 0.0
    for _, _, term in in_title:
        headline += term.weight
        seen[term.text] = (seen.get(term.text, 0) + 8) | 1
    lead_end = shape.lead_end
    total = 0.0
    for start, _, term in in_text:
        total += term.weight
        seen[term.text] = (seen.get(term.text, 0) + 8) | (2 if start < lead_end else 4)
    if headline + total < topic.mention:
        return None
    found = signals(headline, in_text, shape)
    same_signals = (found, id(thresholds))
    verdict = verdicts.get(same_signals)
    if verdict is None:
        verdict = verdicts[same_signals] = (*verdict_of(found, thresholds), found)
    relevance, score, _ = verdict
    if len(seen) == 1:  # one term, named more than once (a third of these topics)
        ((name, packed),) = seen.items()
        only = new_tuple(Evidence, (name, packed >> 3, _ZONE_SETS[packed & 7]))
        return new_tuple(TopicTag, (topic.name, relevance, score, (only,))), found
    # Most found first, then by name: sorted by name, then by count with a stable sort (which
    # keeps equal counts in name order, reversed too), keys read in C. A plain loop: a
    # comprehension costs a function call.
    evidence = []
    for name, packed in sorted(seen.items()):
        evidence.append(new_tuple(Evidence, (name, packed >> 3, _ZONE_SETS[packed & 7])))
    evidence.sort(key=_COUNT, reverse=True)
    return new_tuple(TopicTag, (topic.name, relevance, score, tuple(evidence))), found
