"""A topic taxonomy as plain data: topics, their terms, exclusions and relevance thresholds.

Loaded from YAML by `transforms.topics.taxonomy_file`; compiled for matching by `TopicMatcher`.
"""

from __future__ import annotations

import dataclasses

from transforms.topics.relevance import DEFAULT_RELEVANCE, Relevance


@dataclasses.dataclass(frozen=True)
class Term:
    """A phrase that signals a topic. `pattern` terms are regular expressions: `text` is the
    expression, `label` what the evidence calls its matches (the expression when empty), and
    `requires` words of which one must be in a text before the expression is tried there."""

    text: str
    weight: float = 1.0
    case_sensitive: bool = False
    pattern: bool = False
    label: str = ""
    requires: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Topic:
    """One topic: its terms, the contexts that cancel a match, and its thresholds (`relevance`:
    its own, or None for the taxonomy's)."""

    name: str
    description: str
    terms: tuple[Term, ...]
    exclusions: tuple[str, ...] = ()
    mention: float = 1.0  # total term weight that makes a mention
    relevance: Relevance | None = None


@dataclasses.dataclass(frozen=True)
class Taxonomy:
    """A versioned set of topics; the version is written into every record."""

    version: str
    topics: tuple[Topic, ...]
    relevance: Relevance = DEFAULT_RELEVANCE  # for topics without their own

    def thresholds(self, topic: Topic) -> Relevance:
        """The relevance thresholds `topic` is judged by."""
        return topic.relevance or self.relevance
