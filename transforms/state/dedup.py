"""DedupEntries: one entry per article, and none an earlier run already wrote."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam

from transforms.core import TALLIES, Composite, Entry, Tally, emitted
from transforms.state.store_fn import StateStoreFn
from transforms.state.stores import LOOKUP_BATCH


def first_of_duplicates(entries: Iterable[Entry]) -> tuple[Entry, int]:
    """The entry to keep among entries sharing an id, and how many duplicates were dropped.

    The earliest feed in the feeds file wins, then the earliest position in that feed, so the
    choice does not depend on the order the runner delivers elements in.
    """
    ordered = sorted(entries, key=lambda e: (e.feed_index, e.position, e.feed_url))
    return ordered[0], len(ordered) - 1


class _KeepFirst(beam.DoFn):
    def process(self, element: tuple[str, Iterable[Entry]]) -> Iterator[Any]:
        _, entries = element
        kept, duplicates = first_of_duplicates(entries)
        if duplicates:
            yield from emitted([Tally("entries.duplicate", duplicates)])
        yield kept


@dataclasses.dataclass(eq=False)
class SkipSeen(StateStoreFn):
    """Drop entries whose article an earlier run already wrote (looked up in batches)."""

    def process(self, batch: list[Entry]) -> Iterator[Any]:
        seen = self.store().seen([entry.article_id for entry in batch])
        if seen:
            yield from emitted([Tally("entries.seen_before",
                                      sum(1 for e in batch if e.article_id in seen))])
        yield from (entry for entry in batch if entry.article_id not in seen)


class Deduplicated(NamedTuple):
    """What DedupEntries outputs: one entry per new article, and the duplicates it counted."""

    entries: beam.PCollection
    tallies: beam.PCollection


@dataclasses.dataclass(eq=False)
class DedupEntries(Composite):
    """One entry per article id: the first within the run, and none an earlier run wrote.

    Duplicates within the run are counted as `entries.duplicate`, articles seen in earlier runs
    (per the state store at `state_uri`; None to skip that check) as `entries.seen_before`.
    """

    state_uri: str | None = None

    def expand(self, entries: beam.PCollection) -> Deduplicated:
        unique = (
            entries
            | "KeyByArticleId" >> beam.Map(lambda entry: (entry.article_id, entry))
            .with_output_types(tuple[str, Entry])
            | "GroupById" >> beam.GroupByKey()
            | "KeepFirst" >> beam.ParDo(_KeepFirst()).with_outputs(TALLIES, main="entries")
        )
        if self.state_uri is None:
            return Deduplicated(unique.entries, unique.tallies)
        new = (
            unique.entries
            # Fixed-size batches: adaptive batching starts at one element, one query each.
            | "Batch" >> beam.BatchElements(min_batch_size=LOOKUP_BATCH,
                                            max_batch_size=LOOKUP_BATCH)
            | "SkipSeen" >> beam.ParDo(SkipSeen(self.state_uri)).with_outputs(
                TALLIES, main="entries")
        )
        tallies = (unique.tallies, new.tallies) | "Tallies" >> beam.Flatten()
        return Deduplicated(new.entries, tallies)
