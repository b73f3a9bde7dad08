"""One run at a time on a state: the lease a run or a stream holds on its `--state` while it
works.

The lease is per state, not per feeds file: runs on one state share its seen ids, its feed
validators and the recovery of unfinished runs (which rolls back what an unfinished run left in
`--out`), so two runs on one state with different feeds files would still undo or repeat each
other's work.

The launching process holds it, in a way that ends with the process, so a holder killed with
SIGKILL never blocks the next run: an OS lock on a file beside an SQLite state (`fcntl.flock`,
released by the kernel when the process dies), a session-level advisory lock for a PostgreSQL
state (released by the server when the connection drops). Who holds it is written where a
second run can read it: into the lock file, and as the lease connection's application_name,
which PostgreSQL shows in pg_stat_activity.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from transforms.core import SecretError, format_utc, redact, with_secret_password
from transforms.state import (
    StateError,
    check_state_uri,
    is_local,
    postgres_state,
    sqlite_path,
)

RETRY_EVERY = 0.5  # seconds between two tries while --wait lasts
POSTGRES_NAME_LIMIT = 63  # application_name is cut to NAMEDATALEN - 1 bytes


class StateBusyError(Exception):
    """Another run or stream holds the lease on the state; the message names the holder."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: the command, where it runs, since when."""

    command: str
    host: str
    pid: int
    since: str

    def __str__(self) -> str:
        return f"newsbeam {self.command} (pid {self.pid} on {self.host}, since {self.since})"


def this_process(command: str) -> Holder:
    """The holder this process would be, for `command` (run, stream)."""
    return Holder(command, socket.gethostname(), os.getpid(), format_utc(datetime.now(UTC)))


@contextlib.contextmanager
def state_lease(state_uri: str, command: str, wait: float = 0.0) -> Iterator[Holder]:
    """Hold the lease on `state_uri` for the body of the `with`; if another process holds it,
    try again for up to `wait` seconds, then raise StateBusyError naming the holder."""
    lease: _SqliteLease | _PostgresLease
    if is_local(check_state_uri(state_uri)):
        lease = _SqliteLease(sqlite_path(state_uri))
    else:
        lease = _PostgresLease(state_uri)
    deadline = time.monotonic() + wait
    try:
        # Named afresh at each try, so "since" is when the lease was taken, not asked for.
        while not lease.try_take(holder := this_process(command)):
            if time.monotonic() >= deadline:
                held_by = lease.holder()
                raise StateBusyError(
                    f"the state {redact(state_uri)} is held by"
                    f" {held_by or 'another newsbeam run or stream'};"
                    f" not started{' after waiting' if wait else ''}"
                    " (--wait DURATION waits for it)")
            time.sleep(min(RETRY_EVERY, max(0.0, deadline - time.monotonic())))
        yield holder
    finally:
        lease.release()


def holding_lease(
    state_uri: str | None, command: str, wait: float | None
) -> contextlib.AbstractContextManager[Holder | None]:
    """The lease on `state_uri` (state_lease), or nothing to hold for a run without state."""
    if state_uri is None:
        return contextlib.nullcontext()
    return state_lease(state_uri, command, wait or 0.0)


class _SqliteLease:
    """An exclusive flock on `<state file>.lock`, which also says who holds it."""

    def __init__(self, state_file: Path) -> None:
        self._path = state_file.with_name(state_file.name + ".lock")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateError(f"cannot open the lock file {self._path}: {exc.strerror}") from None
        self._held = False

    def try_take(self, holder: Holder) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._held = True
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(holder.__dict__).encode(), 0)
        return True

    def holder(self) -> Holder | None:
        # The holder writes its name just after taking the lock: an empty or half-written file
        # means it is doing so right now.
        for _ in range(5):
            with contextlib.suppress(OSError, ValueError, TypeError):
                return Holder(**json.loads(self._path.read_bytes()))
            time.sleep(0.05)
        return None

    def release(self) -> None:
        if self._held:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


class _PostgresLease:
    """A session-level advisory lock, on a connection of its own kept for the lease; its
    application_name says who holds it."""

    def __init__(self, uri: str) -> None:
        import psycopg

        self._conninfo, prefix = postgres_state(uri)
        self._key = lease_key(prefix)
        self._uri = uri
        self._db: Any = None
        self._psycopg = psycopg

    def try_take(self, holder: Holder) -> bool:
        try:
            if self._db is None:
                self._db = self._psycopg.connect(
                    with_secret_password(self._conninfo), connect_timeout=10, autocommit=True,
                    application_name="newsbeam waiting for its state")
            row = self._db.execute("SELECT pg_try_advisory_lock(%s, %s)", self._key).fetchone()
            if row and row[0]:
                # Named once held, and left idle from then on: pg_stat_activity's
                # state_change is when the lease was taken.
                self._db.execute("SELECT set_config('application_name', %s, false)",
                                 (application_name(holder),))
                return True
        except (self._psycopg.Error, SecretError) as exc:
            raise StateError(f"cannot use state database {redact(self._uri)}: "
                             f"{str(exc).strip().splitlines()[0]}") from exc
        return False

    def holder(self) -> Holder | str | None:
        if self._db is None:
            return None
        row = self._db.execute(
            "SELECT a.application_name, a.state_change FROM pg_locks l"
            " JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %s"
            " AND l.objid::bigint = %s AND l.objsubid = 2",
            [key & 0xFFFFFFFF for key in self._key]).fetchone()  # oids are unsigned
        if row is None:
            return None
        return holder_from_name(row[0] or "", row[1])

    def release(self) -> None:
        if self._db is not None:
            self._db.close()  # the session ends, and its advisory lock with it


def lease_key(table_prefix: str) -> tuple[int, int]:
    """The two 32-bit keys of a state's advisory lock: one state per database and table
    prefix."""
    digest = hashlib.sha256(f"newsbeam state lease {table_prefix}".encode()).digest()
    return (int.from_bytes(digest[:4], "big", signed=True),
            int.from_bytes(digest[4:8], "big", signed=True))


def application_name(holder: Holder) -> str:
    """The lease connection's application_name: `newsbeam <command> <pid>@<host>`."""
    name = f"newsbeam {holder.command} {holder.pid}@{holder.host}"
    return name.encode()[:POSTGRES_NAME_LIMIT].decode(errors="ignore")


def holder_from_name(name: str, since: datetime | None) -> Holder | str:
    """The holder a lease connection's application_name and start stand for."""
    words = name.split(" ")
    if len(words) == 3 and words[0] == "newsbeam" and "@" in words[2]:
        pid, host = words[2].split("@", 1)
        if pid.isdigit():
            return Holder(words[1], host, int(pid), format_utc(since) if since else "?")
    return f"a PostgreSQL session named {name!r}" if name else "another PostgreSQL session"
