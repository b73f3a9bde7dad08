"""RememberOutcomes: a stream's articles done with, committed to the state store as they come.

The ids of articles written and of those that failed for good go to the store in small
batches, under the stream's run id, so a restarted stream, or a batch run, does not fetch and
write them again. (A batch run stages the same ids and commits them once it has finished; see
transforms.state.staging.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import apache_beam as beam

from transforms.core import Composite, DeadLetter, is_permanent
from transforms.state.stores import StateStore, open_state


@dataclasses.dataclass(eq=False)
class _Commit(beam.DoFn):
    state_uri: str
    run_id: str
    _store: StateStore | None = dataclasses.field(default=None, init=False, repr=False)

    def setup(self) -> None:
        self._store = open_state(self.state_uri)

    def teardown(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def process(self, ids: list[str]) -> Iterator[int]:
        assert self._store is not None
        self._store.commit(self.run_id, {}, ids)
        yield len(ids)


def _failed_for_good(letter: DeadLetter) -> bool:
    return bool(letter.article_id) and is_permanent(letter)


@dataclasses.dataclass(eq=False)
class RememberOutcomes(Composite):
    """(records, dead letters) -> their article ids committed to the state store in batches,
    waiting at most `buffering` seconds (None: a bundle's worth, for runners without
    processing-time timers)."""

    state_uri: str
    run_id: str
    buffering: float | None = None

    def expand(self, inputs: tuple[beam.PCollection, beam.PCollection]) -> beam.PCollection:
        records, dead_letters = inputs
        failed = (
            dead_letters
            | "PermanentFailures" >> beam.Filter(_failed_for_good)
            | "FailedIds" >> beam.Map(lambda letter: letter.article_id)
        )
        batch = (beam.BatchElements(max_batch_size=500,
                                    max_batch_duration_secs=self.buffering)
                 if self.buffering else beam.BatchElements(max_batch_size=500))
        return (
            (records | "RecordIds" >> beam.Map(lambda record: record.id), failed)
            | "AllIds" >> beam.Flatten()
            | "Batch" >> batch
            | "Commit" >> beam.ParDo(_Commit(self.state_uri, self.run_id))
        )
