"""Work in worker processes: a time limit per task, flat memory, every core.

The CPU-bound work of a run (parsing feeds, extracting articles) is done in worker processes,
one task at a time each. A task that takes longer than the limit gets its process killed and
replaced (a pathological feed or page cannot stall the pipeline), and every process is
replaced after a number of tasks, so whatever the parsers leak is given back. With one process
per core, that work runs on all of them at once while the Beam worker that feeds them only
waits on pipes and sockets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import multiprocessing
import multiprocessing.forkserver
import os
import pickle
import sys
import threading
import traceback
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

# "forkserver": the Beam worker that owns the pool runs threads, which a plainly forked child
# would copy in whatever state they were. A fork server is a clean single-threaded process that
# imports the workers' modules (feed parsing, extraction) once and forks each worker from
# itself, so replacing a killed or recycled worker takes milliseconds instead of a fresh
# interpreter's second of imports.
_CONTEXT = multiprocessing.get_context("forkserver")


@dataclasses.dataclass(frozen=True)
class IsolationSettings:
    """How work is isolated: processes, time limit per task, tasks per process."""

    processes: int = 0  # 0: one per core
    # Seconds for one task (a feed's parsing, a page's extraction), then the process is killed.
    timeout: float = 30.0
    recycle_after: int = 500  # tasks a process handles before a fresh one replaces it

    @property
    def process_count(self) -> int:
        return self.processes or os.cpu_count() or 1


DEFAULT_ISOLATION = IsolationSettings()


class TaskTimeout(Exception):  # noqa: N818  (a verdict on the input, like a dead letter)
    """The task ran past the time limit; its process was killed."""


class WorkerCrashed(Exception):  # noqa: N818
    """The worker process died while working on the task (out of memory, a native crash)."""


class _WorkerGone(Exception):  # noqa: N818
    """The worker process had died before it was given the task (killed while idle)."""


STARTUP_TIMEOUT = 120.0  # a spawned worker imports its targets' modules before it is ready


def resolve(target: str) -> Callable[[Any], Any]:
    """The function a "package.module:function" target names (imported here)."""
    module, _, name = target.partition(":")
    function: Callable[[Any], Any] = getattr(importlib.import_module(module), name)
    return function


def _serve(connection: Connection, targets: tuple[str, ...]) -> None:
    """The worker process: run each task received, (target, argument), through the target's
    function; send back the outcome."""
    functions = {target: resolve(target) for target in targets}
    connection.send(("ready", None))  # imports are done: time limits start counting now
    while True:
        try:
            target, argument = connection.recv()
        except EOFError:
            return
        try:
            connection.send(("ok", functions[target](argument)))
        except Exception as error:  # sent back and raised in the parent, with its type
            # The traceback goes along as text: it is what whoever fixes the cause needs, and
            # the parent's own shows only where it waited.
            connection.send(("error", (portable(error), traceback.format_exc())))


def portable(error: Exception) -> Exception:
    """`error` if it comes back whole from a pickle (so the parent can raise it with its type),
    else a RuntimeError with its type's name and text: an exception whose __init__ wants
    arguments it does not pass on pickles but does not unpickle."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001  (whatever the pickle round trip raises)
        try:
            text = str(error)
        except Exception:  # noqa: BLE001
            text = "(its text could not be read)"
        return RuntimeError(f"{type(error).__name__}: {text}")


_STARTING = threading.Lock()  # the main module is hidden from one start at a time


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """multiprocessing makes every new worker import the parent's __main__ (by its module name,
    or from its file): for `newsbeam`, that is the whole command line and Beam, a second of
    imports per worker; for a program read from stdin or a notebook, a file that does not exist,
    which kills the fork server. Workers run a target named by its module and need none of it,
    so the main module is hidden while one starts."""
    main = sys.modules.get("__main__")
    with _STARTING:
        if main is None:
            yield
            return
        hidden = {name: main.__dict__.pop(name) for name in ("__file__",)
                  if name in main.__dict__}
        spec = getattr(main, "__spec__", None)
        main.__spec__ = None
        try:
            yield
        finally:
            main.__spec__ = spec
            main.__dict__.update(hidden)


_PRELOADED: list[str] = []


def preload(modules: Iterable[str]) -> None:
    """Have the fork server import `modules` as it starts (once per process, for the first
    worker process of any kind), so that every process forked from it has them already."""
    _PRELOADED.extend(module for module in modules if module not in _PRELOADED)
    _CONTEXT.set_forkserver_preload(list(_PRELOADED))


def ensure_fork_server() -> None:
    """Start the fork server now rather than with the first process it forks: it imports what
    was preloaded (see `preload`) in its own process while this one goes on."""
    with _main_module_hidden():
        multiprocessing.forkserver.ensure_running()


def pipe() -> tuple[Connection, Connection]:
    """Both ends of a pipe to a process from `start_process`."""
    return _CONTEXT.Pipe()


def start_process(target: Callable[..., None], *args: Any) -> BaseProcess:
    """A daemon process running `target(*args)`, forked by the fork server (see _CONTEXT)."""
    process = _CONTEXT.Process(target=target, args=args, daemon=True)
    with _main_module_hidden():
        process.start()
    return process


class _Worker:
    """One worker process and the pipe to it."""

    def __init__(self, targets: tuple[str, ...]) -> None:
        self._parent, child = pipe()
        self._process = start_process(_serve, child, targets)
        child.close()
        self.tasks = 0
        if not self._parent.poll(STARTUP_TIMEOUT):
            self.kill()
            raise WorkerCrashed(f"worker process not ready within {STARTUP_TIMEOUT:g}s")
        try:
            self._parent.recv()
        except EOFError:
            self.kill()
            raise WorkerCrashed(
                f"worker process exited with code {self._process.exitcode} on start") from None

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def run(self, target: str, argument: Any, timeout: float) -> Any:
        self.tasks += 1
        try:
            self._parent.send((target, argument))
        except (BrokenPipeError, ConnectionResetError):
            self.kill()
            raise _WorkerGone(f"exit code {self._process.exitcode}") from None
        if not self._parent.poll(timeout):
            self.kill()
            raise TaskTimeout(f"no result within {timeout:g}s")
        try:
            kind, payload = self._parent.recv()
        except EOFError:
            self.kill()
            raise WorkerCrashed(
                f"worker process exited with code {self._process.exitcode}") from None
        if kind == "error":
            error, where = payload
            error.add_note(f"in the worker process:\n{where}")
            raise error
        return payload

    def kill(self) -> None:
        # Not once it has exited: the fork server reaps its children, and the pid of a worker
        # that died long ago may be another process's by now.
        if self._process.exitcode is None:
            self._process.kill()
        self._process.join(timeout=5)
        self._parent.close()

    def stop(self) -> None:
        self._parent.close()  # the worker sees EOF and returns
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()


class ProcessPool:
    """Runs functions on tasks in worker processes, each task with a time limit.

    The functions are named by their `targets`, "package.module:function", and imported only
    in the workers (the process that feeds them needs none of the parsing and extraction
    stack). `submit(target, argument)` returns a Future; a task past its limit fails with
    TaskTimeout, one whose worker died with WorkerCrashed, and the worker is replaced in both
    cases. The workers are stopped when the pool is closed or let go of.
    """

    def __init__(self, targets: tuple[str, ...], settings: IsolationSettings) -> None:
        preload(target.partition(":")[0] for target in targets)
        self._targets = targets
        self._settings = settings
        self._local = threading.local()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        # One thread per worker process: each thread owns its process and waits on its pipe.
        self._threads = ThreadPoolExecutor(
            max_workers=settings.process_count, thread_name_prefix="newsbeam-isolated"
        )
        # When the last holder lets go of the pool (possibly on one of its own threads, which
        # must not wait for itself), its threads are told to stop and its workers are stopped.
        weakref.finalize(self, _shut_down, self._threads, self._workers, self._lock, False)

    @property
    def size(self) -> int:
        return self._settings.process_count

    def submit(self, target: str, argument: Any) -> Future:
        """Run `target`'s function on `argument` in a worker process; its outcome, later."""
        if target not in self._targets:
            raise ValueError(f"{target!r} is not one of this pool's targets")
        return self._threads.submit(self._run, target, argument)

    def warm_up(self) -> None:
        """Start every worker process now, in the background, so the first tasks do not wait
        for them (call while other work, such as fetching, is under way)."""
        for _ in range(self.size):
            self._threads.submit(self._ensure_worker)

    def _ensure_worker(self) -> None:
        if getattr(self._local, "worker", None) is None:
            self._local.worker = self._start_worker()

    def _run(self, target: str, argument: Any) -> Any:
        worker: _Worker | None = getattr(self._local, "worker", None)
        if worker is None or worker.tasks >= self._settings.recycle_after:
            if worker is not None:
                worker.stop()
                self._forget(worker)
            worker = self._local.worker = self._start_worker()
        try:
            try:
                return worker.run(target, argument, self._settings.timeout)
            except _WorkerGone:
                # It died between tasks; the task itself never started: a fresh process
                # takes it, once.
                self._forget(worker)
                worker = self._local.worker = self._start_worker()
                try:
                    return worker.run(target, argument, self._settings.timeout)
                except _WorkerGone as gone:
                    raise WorkerCrashed(f"worker process exited before its task ({gone})"
                                        ) from None
        except (TaskTimeout, WorkerCrashed):
            self._forget(worker)
            self._local.worker = None  # killed: the next task gets a fresh process
            raise

    def _start_worker(self) -> _Worker:
        worker = _Worker(self._targets)
        with self._lock:
            self._workers.append(worker)
        return worker

    def _forget(self, worker: _Worker) -> None:
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)

    def pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring)."""
        with self._lock:
            return [w.pid for w in self._workers if w.pid is not None]

    def close(self) -> None:
        _shut_down(self._threads, self._workers, self._lock, True)


def _shut_down(threads: ThreadPoolExecutor, workers: list[_Worker], lock: threading.Lock,
               wait: bool) -> None:
    threads.shutdown(wait=wait, cancel_futures=True)
    with lock:
        stopping = list(workers)
        workers.clear()
    for worker in stopping:
        worker.stop()
