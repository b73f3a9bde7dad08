"""A DoFn base for work done off the bundle's thread: fetches on threads, extractions in
worker processes.

Work is started in process() and may finish in any order; what it produces goes back to the
DoFn's own thread through a queue, because Beam outputs and counters may only be touched from
the thread that runs the bundle. Results are drained on every process() call and waited for in
finish_bundle(), and the amount of work in flight is bounded, so memory stays bounded too.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from transforms.metrics import count


class Emitter:
    """Outputs (main or tagged) and counter increments of one input element, from any thread."""

    def __init__(self, sink: queue.SimpleQueue, window: Any, timestamp: Any) -> None:
        self._sink = sink
        self._window = window
        self._timestamp = timestamp

    def output(self, value: Any, tag: str | None = None) -> None:
        windowed = WindowedValue(value, self._timestamp, (self._window,))
        self._sink.put(("output", beam.pvalue.TaggedOutput(tag, windowed) if tag else windowed))

    def count(self, name: str, n: int = 1) -> None:
        self._sink.put(("count", (name, n)))


class BackgroundFn(beam.DoFn):
    """Subclasses call `self.started(futures)` for work begun in process(), and `emitter(...)`
    for the Emitter that work reports through; the base does the rest."""

    def __init__(self, max_pending: int) -> None:
        self.max_pending = max_pending
        self._results: queue.SimpleQueue | None = None  # made per bundle: not picklable
        self._pending: list[Future] = []

    def start_bundle(self) -> None:
        self._results = queue.SimpleQueue()
        self._pending = []

    def emitter(self, window: Any, timestamp: Any) -> Emitter:
        assert self._results is not None
        return Emitter(self._results, window, timestamp)

    def started(self, futures: list[Future]) -> Iterator[Any]:
        """Track work begun for the current element; yields whatever is ready meanwhile."""
        self._pending += futures
        yield from self._drain()
        while len(self._pending) > self.max_pending:  # backpressure
            self._wait(timeout=None)
            yield from self._drain()

    def finish_bundle(self) -> Iterator[Any]:
        while self._pending:
            self._wait(timeout=0.2)
            yield from self._drain()
        yield from self._drain()

    def _wait(self, timeout: float | None) -> None:
        done, not_done = wait(self._pending, timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            future.result()  # work that raised is a bug: fail the bundle loudly, Beam retries
        self._pending = list(not_done)

    def _drain(self) -> Iterator[Any]:
        assert self._results is not None
        while True:
            try:
                kind, payload = self._results.get_nowait()
            except queue.Empty:
                return
            if kind == "count":
                count(*payload)
            else:
                yield payload
