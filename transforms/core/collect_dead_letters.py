"""CollectDeadLetters: every stage's dead letters in one PCollection, counted by reason.

Apart from the plain functions of transforms.core.dead_letters, so that building a dead letter
needs no Beam: the worker processes that parse feeds build theirs without importing it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import apache_beam as beam

from transforms.core.elements import DeadLetter
from transforms.core.metrics import TALLIES, Tally, emitted


def letter_tallies(letter: DeadLetter) -> tuple[Tally, ...]:
    """What one dead letter counts for: its stage and reason, and a lost entry, or a lost
    feed and the reason it was lost for (`feeds.failed.<reason>`: a stage's reason alone does
    not say, since an unexpected error at parsing may lose a feed or one of its entries)."""
    stage_and_reason = Tally(f"dead_letters.{letter.stage}.{letter.reason}")
    if letter.subject == "feed":
        return (stage_and_reason, Tally("feeds.dead_letter"),
                Tally(f"feeds.failed.{letter.reason}"))
    return stage_and_reason, Tally("entries.dead_letter")


def _counted(letter: DeadLetter) -> Iterator[Any]:
    yield letter
    yield from emitted(letter_tallies(letter))


class DeadLetters(NamedTuple):
    """Every stage's dead letters in one PCollection, and what they count for."""

    letters: beam.PCollection
    tallies: beam.PCollection


class CollectDeadLetters(beam.PTransform):
    """Flatten the dead-letter outputs of every stage into one PCollection, counted by reason."""

    def expand(self, outputs: tuple[beam.PCollection, ...]) -> DeadLetters:
        counted = (
            outputs
            | "Flatten" >> beam.Flatten()
            | "CountByReason" >> beam.ParDo(_counted).with_outputs(TALLIES, main="letters")
        )
        return DeadLetters(counted.letters, counted.tallies)
