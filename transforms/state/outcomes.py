"""RememberOutcomes: a stream's articles done with, committed to the state store per window.

The ids of articles written and of those that failed for good go to the store under the
stream's run id, so a restarted stream, or a batch run, does not fetch and write them again.
They are committed when their window closes, as the window's files are written: a stream
cancelled or killed mid-window commits nothing of that window, and whatever runs next fetches
its articles again (databases upsert them on their ids, so none is written twice). (A batch run
stages the same ids and commits them once it has finished; see transforms.state.staging.)
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterable, Iterator

import apache_beam as beam

from transforms.core import Composite, DeadLetter, is_permanent
from transforms.state.store_fn import StateStoreFn

COMMIT_BATCH = 500  # ids per transaction
SHARDS = 16  # a window's ids are committed by up to this many workers at once


def _shard(article_id: str) -> int:
    return zlib.crc32(article_id.encode()) % SHARDS


@dataclasses.dataclass(eq=False)
class _Commit(StateStoreFn):
    run_id: str

    def process(self, shard: tuple[int, Iterable[str]]) -> Iterator[int]:
        store = self.store()
        ids = list(shard[1])
        for start in range(0, len(ids), COMMIT_BATCH):
            store.commit(self.run_id, {}, ids[start:start + COMMIT_BATCH])
        yield len(ids)


def _failed_for_good(letter: DeadLetter) -> bool:
    return bool(letter.article_id) and is_permanent(letter)


@dataclasses.dataclass(eq=False)
class RememberOutcomes(Composite):
    """(records, dead letters), in windows -> their article ids committed to the state store
    when their window closes."""

    state_uri: str
    run_id: str

    def expand(self, inputs: tuple[beam.PCollection, beam.PCollection]) -> beam.PCollection:
        records, dead_letters = inputs
        failed = (
            dead_letters
            | "PermanentFailures" >> beam.Filter(_failed_for_good)
            | "FailedIds" >> beam.Map(lambda letter: letter.article_id)
        )
        return (
            (records | "RecordIds" >> beam.Map(lambda record: record.id), failed)
            | "AllIds" >> beam.Flatten()
            | "ByShard" >> beam.Map(lambda article_id: (_shard(article_id), article_id))
            | "WhenTheWindowCloses" >> beam.GroupByKey()
            | "Commit" >> beam.ParDo(_Commit(self.state_uri, self.run_id))
        )
