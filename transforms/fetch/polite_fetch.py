"""The base of the DoFns that fetch over HTTP: concurrent, and polite to every host.

Input elements are (host, items) groups, so each host's requests are issued from one place even
across worker processes and machines. Fetches run on a thread pool (HostLanes); BackgroundFn
hands what they produce back to the bundle's thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam

from transforms.core import BackgroundFn, Place
from transforms.fetch.http import HttpClient, HttpSettings, Response
from transforms.fetch.polite import HostGate, HostLanes, Politeness, host_key

# How many hosts' lanes may be queued beyond what the pool is running, per fetch thread.
MAX_PENDING_LANES_PER_THREAD = 4


def fetch_grouped_by_host(
    items: beam.PCollection, url_of: Callable[[Any], str], fn: PoliteFetchFn, *tags: str,
    main: str,
) -> beam.pvalue.DoOutputsTuple:
    """items -> (host, items) groups -> `fn`: one place fetches each host's URLs."""
    return (
        items
        | "KeyByHost" >> beam.Map(lambda item: (host_key(url_of(item)), item))
        | "GroupByHost" >> beam.GroupByKey()
        | "Fetch" >> beam.ParDo(fn).with_outputs(*tags, main=main)
    )


@dataclasses.dataclass(eq=False)
class PoliteFetchFn(BackgroundFn):
    """Fetch every item of each (host, items) group concurrently, within the host's limits.

    Subclasses set `stage` and implement `fetch_item(item, gate)`, which calls
    `gate.wait_turn()` before each request and yields the item's outputs (failures are outputs
    too: dead letters).
    """

    settings: HttpSettings
    max_bytes: int
    politeness: Politeness
    # Opened in setup(), closed in teardown(): never pickled with the DoFn.
    _client: HttpClient | None = dataclasses.field(default=None, init=False, repr=False)
    _lanes: HostLanes | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.max_pending = self.politeness.workers * MAX_PENDING_LANES_PER_THREAD

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

    # A method, not a property: Beam inspects every attribute of a DoFn while building the graph.
    def get(self, url: str, **kwargs: Any) -> Response:
        """GET with the worker's client and this DoFn's byte cap (see HttpClient.get)."""
        if self._client is None:
            raise RuntimeError("PoliteFetchFn used before setup()")
        return self._client.get(url, max_bytes=kwargs.pop("max_bytes", self.max_bytes),
                                **kwargs)

    def fetch_item(self, item: Any, gate: HostGate) -> Iterable[Any]:
        raise NotImplementedError

    def process(
        self,
        group: tuple[str, Iterable[Any]],
        window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> Iterator[Any]:
        assert self._lanes is not None
        _, items = group
        place = Place(window, timestamp)

        def work(item: Any, gate: HostGate) -> None:
            self.deliver(item, place, lambda: self.fetch_item(item, gate))

        yield from self.started(self._lanes.submit(list(items), work))
