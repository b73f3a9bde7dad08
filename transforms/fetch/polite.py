"""Concurrent fetching that stays polite to every host.

All of one host's URLs arrive together (the fetch stages group them by host, so one worker owns
each host), and are worked off by at most `per_host` lanes, with at least `min_interval` seconds
between the starts of two requests to that host. Lanes of all hosts share one thread pool, so a
worker overlaps the latency of many hosts while no host sees more than its limit.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


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

    def set_interval(self, interval: float) -> None:
        with self._lock:
            self._interval = max(self._interval, interval)

    def wait_turn(self) -> None:
        """Block until this caller may start a request to the host."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start)
            self._next_start = start + self._interval
        if start > now:
            self._sleep(start - now)


class HostLanes:
    """A shared thread pool that works off each host's items in at most `per_host` lanes."""

    def __init__(self, politeness: Politeness) -> None:
        self.politeness = politeness
        self._pool = ThreadPoolExecutor(
            max_workers=politeness.workers, thread_name_prefix="newsbeam-fetch"
        )

    def submit(self, items: Sequence[T], work: Callable[[T, HostGate], None]) -> list[Future]:
        """Start working off one host's items; `work(item, gate)` must call gate.wait_turn()
        before each request it makes (so robots.txt fetches are spaced out too)."""
        queue: deque[T] = deque(items)
        gate = HostGate(self.politeness.min_interval)
        lock = threading.Lock()

        def lane() -> None:
            while True:
                with lock:
                    if not queue:
                        return
                    item = queue.popleft()
                work(item, gate)

        lanes = min(self.politeness.per_host, len(queue))
        return [self._pool.submit(lane) for _ in range(lanes)]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
