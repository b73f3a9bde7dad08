"""The base of the DoFns that fetch over HTTP: concurrent, and polite to every host.

Input elements are (host, items) groups, so each host's requests are issued from one place even
across worker processes and machines. Fetches run on a thread pool (HostLanes); what they produce
is handed back to the DoFn's own thread through a queue, because Beam outputs and counters may
only be touched from the thread that runs the bundle.
"""

from __future__ import annotations

import queue
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from transforms.http import HttpClient, HttpSettings, Response
from transforms.metrics import count
from transforms.polite import HostGate, HostLanes, Politeness, host_key


def key_by_host(url_of: Any) -> beam.Map:
    """Map an element to (host, element), for grouping by host before a polite fetch."""
    return beam.Map(lambda element: (host_key(url_of(element)), element))


class Emitter:
    """What a fetch produces: outputs (main or tagged) and counter increments, in any thread."""

    def __init__(self, sink: queue.SimpleQueue, window: Any, timestamp: Any) -> None:
        self._sink = sink
        self._window = window
        self._timestamp = timestamp

    def output(self, value: Any, tag: str | None = None) -> None:
        windowed = WindowedValue(value, self._timestamp, (self._window,))
        self._sink.put(("output", beam.pvalue.TaggedOutput(tag, windowed) if tag else windowed))

    def count(self, name: str, n: int = 1) -> None:
        self._sink.put(("count", (name, n)))


class PoliteFetchFn(beam.DoFn):
    """Fetch every item of each (host, items) group concurrently, within the host's limits.

    Subclasses implement `fetch_item(item, gate, emit)`; it must call `gate.wait_turn()` before
    each request and must not raise (failures are outputs: dead letters).
    """

    # How many hosts' work may be queued beyond what the pool is running, per worker.
    MAX_PENDING_LANES_PER_WORKER = 4

    def __init__(self, settings: HttpSettings, max_bytes: int, politeness: Politeness) -> None:
        self.settings = settings
        self.max_bytes = max_bytes
        self.politeness = politeness
        self._client: HttpClient | None = None
        self._lanes: HostLanes | None = None
        self._results: queue.SimpleQueue | None = None  # made per bundle: not picklable
        self._pending: list[Future] = []

    def setup(self) -> None:
        self._client = HttpClient(self.settings)
        self._lanes = HostLanes(self.politeness)

    def teardown(self) -> None:
        if self._lanes is not None:
            self._lanes.shutdown()
            self._lanes = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def start_bundle(self) -> None:
        self._results = queue.SimpleQueue()
        self._pending = []

    # A method, not a property: Beam inspects every attribute of a DoFn while building the graph.
    def get(self, url: str, **kwargs: Any) -> Response:
        """GET with the worker's shared client and this DoFn's byte cap (see HttpClient.get)."""
        if self._client is None:
            raise RuntimeError("PoliteFetchFn used before setup()")
        return self._client.get(url, max_bytes=kwargs.pop("max_bytes", self.max_bytes),
                                **kwargs)

    def fetch_item(self, item: Any, gate: HostGate, emit: Emitter) -> None:
        raise NotImplementedError

    def process(
        self,
        group: tuple[str, Iterable[Any]],
        window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> Iterator[Any]:
        assert self._lanes is not None and self._results is not None
        _, items = group
        emit = Emitter(self._results, window, timestamp)
        self._pending += self._lanes.submit(
            list(items), lambda item, gate: self.fetch_item(item, gate, emit)
        )
        yield from self._drain()
        # Backpressure: do not queue unbounded work (and unbounded page bodies) in memory.
        limit = self.politeness.workers * self.MAX_PENDING_LANES_PER_WORKER
        while len(self._pending) > limit:
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
            future.result()  # a lane that raised is a bug: fail the bundle loudly, Beam retries
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
