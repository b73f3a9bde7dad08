"""DoFn bases for work done off the bundle's thread: fetches on threads (BackgroundFn), feed
parsing and extractions in worker processes (PooledFn).

Work is started in process() and may finish in any order; what it produces goes back to the
DoFn's own thread through a queue, because Beam outputs and counters may only be touched from
the thread that runs the bundle. Results are drained on every process() call and waited for in
finish_bundle(), and the amount of work in flight is bounded, so memory stays bounded too.
Each element's work runs through `guarded`, as on the bundle's thread: an exception becomes
one dead letter of the stage.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any, ClassVar, NamedTuple

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from transforms.core import workers
from transforms.core.elements import DeadLetter
from transforms.core.failures import Abandoned, guarded
from transforms.core.isolation import IsolationSettings, ProcessPool
from transforms.core.metrics import TALLIES, Tally, emitted
from transforms.core.shared import per_process


class Place(NamedTuple):
    """Where an input element sat (its window and timestamp): its outputs go there too."""

    window: Any
    timestamp: Any


class BackgroundFn(beam.DoFn):
    """Subclasses set `stage`, start work in process() and hand each element's outputs back with
    `deliver` (from any thread); `started` tracks the futures of that work."""

    stage: ClassVar[str]
    max_pending: int  # futures in flight before process() waits (backpressure)

    def setup(self) -> None:
        self._torn_down = threading.Event()

    def teardown(self) -> None:
        self._torn_down.set()

    def check_running(self) -> None:
        """Abandoned once the DoFn has been torn down (Beam tears down the DoFns of a bundle
        that failed while their work may still be queued on other threads): what is still
        to come of that work is dropped, quietly."""
        if self._torn_down.is_set():
            raise Abandoned(f"{type(self).__name__} was torn down")

    def start_bundle(self) -> None:
        self._results: queue.SimpleQueue[tuple[Place, list[Any]]] = queue.SimpleQueue()
        self._pending: list[Future[Any]] = []
        # The bundle's tallies, summed per name and place and output as it finishes: a
        # thousand feeds answering 304 are one tally, not a thousand elements to sum later.
        self._tallies: Counter[tuple[str, Place]] = Counter()

    def if_failed(self, element: Any, letter: DeadLetter) -> Iterable[Any]:
        """What goes out besides the dead letter when `element`'s work raised (nothing)."""
        return ()

    def deliver(self, element: Any, place: Place, work: Callable[[], Iterable[Any]]) -> None:
        """Run `work()` for `element` here (any thread) and queue its outputs, or its dead
        letter and `if_failed`'s, for the bundle's thread; nothing, if the DoFn was torn down
        before or while the work ran."""
        try:
            self.check_running()
            outputs = guarded(self.stage, element, work,
                              lambda letter: self.if_failed(element, letter))
        except Abandoned:
            return
        self._results.put((place, outputs))

    def deliver_when_done(
        self, future: Future[Any], element: Any, place: Place,
        outputs: Callable[[Future[Any]], Iterable[Any]],
    ) -> Future[None]:
        """Once `future` is done, deliver `outputs(future)` for `element`. The returned future
        completes after the delivery, so waiting on it waits for the outputs too."""
        delivered: Future[None] = Future()

        def on_done(done: Future[Any]) -> None:
            try:
                self.deliver(element, place, lambda: outputs(done))
            except BaseException as error:  # a bug here must fail the bundle, not vanish
                delivered.set_exception(error)
            else:
                delivered.set_result(None)

        future.add_done_callback(on_done)
        return delivered

    def started(self, futures: list[Future[Any]]) -> Iterator[Any]:
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
        for (name, place), n in self._tallies.items():
            yield _placed(beam.pvalue.TaggedOutput(TALLIES, Tally(name, n)), place)
        self._tallies.clear()

    def _wait(self, timeout: float | None) -> None:
        done, not_done = wait(self._pending, timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            future.result()  # work that raised outside `guarded` is a bug: fail the bundle
        self._pending = list(not_done)

    def _drain(self) -> Iterator[Any]:
        while True:
            try:
                place, outputs = self._results.get_nowait()
            except queue.Empty:
                return
            for output in emitted(outputs):
                if isinstance(output, beam.pvalue.TaggedOutput) and output.tag == TALLIES:
                    self._tallies[output.value.name, place] += output.value.n
                else:
                    yield _placed(output, place)


@dataclasses.dataclass(eq=False)
class PooledFn(BackgroundFn):
    """A BackgroundFn whose work runs in the worker processes: one pool per Beam worker process
    and isolation settings, shared by every stage and DoFn instance that uses them, taken at
    the first element (a run or bundle with nothing to parse or extract starts no process)."""

    isolation: IsolationSettings
    _pool: ProcessPool | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.max_pending = 4 * self.isolation.process_count

    def pool(self) -> ProcessPool:
        if self._pool is None:
            isolation = self.isolation
            self._pool = per_process(("worker processes", isolation),
                                     lambda: workers.started_pool(isolation))
        return self._pool

    def teardown(self) -> None:
        super().teardown()  # outcomes still to come are dropped
        self._pool = None  # others may still use it: released, not closed

    def run_in_worker(
        self, target: str, element: Any, place: Place,
        outputs: Callable[[Future[Any]], Iterable[Any]],
    ) -> Iterator[Any]:
        """Run `target` on `element` in a worker process; `outputs(outcome)` are delivered
        once it is done. Yields what is ready meanwhile (see `started`)."""
        yield from self.started([self.deliver_when_done(
            self.pool().submit(target, element), element, place, outputs)])


def _placed(output: Any, place: Place) -> Any:
    """An output in its input's window, as finish_bundle() must give them."""
    if isinstance(output, beam.pvalue.TaggedOutput):
        return beam.pvalue.TaggedOutput(output.tag, _placed(output.value, place))
    return WindowedValue(output, place.timestamp, (place.window,))
