"""Per-host lanes in other processes: a Beam worker's fetching spread over its machine's cores.

Python runs one thread of a process at a time, and a poll that finds nothing new is mostly
Python: the request, the answer's head, the bookkeeping. A process polling ten thousand feeds
through its own lanes keeps one core busy and leaves the others idle. LaneProcesses hands each
host's work to one of a few lane processes instead, each with its own HTTP client and per-host
lanes (HostLanes), and gets each host's outcomes back when all of its work has run.

A host always goes to the same lane process (by a hash of its name), so its limits hold as in
one process: at most `per_host` requests at once, spaced by `min_interval`; the process's
concurrent requests (`workers`) are shared out among the lane processes. The start of the
host's last request comes back with its outcomes, for the caller's own lanes to space the
host's next request from (time.monotonic is the machine's, not the process's).

If a lane process dies, or cannot send a host's outcomes back, the host's work fails with
LaneProcessLost, for the caller to do itself, and the next work for its hosts starts a fresh
process; after RESTARTS of those, all work fails so. A lane process asked to stop, or whose
Beam worker is gone, exits at once: what it had not sent back is dropped.

The processes are forked by the fork server of transforms.core.isolation, and import no Beam:
the work is a function named "package.module:function", called as
`function(item, gate, client, context)` for each item in one of its host's lanes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
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

STOP_WITHIN = 5.0  # seconds a lane process asked to stop may take to exit
RESTARTS = 3  # lane processes started again after losing one, before the caller gets the work


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
    outcomes when all of it has run. It exits at once when asked to stop or when the Beam
    worker is gone: what it had not sent back is the worker's to do or to drop."""
    client = HttpClient(settings)
    lanes = HostLanes(politeness)
    sending = threading.Lock()
    functions: dict[str, Callable[..., Any]] = {}

    def send(number: int, host: str, outcomes: list[Outcome]) -> None:
        with sending:
            try:
                connection.send((number, HostOutcomes(outcomes, lanes.last_start(host))))
            except OSError:  # the Beam worker is gone; recv() sees it too
                pass
            except Exception as error:  # noqa: BLE001  (an answer that would not pickle)
                # Said, so that the worker does the work itself rather than wait forever.
                with contextlib.suppress(Exception):
                    connection.send((number, f"{type(error).__name__}: {error}"))

    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            break
        if message is None:
            break
        number, host, target, items, context = message
        function = functions.get(target) or functions.setdefault(target, resolve(target))
        # What an item's work leaves if it never ran to an outcome (a BaseException in it).
        outcomes = [Outcome(None, RuntimeError("its work in the lane process did not end"))
                    ] * len(items)

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
            return lambda _: send(number, host, outcomes)

        done = lanes.submit_all(host, [work(index, item) for index, item in enumerate(items)])
        done.add_done_callback(sent(number, host, outcomes))
    # Not lanes.shutdown(): its lanes would poll their hosts' queues to the end for nobody.
    os._exit(0)


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
                if self._connection.closed:
                    raise OSError("the pipe to the lane process is closed")
                self._connection.send((number, host, target, items, context))
        except Exception:  # noqa: BLE001  (it died, or the work would not pickle)
            self.kill()  # its reader sees the pipe close and fails what is pending
        return future

    def _read(self) -> None:
        """The reader thread's loop, until the process's end of the pipe closes: only then,
        and under the sending lock, is this end closed (never while another thread uses it)."""
        try:
            while True:
                number, answer = self._connection.recv()
                with self._lock:
                    future = self._pending.pop(number)
                if isinstance(answer, str):  # it could not send the work back
                    future.set_exception(LaneProcessLost(
                        f"the lane process could not send the work back: {answer}"))
                else:
                    future.set_result(answer)
        except Exception:  # noqa: BLE001  (EOF, a broken pipe, an answer that did not unpickle)
            pass
        with self._lock:
            self.alive = False
            lost = list(self._pending.values())
            self._pending.clear()
        self.kill()  # if it is still there: it sent what could not be read
        self._process.join(timeout=STOP_WITHIN)
        with self._sending:
            self._connection.close()
        for future in lost:
            future.set_exception(LaneProcessLost(
                f"the lane process exited (code {self._process.exitcode}) before the work"
                " came back"))

    def ask_to_stop(self) -> None:
        """Ask the process to exit (at once: what it has not sent back is dropped)."""
        with self._sending, contextlib.suppress(Exception):
            if not self._connection.closed:
                self._connection.send(None)

    def stop(self) -> None:
        """Ask the process to exit; kill it if it has not within STOP_WITHIN seconds."""
        self.ask_to_stop()
        self._process.join(timeout=STOP_WITHIN)
        self.kill()

    def kill(self) -> None:
        # Only while it runs: the pid of a process reaped long ago may be another's by now.
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
        # The worker process's concurrent requests (`workers`), shared out among them.
        self._politeness = dataclasses.replace(
            politeness, workers=max(1, politeness.workers // processes))
        self._targets = targets
        self._slots: list[_LaneProcess | None] = [None] * processes
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._restarts = 0
        weakref.finalize(self, _stop_all, self._slots)

    def submit_all(self, host: str, target: str, items: list[Any],
                   context: Any = None) -> Future[HostOutcomes]:
        """Run `target`'s function on each of `items` in `host`'s lanes, in the host's lane
        process; a future of the outcomes (LaneProcessLost if the process died first)."""
        if target not in self._targets:
            raise ValueError(f"{target!r} is not one of these lane processes' targets")
        try:
            process = self._started(zlib.crc32(host.encode("utf-8")) % len(self._slots))
        except (OSError, EOFError, LaneProcessLost) as error:  # the caller does the work
            lost: Future[HostOutcomes] = Future()
            lost.set_exception(error if isinstance(error, LaneProcessLost) else
                               LaneProcessLost(f"no lane process could start: {error}"))
            return lost
        return process.submit(next(self._numbers), host, target, items, context)

    def warm_up(self) -> None:
        """Start the lane processes now, in the background (while the caller does other
        work), so the first hosts' work does not wait for them."""
        def start_all() -> None:
            for slot in range(len(self._slots)):
                with contextlib.suppress(OSError, EOFError, LaneProcessLost):
                    self._started(slot)  # else submit_all tries again

        threading.Thread(target=start_all, name="newsbeam-lane-processes-start",
                         daemon=True).start()

    def _started(self, slot: int) -> _LaneProcess:
        """The slot's lane process, started if it has none or its last one exited."""
        with self._lock:
            process = self._slots[slot]
            if process is None or not process.alive:
                if process is not None:
                    self._restarts += 1
                if self._restarts > RESTARTS:  # they die as they start: the caller's lanes
                    raise LaneProcessLost(f"{self._restarts} lane processes were lost")
                process = self._slots[slot] = _LaneProcess(self._settings, self._politeness)
            return process

    def pids(self) -> list[int]:
        """Process ids of the live lane processes (for tests and monitoring)."""
        with self._lock:
            return [p.pid for p in self._slots if p is not None and p.alive and p.pid]

    def close(self) -> None:
        _stop_all(self._slots)


def _stop_all(slots: list[_LaneProcess | None]) -> None:
    running = [process for process in slots if process is not None]
    for process in running:  # all asked first: they exit side by side
        process.ask_to_stop()
    for process in running:
        process.stop()
