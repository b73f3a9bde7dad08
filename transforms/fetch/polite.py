"""Concurrent fetching that stays polite to every host.

The fetch stages route each host's URLs to one worker (they group or key them by host), and in
that worker's process every request to a host goes through the host's lanes: at most `per_host`
at once, with at least `min_interval` seconds between the starts of two of them, whichever
DoFn instance, bundle or poll the request came from. Lanes of all hosts share one thread pool,
so a worker overlaps the latency of many hosts while no host sees more than its limit.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import urlsplit


@dataclasses.dataclass(frozen=True)
class Politeness:
    """Limits on how hard newsbeam leans on any one host."""

    per_host: int = 2  # concurrent requests to one host
    min_interval: float = 0.0  # seconds between the starts of two requests to one host
    workers: int = 64  # concurrent requests per worker process, all hosts together
    respect_robots: bool = True  # honour robots.txt for article pages
    max_crawl_delay: float = 10.0  # a robots.txt Crawl-delay is honoured up to this many seconds

    def __post_init__(self) -> None:
        if self.per_host < 1 or self.workers < 1 or self.min_interval < 0:
            raise ValueError(f"invalid politeness settings: {self}")


DEFAULT_POLITENESS = Politeness()


def host_key(url: str) -> str:
    """The host a URL's requests count against (lower-case host name, "" if there is none)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


class HostGate:
    """Spaces the starts of requests to one host at least `interval` seconds apart."""

    def __init__(self, interval: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_start = 0.0
        self._last_start: float | None = None

    def set_interval(self, interval: float) -> None:
        """Space requests at least `interval` apart from now on, counting from the request
        that started last (the robots.txt that asked for it, typically)."""
        with self._lock:
            if interval > self._interval:
                self._interval = interval
                if self._last_start is not None:
                    self._next_start = max(self._next_start, self._last_start + interval)

    @property
    def last_start(self) -> float | None:
        """When the last request this gate let through started (time.monotonic), if any."""
        return self._last_start

    def note_start(self, start: float) -> None:
        """Count a request to the host that started at `start` (time.monotonic, which every
        process on a machine shares) without this gate: one of its lane processes'."""
        with self._lock:
            if self._last_start is None or start > self._last_start:
                self._last_start = start
                self._next_start = max(self._next_start, start + self._interval)

    @property
    def spacing(self) -> bool:
        """Whether requests to the host are spaced out (then the gate must be kept)."""
        return self._interval > 0

    def wait_turn(self) -> float:
        """Block until this caller may start a request to the host; the seconds it waited."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start)
            self._next_start = start + self._interval
            self._last_start = start
        if start > now:
            self._sleep(start - now)
            return start - now
        return 0.0


class _Batch:
    """Work submitted together: its future is done when all of it has run, with the first
    error raised, if any."""

    def __init__(self, size: int) -> None:
        self.future: Future[None] = Future()
        self.remaining = size
        self.error: BaseException | None = None

    def settle(self) -> None:
        if self.error is not None:
            self.future.set_exception(self.error)
        else:
            self.future.set_result(None)


@dataclasses.dataclass
class _Host:
    """One host's queue of work, its lanes at work on it, and its gate."""

    gate: HostGate
    queue: deque[tuple[Callable[[HostGate], None], _Batch]] = dataclasses.field(
        default_factory=deque)
    lanes: int = 0


class HostLanes:
    """One process's thread pool, working off each host's queue in at most `per_host` lanes.

    When more lanes are open than the pool has threads, a lane gives its thread up after each
    piece of work and queues again behind the lanes waiting for one: the hosts take turns.
    Otherwise the first hosts' lanes would hold the threads until their queues ran dry, and
    the hosts left at the end, too few to fill the threads within their limits, would run
    with threads idle.
    """

    def __init__(self, politeness: Politeness) -> None:
        self.politeness = politeness
        self._pool = ThreadPoolExecutor(
            max_workers=politeness.workers, thread_name_prefix="newsbeam-fetch"
        )
        self._lock = threading.Lock()
        self._hosts: dict[str, _Host] = {}
        self._waiting_lanes = 0  # lanes submitted to the pool and not yet on a thread
        self._closing = False  # once shutting down, lanes keep their threads to the end

    def submit(self, host: str, work: Callable[[HostGate], None]) -> Future[None]:
        """Queue `work(gate)` for `host`; it must call gate.wait_turn() before each request it
        makes (robots.txt included). The future is done when the work has run."""
        return self.submit_all(host, [work])

    def submit_all(self, host: str, works: list[Callable[[HostGate], None]]) -> Future[None]:
        """Queue each of `works` for `host`, as `submit` does; one future, done when all of
        them have run (with the first error any raised). A host's many feeds are queued at
        once, rather than each with a future of its own."""
        batch = _Batch(len(works))
        if not works:
            batch.settle()
            return batch.future
        with self._lock:
            state = self._hosts.get(host)
            if state is None:
                state = self._hosts[host] = _Host(HostGate(self.politeness.min_interval))
            state.queue.extend((work, batch) for work in works)
            starting = max(min(self.politeness.per_host - state.lanes, len(works)), 0)
            state.lanes += starting
            self._waiting_lanes += starting
        for _ in range(starting):
            self._pool.submit(self._lane, host, state)
        return batch.future

    def last_start(self, host: str) -> float | None:
        """When the last request to `host` started, if its gate is kept (a spaced host's)."""
        with self._lock:
            state = self._hosts.get(host)
        return state.gate.last_start if state is not None else None

    def note_start(self, host: str, start: float | None) -> None:
        """Space the host's next request from one made elsewhere at `start` (see
        HostGate.note_start); nothing to do for a host whose requests are not spaced."""
        if start is None or not self.politeness.min_interval:
            return
        with self._lock:
            state = self._hosts.get(host)
            if state is None:
                state = self._hosts[host] = _Host(HostGate(self.politeness.min_interval))
        state.gate.note_start(start)

    def _lane(self, host: str, state: _Host) -> None:
        with self._lock:
            self._waiting_lanes -= 1
        ran: _Batch | None = None  # the batch of the work this lane ran last, to count down
        while True:
            settled = work = None
            give_way = False
            with self._lock:
                if ran is not None:
                    ran.remaining -= 1
                    settled = ran if not ran.remaining else None
                if not state.queue:
                    state.lanes -= 1
                    if not state.lanes and not state.gate.spacing:
                        del self._hosts[host]  # nothing to remember about an unspaced host
                elif ran is not None and self._waiting_lanes and not self._closing:
                    give_way = True  # other lanes wait for a thread: queue up behind them
                    self._waiting_lanes += 1
                else:
                    work, ran = state.queue.popleft()
            if settled is not None:
                settled.settle()
            if give_way:
                try:
                    self._pool.submit(self._lane, host, state)
                    return
                except RuntimeError:  # shut down meanwhile: the lane keeps its thread
                    with self._lock:
                        self._waiting_lanes -= 1
                    ran = None  # counted down already
                    continue
            if work is None or ran is None:
                return
            try:
                work(state.gate)
            except BaseException as error:  # reported through the future, to the caller
                if ran.error is None:
                    ran.error = error

    def shutdown(self) -> None:
        with self._lock:
            self._closing = True
        self._pool.shutdown(wait=True, cancel_futures=True)
