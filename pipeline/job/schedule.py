"""`newsbeam run --every D`: the batch job on a schedule, for one machine without a streaming
runner. Each run is incremental through the state store; one line is logged per run; a run
that fails (a sink or the state store away for a while) is logged and the next one goes ahead
as planned; SIGINT or SIGTERM lets the run in progress finish, then the loop ends."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from pipeline.job.lease import StateBusyError
from pipeline.job.setup import RunFailedError
from transforms.core import summary_line

log = logging.getLogger("newsbeam.schedule")


def run_every(interval: float, run: Callable[[], dict[str, Any]]) -> int:
    """Call `run` every `interval` seconds (from the start of one run to the next; a run that
    takes longer is followed at once) until SIGINT or SIGTERM; returns the exit status of the
    last run: 0, 1 if it failed, 3 if it did not account for every feed and entry, 4 if it
    did not start because another run or stream held the state."""
    stop = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        log.warning("%s: finishing the run in progress, then stopping",
                    signal.Signals(number).name)
        stop.set()

    previous = {number: signal.signal(number, on_signal)
                for number in (signal.SIGINT, signal.SIGTERM)}
    status = 0
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                summary = run()
            except RunFailedError as error:
                log.error("%s; the next run starts as planned", error)
                status = 1
            except StateBusyError as error:
                log.warning("%s; the next run starts as planned", error)
                status = 4
            else:
                status = 0 if all(summary["accounted"].values()) else 3
                log.info("run %s: %s", summary.get("run_id", ""), summary_line(summary))
            stop.wait(wait_before_next(interval, started, time.monotonic()))
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return status


def wait_before_next(interval: float, started: float, now: float) -> float:
    """Seconds to wait, at `now`, before the run after one that started at `started`: runs
    start `interval` apart, and one that took longer is followed at once (never a burst of
    the runs it overlapped)."""
    return max(0.0, interval - (now - started))
