"""A topic taxonomy as plain data: topics, their terms, exclusions, boosts and thresholds.

Loaded from YAML by `pipeline.config`; compiled for matching by `TopicMatcher`.
"""

from __future__ import annotations

import dataclasses


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
    title_boost: float = 4.0
    lead_boost: float = 2.0
    about: float = 5.0
    mention: float = 1.0
    reference_words: float = 300.0


@dataclasses.dataclass(frozen=True)
class Taxonomy:
    """A versioned set of topics; the version is written into every record."""

    version: str
    topics: tuple[Topic, ...]
