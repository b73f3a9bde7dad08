"""Scoring the tagger against labelled texts: per-topic precision, recall and F1 of `about`.

Plain functions over `TopicMatcher`, used by `newsbeam topics eval` and the tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from transforms.core import TopicTag
from transforms.topics.matcher import TopicMatcher


@dataclasses.dataclass(frozen=True)
class LabelledText:
    """One labelled item: the topics a person said it is `about`."""

    id: str
    title: str
    text: str
    labels: frozenset[str]
    borderline: bool = False  # a second annotator could reasonably disagree


@dataclasses.dataclass(frozen=True)
class Mistake:
    """A miss (labelled, not tagged about) or a false alarm (tagged about, not labelled)."""

    id: str
    title: str
    topic: str
    tag: TopicTag | None  # what the tagger said about the topic (None: not even a mention)


@dataclasses.dataclass(frozen=True)
class TopicScore:
    topic: str
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclasses.dataclass(frozen=True)
class Evaluation:
    scores: tuple[TopicScore, ...]
    misses: tuple[Mistake, ...]
    false_alarms: tuple[Mistake, ...]
    items: int


def labelled_text(item: Mapping[str, Any], where: str) -> LabelledText:
    """A LabelledText from a JSON object {"id", "title", "text", "labels"}."""
    labels = item.get("labels")
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ValueError(f"{where}: 'labels' must be a list of topic names")
    return LabelledText(
        id=str(item.get("id", where)), title=str(item.get("title") or ""),
        text=str(item.get("text") or ""), labels=frozenset(labels),
        borderline=bool(item.get("borderline")),
    )


def evaluate(matcher: TopicMatcher, items: Iterable[LabelledText]) -> Evaluation:
    """Compare the tagger's `about` tags with the labels, topic by topic."""
    topics = [topic.name for topic in matcher.taxonomy.topics]
    counts = {name: [0, 0, 0] for name in topics}  # tp, fp, fn
    misses: list[Mistake] = []
    false_alarms: list[Mistake] = []
    total = 0
    for item in items:
        total += 1
        tags = {tag.name: tag for tag in matcher.tag(item.title, item.text)}
        for name in topics:
            tag = tags.get(name)
            predicted = tag is not None and tag.relevance == "about"
            actual = name in item.labels
            if predicted and actual:
                counts[name][0] += 1
            elif predicted:
                counts[name][1] += 1
                false_alarms.append(Mistake(item.id, item.title, name, tag))
            elif actual:
                counts[name][2] += 1
                misses.append(Mistake(item.id, item.title, name, tag))
    return Evaluation(
        scores=tuple(TopicScore(name, *counts[name]) for name in topics),
        misses=tuple(misses), false_alarms=tuple(false_alarms), items=total,
    )


def format_evaluation(evaluation: Evaluation) -> str:
    """The evaluation for a person: a table, then every mistake with its evidence."""
    lines = [f"{evaluation.items} labelled texts; scores are for 'about' tags",
             f"{'topic':<16} {'precision':>9} {'recall':>7} {'F1':>6}   tp  fp  fn"]
    for s in evaluation.scores:
        lines.append(f"{s.topic:<16} {s.precision:>9.3f} {s.recall:>7.3f} {s.f1:>6.3f}  "
                     f"{s.true_positives:>3} {s.false_positives:>3} {s.false_negatives:>3}")
    for heading, mistakes in (("misses (labelled, not tagged about)", evaluation.misses),
                              ("false alarms (tagged about, not labelled)",
                               evaluation.false_alarms)):
        lines.append(f"\n{heading}: {len(mistakes)}")
        for mistake in mistakes:
            lines.append(f"  {mistake.topic:<10} {mistake.id}  {mistake.title[:70]!r}")
            lines.append(f"             {describe_tag(mistake.tag)}")
    return "\n".join(lines)


def describe_tag(tag: TopicTag | None) -> str:
    """One line: relevance, score and evidence of a tag (or that nothing matched)."""
    if tag is None:
        return "no evidence (below the mention threshold)"
    evidence = ", ".join(
        f"{e.term} x{e.count} ({'/'.join(e.zones)})" for e in tag.evidence
    )
    return f"{tag.relevance} score {tag.score:g}: {evidence}"
