"""The base of the DoFns that fetch over HTTP: concurrent, and polite to every host.

Input elements are (host, items) groups, so each host's requests are issued from one worker
even across processes and machines. In each process one set of resources (`FetchResources`:
the HTTP client, the per-host lanes on one thread pool, robots.txt rules) serves every fetching
DoFn instance, feeds and pages alike; BackgroundFn hands what the lanes produce back to the
bundle's thread.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any

import apache_beam as beam

from transforms.core import WAIT_TALLY, BackgroundFn, Place, Tally, per_process
from transforms.fetch.http import HttpClient, HttpSettings, Response
from transforms.fetch.polite import HostGate, HostLanes, Politeness, host_key
from transforms.fetch.robots import RobotsCache

# How many hosts' groups a DoFn instance may have in flight, per fetch thread.
MAX_PENDING_PER_THREAD = 4


@dataclasses.dataclass(frozen=True)
class Grouping:
    """How a fetch stage routes each host's items to one worker. A batch run groups them all
    (GroupByKey); a stream, whose collection has no end (a GroupByKey there would wait for a
    window to close), passes each on at once through a keyed step, so a host's items still go
    to the worker that owns the host, whose process-wide lanes keep to its limits."""

    streaming: bool = False


BATCH_GROUPING = Grouping()


def fetch_grouped_by_host(
    items: beam.PCollection, url_of: Callable[[Any], str], fn: PoliteFetchFn, *tags: str,
    main: str, grouping: Grouping = BATCH_GROUPING,
) -> beam.pvalue.DoOutputsTuple:
    """items -> (host, items) groups -> `fn`: one worker fetches each host's URLs."""
    # String keys, declared: stateful and grouping steps need a deterministic key coder.
    keyed = items | "KeyByHost" >> beam.Map(
        lambda item: (host_key(url_of(item)), item)).with_output_types(tuple[str, Any])
    if grouping.streaming:
        # Batches of one: keyed routing without buffering, so no timer holds an item back.
        groups = keyed | "GroupByHost" >> beam.GroupIntoBatches(1)
    else:
        groups = keyed | "GroupByHost" >> beam.GroupByKey()
    return groups | "Fetch" >> beam.ParDo(fn).with_outputs(*tags, main=main)


def wait_tallies(url: str, seconds: float) -> list[Tally]:
    """A politeness wait before a request to `url`'s host, for the run's summary (and the
    report): `politeness.wait_ms.<host>`, when it waited a millisecond or more."""
    milliseconds = round(seconds * 1000)
    return [Tally(f"{WAIT_TALLY}{host_key(url)}", milliseconds)] if milliseconds else []


class FetchResources:
    """What one process fetches with, made once per process and settings (see per_process)."""

    def __init__(self, settings: HttpSettings, politeness: Politeness) -> None:
        self.client = HttpClient(settings)
        self.lanes = HostLanes(politeness)
        self.robots = RobotsCache()
        # Closed when the last DoFn instance lets go of them (the finalizer must not hold self).
        weakref.finalize(self, _close, self.client, self.lanes)


def _close(client: HttpClient, lanes: HostLanes) -> None:
    lanes.shutdown()
    client.close()


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
    # The process's, acquired in setup() and let go of in teardown(); never pickled.
    _resources: FetchResources | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.max_pending = self.politeness.workers * MAX_PENDING_PER_THREAD

    def setup(self) -> None:
        super().setup()
        settings, politeness = self.settings, self.politeness
        self._resources = per_process(("fetch", settings, politeness),
                                      lambda: FetchResources(settings, politeness))

    def teardown(self) -> None:
        super().teardown()  # what is still queued for the lanes is dropped
        self._resources = None  # others may still use them: released, not closed

    def resources(self) -> FetchResources:
        self.check_running()
        if self._resources is None:
            raise RuntimeError("PoliteFetchFn used before setup()")
        return self._resources

    # A method, not a property: Beam inspects every attribute of a DoFn while building the graph.
    def get(self, url: str, **kwargs: Any) -> Response:
        """GET with the process's client and this DoFn's byte cap (see HttpClient.get)."""
        return self.resources().client.get(
            url, max_bytes=kwargs.pop("max_bytes", self.max_bytes), **kwargs)

    def fetch_item(self, item: Any, gate: HostGate) -> Iterable[Any]:
        raise NotImplementedError

    def process(
        self,
        group: tuple[str, Iterable[Any]],
        window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> Iterator[Any]:
        host, items = group
        # What is fetched keeps its input's time: in a stream, the time of the poll that
        # brought it in, so that all a poll counts is summarized in one window.
        place = Place(window, timestamp)
        # One future per group, done when all its items are: backpressure counts hosts in
        # flight, so a large host does not hold back the start of every other host's work.
        yield from self.started([self.submit_group(host, list(items), place)])

    def submit_group(self, host: str, items: list[Any], place: Place) -> Future[None]:
        """Start the work of a host's items in this process's lanes; done when all of it has
        run and its outputs are delivered."""
        return self.resources().lanes.submit_all(
            host, [self.lane_work(item, place) for item in items])

    def lane_work(self, item: Any, place: Place) -> Callable[[HostGate], None]:
        """`item`'s work in its host's lane: fetch_item, its outputs delivered."""
        return lambda gate: self.deliver(item, place, lambda: self.fetch_item(item, gate))
