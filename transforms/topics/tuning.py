"""Choosing a taxonomy's relevance thresholds from labelled texts, by measurement.

Every combination of thresholds in GRID is scored on the labelled texts, topic by topic (F1 of
the `about` tags), on each labelled set given; the best is the one whose worst topic (in any
set) does best, then the best on average.
Several combinations usually tie; of those, the one nearest the middle of the tied ones (in
steps of the grid) is chosen, so a threshold sits inside a range that works rather than at its
edge. Tune on one labelled set and evaluate on another (`newsbeam topics eval TEST --tune-on
TRAIN`) to see how the thresholds hold on text they were not chosen on.

The signals of every text are computed once; each combination is then a few array operations.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Sequence

import numpy as np

from transforms.topics.evaluation import LabelledText
from transforms.topics.matcher import TopicMatcher
from transforms.topics.relevance import INFINITE, Relevance, judge
from transforms.topics.taxonomy import Taxonomy

GRID: dict[str, tuple[float, ...]] = {
    "headline": (0.5, 1.0, 1.5, 2.0, INFINITE),
    "lead": (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, INFINITE),
    "lead_sentences": (1, 2, 3),
    # Developed: (weighed) sentences naming the topic, at least `sentences` plus `share` of the
    # text's sentences: a short wire story needs a few, a long feature proportionally more.
    "sentences": (1.0, 1.5, 2.0, 2.5, 3.0, 4.0),
    "share": (0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2),
    "paragraphs": (1, 2, 3),
    "section": (3, 4, 5, 6, 8, INFINITE),
}


@dataclasses.dataclass(frozen=True)
class Tuned:
    """The chosen thresholds, with the F1 per topic they reach on each set tuned on."""

    relevance: Relevance
    f1: tuple[dict[str, float], ...]  # per labelled set, in the order given
    ties: int  # combinations that scored the same as the chosen one


def tune(taxonomy: Taxonomy, *labelled_sets: Iterable[LabelledText]) -> Tuned:
    """The taxonomy-wide thresholds that tag the labelled sets best (topics with thresholds of
    their own keep them). Each set is scored on its own, so with several (texts from different
    sources, say) the thresholds are those whose worst topic in any set does best."""
    matcher = TopicMatcher(taxonomy)
    names = [topic.name for topic in taxonomy.topics]
    own = {topic.name: topic.relevance for topic in taxonomy.topics if topic.relevance}
    cells = len(labelled_sets) * len(names)  # a (set, topic) pair each
    rows: list[tuple[int, bool, tuple[float, ...]]] = []  # cell, label, signals
    fixed = np.zeros((cells, 3))  # tp, fp, fn of topics judged by their own thresholds
    for number, items in enumerate(labelled_sets):
        for item in items:
            found = {tag.name: signal
                     for tag, signal in matcher.tag_with_signals(item.title, item.text)}
            for index, name in enumerate(names):
                cell = number * len(names) + index
                label = name in item.labels
                signal = found.get(name)
                if name in own:
                    judged = signal is not None and judge(signal, own[name])[0] == "about"
                    fixed[cell] += (judged and label, judged and not label, label and not judged)
                elif signal is not None:
                    rows.append((cell, label, (signal.headline, signal.lead,
                                               signal.lead_sentences, signal.sentences,
                                               signal.text_sentences, signal.paragraphs,
                                               signal.section)))
                elif label:
                    fixed[cell][2] += 1  # not even a mention: a miss whatever the thresholds
    owners = np.array([row[0] for row in rows], dtype=int)
    labels = np.array([row[1] for row in rows], dtype=bool)
    values = np.array([row[2] for row in rows], dtype=float).reshape(-1, 7)
    scored = []
    for combination in itertools.product(*GRID.values()):
        about = _about(values, combination)
        counts = fixed + np.stack([
            np.bincount(owners, about & labels, cells),
            np.bincount(owners, about & ~labels, cells),
            np.bincount(owners, ~about & labels, cells),
        ], axis=1)
        f1 = _f1(counts)
        scored.append(((round(float(f1.min()), 6), round(float(f1.mean()), 6)), combination,
                       f1))
    best = max(score for score, _, _ in scored)
    tied = [(combination, f1) for score, combination, f1 in scored if score == best]
    combination, f1 = _middle(tied)
    relevance = Relevance(**dict(zip(GRID, combination, strict=True)))
    per_set = tuple(dict(zip(names, map(float, f1[n * len(names):(n + 1) * len(names)]),
                             strict=True)) for n in range(len(labelled_sets)))
    return Tuned(relevance, per_set, len(tied))


def _about(values: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    # The same criteria as relevance.ratios, over every text at once.
    headline, lead, lead_sentences, sentences, share, paragraphs, section = thresholds
    return ((values[:, 0] >= headline)
            | ((values[:, 1] >= lead) & (values[:, 2] >= lead_sentences))
            | ((values[:, 3] >= sentences + share * values[:, 4])
               & (values[:, 5] >= paragraphs))
            | (values[:, 6] >= section))


def _f1(counts: np.ndarray) -> np.ndarray:
    tp, fp, fn = counts[:, 0], counts[:, 1], counts[:, 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * tp / (2 * tp + fp + fn)
    return np.where(2 * tp + fp + fn == 0, 1.0, f1)


def _middle(
    tied: list[tuple[tuple[float, ...], np.ndarray]],
) -> tuple[tuple[float, ...], np.ndarray]:
    """Of tied combinations, the nearest (in grid steps) to the median of each threshold."""
    scales = list(GRID.values())
    steps = np.array([[scale.index(value) for scale, value in zip(scales, combination,
                                                                  strict=True)]
                      for combination, _ in tied])
    centre = np.median(steps, axis=0)
    nearest = int(np.argmin(np.abs(steps - centre).sum(axis=1)))
    return tied[nearest]


def with_relevance(taxonomy: Taxonomy, relevance: Relevance) -> Taxonomy:
    """The taxonomy judged by `relevance` (topics with thresholds of their own keep them)."""
    return dataclasses.replace(taxonomy, relevance=relevance)
