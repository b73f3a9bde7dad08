"""`newsbeam run --every D`: the batch job on a schedule, for one machine without a streaming
runner. Each run is incremental through the state store; one line is logged per run; SIGINT or
SIGTERM lets the run in progress finish, then the loop ends."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from transforms.core import summary_line

log = logging.getLogger("newsbeam.schedule")


def run_every(interval: float, run: Callable[[], dict[str, Any]]) -> int:
    """Call `run` every `interval` seconds (from the start of one run to the next; a run that
    takes longer is followed at once) until SIGINT or SIGTERM; returns the exit status: 0, or 3
    if the last run did not account for every feed and entry."""
    stop = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        log.warning("%s: finishing the run in progress, then stopping",
                    signal.Signals(number).name)
        stop.set()

    previous = {number: signal.signal(number, on_signal)
                for number in (signal.SIGINT, signal.SIGTERM)}
    accounted = True
    try:
        while not stop.is_set():
            started = time.monotonic()
            summary = run()
            accounted = all(summary["accounted"].values())
            log.info("run %s: %s", summary.get("run_id", ""), summary_line(summary))
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0 if accounted else 3
