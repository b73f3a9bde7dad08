"""Per-host lanes in other processes: a Beam worker's fetching spread over its machine's cores.

Python runs one thread of a process at a time, and a poll that finds nothing new is mostly
Python: the request, the answer's head, the bookkeeping. A process polling ten thousand feeds
through its own lanes keeps one core busy and leaves the others idle. LaneProcesses hands each
host's work to one of a few lane processes instead, each with its own HTTP client and per-host
lanes (HostLanes). Each item's outcome comes back as soon as it is there (those of a few
milliseconds in one message), so the caller hands on what is polled while polling goes on,
and neither process holds a large host's answers all at once.

A host always goes to the same lane process, so its limits hold as in one process: at most
`per_host` requests at once, spaced by `min_interval`. The process's concurrent requests
(`workers`) are shared out among the lane processes, so a new host goes to the one with the least
work outstanding (a hash of host names would leave one lane process with more hosts than its
share of the requests can keep up with while the others finish early). The start of the host's
last request comes back with its outcomes, for the caller's own lanes to space the host's next
request from (time.monotonic is the machine's, not the process's).

If a lane process dies, the host's work fails with LaneProcessLost; the items whose outcomes
had not come back are the caller's to do, and the next work for its hosts starts a fresh
process; after RESTARTS of those, all work fails so. An outcome that cannot be sent back (it
does not pickle) is named in the host's HostDone, for the caller to do too. A lane process
asked to stop, or whose Beam worker is gone, exits at once: what it had not sent back is
dropped.

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
import time
import traceback
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import Any, NamedTuple

from transforms.core import pipe, portable, preload, prepare_fork_server, resolve, start_process
from transforms.fetch.http import HttpClient, HttpSettings
from transforms.fetch.polite import HostGate, HostLanes, Politeness

STOP_WITHIN = 5.0  # seconds a lane process asked to stop may take to exit
RESTARTS = 3  # lane processes started again after losing one, before the caller gets the work
# Seconds a lane process gathers outcomes for before sending them in one message: a message
# per outcome would cost more than a 304's poll.
GATHER_FOR = 0.01


class LaneProcessLost(Exception):  # noqa: N818  (not an error of the work: do it elsewhere)
    """The lane process died (killed, out of memory) before all of the host's work came back."""


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


class HostDone(NamedTuple):
    """A host's work, all come back: when the host's last request started (time.monotonic;
    None where its requests are not spaced), and the items whose outcome could not be sent
    back (the caller's to do)."""

    last_start: float | None
    unsent: tuple[int, ...] = ()


# What a lane process sends back, in lists: (work number, item index, its Outcome or why it
# could not be sent, None), and once all a work's items have come back (work number, None,
# None, the host's last start).
_Entry = tuple[int, int | None, "Outcome | str | None", float | None]


class _Outbox:
    """A lane process's outcomes on their way back: gathered for GATHER_FOR seconds, then sent
    in one message by a thread of its own."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []
        self._ready = threading.Event()
        threading.Thread(target=self._send_all, name="newsbeam-outbox", daemon=True).start()

    def put(self, entry: _Entry) -> None:
        with self._lock:
            self._entries.append(entry)
        self._ready.set()

    def _send_all(self) -> None:
        try:
            while True:
                self._ready.wait()
                time.sleep(GATHER_FOR)
                with self._lock:
                    entries, self._entries = self._entries, []
                    self._ready.clear()
                self._send(entries)
        finally:
            # The Beam worker is gone (a send failed), or this thread failed: without it the
            # process would take work and never answer. Its worker sees it exit, and does
            # itself what had not come back.
            os._exit(1)

    def _send(self, entries: list[_Entry]) -> None:
        """Send the entries in one message; one that does not pickle is said instead (for
        the worker to do its item itself), the others sent one by one. Only sending raises."""
        try:
            message = ForkingPickler.dumps(entries)
        except Exception:  # noqa: BLE001  (an outcome that would not pickle)
            for entry in entries:
                try:
                    one = ForkingPickler.dumps([entry])
                except Exception as error:  # noqa: BLE001
                    number, index, _, _ = entry
                    one = ForkingPickler.dumps(
                        [(number, index, f"{type(error).__name__}: {error}", None)])
                self._connection.send_bytes(one)
        else:
            self._connection.send_bytes(message)


def _serve(connection: Connection, settings: HttpSettings, politeness: Politeness) -> None:
    """A lane process: run each host's work received in the host's lanes, and send back each
    item's outcome as it comes. It exits at once when asked to stop or when the Beam worker is
    gone: what it had not sent back is the worker's to do or to drop."""
    client = HttpClient(settings)
    lanes = HostLanes(politeness)
    outbox = _Outbox(connection)
    functions: dict[str, Callable[..., Any]] = {}

    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            break
        if message is None:
            break
        number, host, target, items, context = message
        function = functions.get(target) or functions.setdefault(target, resolve(target))

        def work(index: int, item: Any, number: int = number,
                 function: Callable[..., Any] = function,
                 context: Any = context) -> Callable[[HostGate], None]:
            def run(gate: HostGate) -> None:
                try:
                    outcome = Outcome(function(item, gate, client, context))
                except Exception as error:  # the caller's to deal with, as if raised there
                    outcome = Outcome(None, portable(error), traceback.format_exc())
                except BaseException:  # it did not end: said, and raised on
                    outbox.put((number, index, Outcome(None, RuntimeError(
                        "its work in the lane process did not end"), traceback.format_exc()),
                        None))
                    raise
                outbox.put((number, index, outcome, None))
            return run

        def done(number: int, host: str) -> Callable[[Any], None]:
            return lambda _: outbox.put((number, None, None, lanes.last_start(host)))

        ran = lanes.submit_all(host, [work(index, item) for index, item in enumerate(items)])
        ran.add_done_callback(done(number, host))
    # Not lanes.shutdown(): its lanes would poll their hosts' queues to the end for nobody.
    os._exit(0)


class _Work:
    """A host's work given to a lane process: who hears of each outcome, who of its end
    (`ended`, before the future is done), and the future of the whole."""

    def __init__(self, on_outcome: Callable[[int, Outcome], None],
                 ended: Callable[[], None]) -> None:
        self.on_outcome = on_outcome
        self.ended = ended
        self.future: Future[HostDone] = Future()
        self.unsent: list[int] = []
        self.error: BaseException | None = None  # the caller's on_outcome raised it

    def came(self, index: int, outcome: Outcome | str) -> None:
        if isinstance(outcome, str):
            self.unsent.append(index)
        elif self.error is None:
            try:
                self.on_outcome(index, outcome)
            except BaseException as error:  # noqa: BLE001  (the caller's bug: its future fails)
                self.error = error

    def finish(self, last_start: float | None) -> None:
        self.ended()
        if self.error is not None:
            self.future.set_exception(self.error)
        else:
            self.future.set_result(HostDone(last_start, tuple(self.unsent)))

    def lose(self, message: str) -> None:
        self.ended()
        self.future.set_exception(self.error or LaneProcessLost(message))


class _LaneProcess:
    """One lane process, the pipe to it, and the work it has not sent back yet."""

    def __init__(self, settings: HttpSettings, politeness: Politeness) -> None:
        self._connection, child = pipe()
        self._process: BaseProcess = start_process(_serve, child, settings, politeness)
        child.close()
        self._lock = threading.Lock()
        self._sending = threading.Lock()
        self._pending: dict[int, _Work] = {}
        self.alive = True
        try:
            threading.Thread(target=self._read, name="newsbeam-lane-process",
                             daemon=True).start()
        except BaseException:  # no reader, no process: none could hear it
            self.kill()
            raise

    def submit(self, number: int, host: str, target: str, items: list[Any], context: Any,
               work: _Work) -> None:
        """Send the host's work to the process; `work` hears of what comes back."""
        with self._lock:
            if not self.alive:
                work.lose("the lane process has exited")
                return
            self._pending[number] = work
        try:
            with self._sending:  # not under self._lock: a long send must not hold up reading
                if self._connection.closed:
                    raise OSError("the pipe to the lane process is closed")
                self._connection.send((number, host, target, items, context))
        except Exception:  # noqa: BLE001  (it died, or the work would not pickle)
            self.kill()  # its reader sees the pipe close and fails what is pending

    def _read(self) -> None:
        """The reader thread's loop, until the process's end of the pipe closes: only then,
        and under the sending lock, is this end closed (never while another thread uses it)."""
        try:
            while True:
                for number, index, outcome, last_start in self._connection.recv():
                    with self._lock:
                        work = (self._pending[number] if index is not None
                                else self._pending.pop(number))
                    if index is None:
                        work.finish(last_start)
                    else:
                        assert outcome is not None
                        work.came(index, outcome)
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
        for work in lost:
            work.lose(f"the lane process exited (code {self._process.exitcode}) before all"
                      " of the work came back")

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
        self._homes: dict[str, int] = {}  # each host's slot, for as long as these processes
        self._outstanding = [0] * processes  # items given to each slot, not come back yet
        self._hosts = [0] * processes  # hosts at home in each slot
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._restarts = 0
        weakref.finalize(self, _stop_all, self._slots)

    def submit_all(self, host: str, target: str, items: list[Any],
                   on_outcome: Callable[[int, Outcome], None],
                   context: Any = None) -> Future[HostDone]:
        """Run `target`'s function on each of `items` in `host`'s lanes, in the host's lane
        process. `on_outcome(index, outcome)` is called (on a thread of this process's) as each
        item's outcome comes back; the future is done when all have (HostDone), or fails with
        LaneProcessLost if the process died first, or with what `on_outcome` raised."""
        if target not in self._targets:
            raise ValueError(f"{target!r} is not one of these lane processes' targets")
        slot = self._home(host, len(items))

        def came_back() -> None:
            with self._lock:
                self._outstanding[slot] -= len(items)

        work = _Work(on_outcome, came_back)
        try:
            process = self._started(slot)
        except LaneProcessLost as error:  # the caller does the work
            work.lose(str(error))
        except Exception as error:  # noqa: BLE001  (out of processes, threads, descriptors)
            work.lose(f"no lane process could start: {error}")
        else:
            process.submit(next(self._numbers), host, target, items, context, work)
        return work.future

    def _home(self, host: str, items: int) -> int:
        """The host's slot, from its first work on: the one with the fewest items outstanding
        then (of those, the one with the fewest hosts)."""
        with self._lock:
            slot = self._homes.get(host)
            if slot is None:
                slot = self._homes[host] = min(
                    range(len(self._slots)),
                    key=lambda n: (self._outstanding[n], self._hosts[n]))
                self._hosts[slot] += 1
            self._outstanding[slot] += items
            return slot

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
