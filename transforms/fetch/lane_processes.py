"""Per-host lanes in other processes: a Beam worker's fetching spread over its machine's cores.

Python runs one thread of a process at a time, and a poll that finds nothing new is mostly
Python: the request, the answer's head, the bookkeeping. A process polling ten thousand feeds
through its own lanes keeps one core busy and leaves the others idle. LaneProcesses hands each
host's work to one of a few lane processes instead, each with its own HTTP client and per-host
lanes (HostLanes), and gets each host's outcomes back when all of its work has run.

A host always goes to the same lane process (by a hash of its name), so its limits hold as in
one process: at most `per_host` requests at once, spaced by `min_interval`. The start of the
host's last request comes back with its outcomes, for the caller's own lanes to space the
host's next request from (time.monotonic is the machine's, not the process's). If a lane
process dies, the work it had is failed with LaneProcessLost, for the caller to do itself, and
the next work for its hosts starts a fresh one.

The processes are forked by the fork server of transforms.core.isolation, and import no Beam:
the work is a function named "package.module:function", called as
`function(item, gate, client, context)` for each item in one of its host's lanes.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import traceback
import weakref
import zlib
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, NamedTuple

from transforms.core import pipe, portable, preload, prepare_fork_server, resolve, start_process
from transforms.fetch.http import HttpClient, HttpSettings
from transforms.fetch.polite import HostGate, HostLanes, Politeness

STOP_WITHIN = 30.0  # seconds a lane process stopped may take to finish the work it has


class LaneProcessLost(Exception):  # noqa: N818  (not an error of the work: do it elsewhere)
    """The lane process died (killed, out of memory) before the host's work came back."""


class Outcome(NamedTuple):
    """What one item's work came to: its value, or the error it raised (with the lane
    process's traceback, as text)."""

    value: Any = None
    error: Exception | None = None
    where: str = ""

    def result(self) -> Any:
        """The value, or the error raised here, noted with where it was raised."""
        if self.error is not None:
            self.error.add_note(f"in the lane process:\n{self.where}")
            raise self.error
        return self.value


class HostOutcomes(NamedTuple):
    """A host's work, come back: each item's outcome, in order, and when the host's last
    request started (time.monotonic; None where its requests are not spaced)."""

    outcomes: list[Outcome]
    last_start: float | None


def _serve(connection: Connection, settings: HttpSettings, politeness: Politeness) -> None:
    """A lane process: run each host's work received in the host's lanes; send back its
    outcomes when all of it has run."""
    client = HttpClient(settings)
    lanes = HostLanes(politeness)
    sending = threading.Lock()
    functions: dict[str, Callable[..., Any]] = {}

    def send(message: tuple[int, HostOutcomes]) -> None:
        # OSError: the Beam worker is gone; recv() sees it too, and the loop ends.
        with sending, contextlib.suppress(OSError):
            connection.send(message)

    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            break
        if message is None:  # asked to stop: the work it has is finished first
            break
        number, host, target, items, context = message
        function = functions.get(target) or functions.setdefault(target, resolve(target))
        outcomes: list[Outcome] = [Outcome()] * len(items)

        def work(index: int, item: Any, function: Callable[..., Any] = function,
                 outcomes: list[Outcome] = outcomes,
                 context: Any = context) -> Callable[[HostGate], None]:
            def run(gate: HostGate) -> None:
                try:
                    outcomes[index] = Outcome(function(item, gate, client, context))
                except Exception as error:  # the caller's to deal with, as if raised there
                    outcomes[index] = Outcome(None, portable(error), traceback.format_exc())
            return run

        def sent(number: int, host: str, outcomes: list[Outcome]) -> Callable[[Any], None]:
            return lambda _: send((number, HostOutcomes(outcomes, lanes.last_start(host))))

        done = lanes.submit_all(host, [work(index, item) for index, item in enumerate(items)])
        done.add_done_callback(sent(number, host, outcomes))
    lanes.shutdown()
    client.close()


class _LaneProcess:
    """One lane process, the pipe to it, and the work it has not sent back yet."""

    def __init__(self, settings: HttpSettings, politeness: Politeness) -> None:
        self._connection, child = pipe()
        self._process: BaseProcess = start_process(_serve, child, settings, politeness)
        child.close()
        self._lock = threading.Lock()
        self._sending = threading.Lock()
        self._pending: dict[int, Future[HostOutcomes]] = {}
        self.alive = True
        threading.Thread(target=self._read, name="newsbeam-lane-process", daemon=True).start()

    def submit(self, number: int, host: str, target: str, items: list[Any],
               context: Any) -> Future[HostOutcomes]:
        future: Future[HostOutcomes] = Future()
        with self._lock:
            if not self.alive:
                future.set_exception(LaneProcessLost("the lane process has exited"))
                return future
            self._pending[number] = future
        try:
            with self._sending:  # not under self._lock: a long send must not hold up reading
                self._connection.send((number, host, target, items, context))
        except (OSError, ValueError):  # it died, or is dying: its reader fails the future
            self._process.kill()
        return future

    def _read(self) -> None:
        """The reader thread's loop, until the process's end of the pipe closes: it alone
        closes this end, once no more can come (so no other thread closes what it reads)."""
        try:
            while True:
                number, outcomes = self._connection.recv()
                with self._lock:
                    future = self._pending.pop(number)
                future.set_result(outcomes)
        except Exception:  # noqa: BLE001  (EOF, a broken pipe, an answer that did not unpickle)
            pass
        with self._lock:
            self.alive = False
            lost = list(self._pending.values())
            self._pending.clear()
        self._process.kill()  # if it is still there: it sent what could not be read
        self._process.join(timeout=5)
        self._connection.close()
        for future in lost:
            future.set_exception(LaneProcessLost(
                f"the lane process exited (code {self._process.exitcode}) before the work"
                " came back"))

    def stop(self) -> None:
        """Ask the process to finish the work it has and exit; kill it if it has not within
        STOP_WITHIN seconds. What it did not send back fails with LaneProcessLost."""
        try:
            with self._sending:
                self._connection.send(None)
        except (OSError, ValueError):
            pass
        self._process.join(timeout=STOP_WITHIN)
        if self._process.exitcode is None:
            self._process.kill()

    @property
    def pid(self) -> int | None:
        return self._process.pid


class LaneProcesses:
    """`processes` lane processes, started as work comes for them; see the module's doc."""

    def __init__(self, settings: HttpSettings, politeness: Politeness, processes: int,
                 targets: tuple[str, ...]) -> None:
        if processes < 1:
            raise ValueError(f"LaneProcesses needs at least one process, not {processes}")
        # The fork server imports what the lane processes run as it starts (and what the
        # worker processes run, if the lane processes start it).
        prepare_fork_server()
        preload([__name__, *(target.partition(":")[0] for target in targets)])
        self._settings = settings
        self._politeness = politeness
        self._targets = targets
        self._slots: list[_LaneProcess | None] = [None] * processes
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        weakref.finalize(self, _stop_all, self._slots)

    def submit_all(self, host: str, target: str, items: list[Any],
                   context: Any = None) -> Future[HostOutcomes]:
        """Run `target`'s function on each of `items` in `host`'s lanes, in the host's lane
        process; a future of the outcomes (LaneProcessLost if the process died first)."""
        if target not in self._targets:
            raise ValueError(f"{target!r} is not one of these lane processes' targets")
        try:
            process = self._started(zlib.crc32(host.encode("utf-8")) % len(self._slots))
        except (OSError, EOFError) as error:  # no process to be had: the caller does the work
            lost: Future[HostOutcomes] = Future()
            lost.set_exception(LaneProcessLost(f"no lane process could start: {error}"))
            return lost
        return process.submit(next(self._numbers), host, target, items, context)

    def warm_up(self) -> None:
        """Start the lane processes now, in the background (while the caller does other
        work), so the first hosts' work does not wait for them."""
        def start_all() -> None:
            for slot in range(len(self._slots)):
                with contextlib.suppress(OSError, EOFError):  # submit_all tries again
                    self._started(slot)

        threading.Thread(target=start_all, name="newsbeam-lane-processes-start",
                         daemon=True).start()

    def _started(self, slot: int) -> _LaneProcess:
        """The slot's lane process, started if it has none or its last one exited."""
        with self._lock:
            process = self._slots[slot]
            if process is None or not process.alive:
                process = self._slots[slot] = _LaneProcess(self._settings, self._politeness)
            return process

    def pids(self) -> list[int]:
        """Process ids of the live lane processes (for tests and monitoring)."""
        with self._lock:
            return [p.pid for p in self._slots if p is not None and p.alive and p.pid]

    def close(self) -> None:
        _stop_all(self._slots)


def _stop_all(slots: list[_LaneProcess | None]) -> None:
    for process in slots:
        if process is not None:
            process.stop()
