"""RememberOutcomes: a stream's articles done with, committed to the state store per window.

The ids of articles written and of those that failed for good go to the store under the
stream's id, so a restarted stream, or a batch run, does not fetch and write them again. A
window's ids are committed once every sink has durably written that window: the commit's
GroupByKey takes the sinks' outputs as inputs (with no elements), so its input watermark, and
with it the firing of a window, waits for each sink to have finished the window. The last
transaction of a window's commit also records the window's firing as committed
(`StateStore.committed_windows`), so a stream restarted after a crash between its files and
its commit can tell which window files are not in the store yet (pipeline/job/incremental.py).

A stream cancelled or killed mid-window commits nothing of that window, and whatever runs next
fetches its articles again. (A batch run stages the same ids and commits them once it has
finished; see transforms.state.staging.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam

from transforms.core import Composite, DeadLetter, firing_label, is_permanent
from transforms.state.store_fn import StateStoreFn

COMMIT_BATCH = 500  # ids per transaction


@dataclasses.dataclass(eq=False)
class _Commit(StateStoreFn):
    """(_, the ids of one firing of a window) -> how many were committed, with the firing."""

    stream_id: str
    launch: str

    def process(self, element: tuple[str, Iterable[str]], span: Any = beam.DoFn.WindowParam,
                pane: Any = beam.DoFn.PaneInfoParam) -> Iterator[int]:
        store = self.store()
        ids = list(element[1])
        label = firing_label(span, pane, self.launch)
        starts = range(0, len(ids), COMMIT_BATCH)
        for start in starts:
            last = start == starts[-1]
            store.commit(self.stream_id, {}, ids[start:start + COMMIT_BATCH],
                         window=label if last else None)
        yield len(ids)


def failed_for_good(letter: DeadLetter) -> bool:
    """Whether a dead letter names an article not worth asking for again."""
    return bool(letter.article_id) and is_permanent(letter)


def _nothing(_: Any) -> list[Any]:
    return []


@dataclasses.dataclass(eq=False)
class RememberOutcomes(Composite):
    """(records, dead letters, *what each sink wrote), in windows -> their article ids
    committed to the state store once every sink has written their window."""

    state_uri: str
    stream_id: str
    launch: str

    def expand(self, inputs: tuple[beam.PCollection, ...]) -> beam.PCollection:
        records, dead_letters, *written = inputs
        failed = (
            dead_letters
            | "PermanentFailures" >> beam.Filter(failed_for_good)
            | "FailedIds" >> beam.Map(lambda letter: letter.article_id)
        )
        # No elements, but their watermark: a window's commit waits for every sink's writes.
        waits = [output | f"WaitForSink{index}" >> beam.FlatMap(_nothing)
                 for index, output in enumerate(written)]
        return (
            (records | "RecordIds" >> beam.Map(lambda record: record.id), failed, *waits)
            | "AllIds" >> beam.Flatten()
            | "OneKey" >> beam.Map(lambda article_id: ("", article_id))
            | "WhenEverySinkHasTheWindow" >> beam.GroupByKey()
            | "Commit" >> beam.ParDo(_Commit(self.state_uri, self.stream_id, self.launch))
        )
