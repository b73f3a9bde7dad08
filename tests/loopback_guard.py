"""The loopback-only network guard: sockets, name lookups and PostgreSQL connections may reach
loopback addresses only. The test process installs it (tests/conftest.py), and so does every
Python process a test starts with tests/subprocess_guard on its PYTHONPATH (Airflow, a task
it runs), through that folder's sitecustomize."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any


class NetworkGuardError(RuntimeError):
    """Something tried to reach an address other than loopback."""


def is_loopback_host(host: object) -> bool:
    """Whether a host (a name, an address, bytes or None) is this machine's loopback."""
    if host is None or host == "localhost":
        return True
    if isinstance(host, bytes):
        host = host.decode()
    try:
        return ipaddress.ip_address(str(host).strip("[]").split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def install(record: Callable[[str], None]) -> Callable[[], None]:
    """Guard this process: each refused attempt is passed to `record`, then raises
    NetworkGuardError. Returns what undoes it."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo
    undo: list[Callable[[], None]] = []

    def refuse(what: str) -> None:
        record(what)
        raise NetworkGuardError(f"tests may only reach loopback addresses; refused {what}")

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback_host(address[0]):
            refuse(f"connect to {address!r}")
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback_host(address[0]):
            refuse(f"connect_ex to {address!r}")
        return real_connect_ex(self, address)

    def getaddrinfo(host: object, *args: Any, **kwargs: Any) -> Any:
        # Resolving a public name would itself send a DNS query off this machine.
        if not is_loopback_host(host):
            refuse(f"name resolution of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
    undo.append(lambda: setattr(socket.socket, "connect", real_connect))
    undo.append(lambda: setattr(socket.socket, "connect_ex", real_connect_ex))
    undo.append(lambda: setattr(socket, "getaddrinfo", real_getaddrinfo))
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # a process without the PostgreSQL client (Airflow's own)
        return lambda: [step() for step in undo] and None
    real_pg_connect = psycopg.connect

    def pg_connect(conninfo: str = "", **kwargs: Any) -> Any:
        # libpq opens its sockets in C, past the socket guard: its hosts are checked here.
        params = conninfo_to_dict(conninfo, **kwargs)
        for key in ("host", "hostaddr"):
            for host in str(params.get(key) or "").split(","):
                if host and not host.startswith("/") and not is_loopback_host(host):
                    refuse(f"PostgreSQL connection to {host!r}")
        return real_pg_connect(conninfo, **kwargs)

    psycopg.connect = pg_connect  # type: ignore[assignment]
    undo.append(lambda: setattr(psycopg, "connect", real_pg_connect))
    return lambda: [step() for step in undo] and None
