"""Test and benchmark helpers around the loopback server: latency and a concurrency meter."""

from __future__ import annotations

import contextlib
import threading
import time

from pipeline.loopback import Handler, RequestHandler, Route


class ConcurrencyMeter:
    """Counts requests in progress on one server: the most at once, and when each started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = 0
        self.peak = 0
        self.starts: list[float] = []

    def __enter__(self) -> ConcurrencyMeter:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
            self.starts.append(time.monotonic())
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self.current -= 1


def delayed(route: Route, delay: float, meter: ConcurrencyMeter | None = None) -> Handler:
    """A handler that answers `route` after `delay` seconds (latency), measured by `meter`."""

    def handle(handler: RequestHandler) -> None:
        with meter or contextlib.nullcontext():
            time.sleep(delay)
            handler.send_route(route)

    return handle
