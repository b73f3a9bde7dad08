"""Shared fixtures: the loopback-only socket guard, fixture servers, corpus paths."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from pipeline.demo.loopback import LoopbackServer

# Beside the repository; NEWSBEAM_CORPUS names it for a copy of the tests run elsewhere
# (benchmarks/mutation.py runs them in mutmut's mutants/ folder).
CORPUS = Path(os.environ.get("NEWSBEAM_CORPUS")
              or Path(__file__).resolve().parents[2] / "shared" / "corpus")

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo
_violations: list[str] = []


class NetworkGuardError(RuntimeError):
    """A test tried to reach something other than loopback."""


def _is_loopback_host(host: object) -> bool:
    if host is None or host == "localhost":
        return True
    if isinstance(host, bytes):
        host = host.decode()
    try:
        return ipaddress.ip_address(str(host).strip("[]").split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str) -> None:
    _violations.append(what)
    raise NetworkGuardError(f"tests may only reach loopback addresses; refused {what}")


def _guarded_connect(self: socket.socket, address: object) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback_host(address[0]):  # type: ignore[index]
        _refuse(f"connect to {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback_host(address[0]):  # type: ignore[index]
        _refuse(f"connect_ex to {address!r}")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: object, *args: object, **kwargs: object) -> list:
    # Resolving a public name would itself send a DNS query off this machine.
    if not _is_loopback_host(host):
        _refuse(f"name resolution of {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]


_real_pg_connect = psycopg.Connection.connect


def _guarded_pg_connect(conninfo: str = "", **kwargs: Any) -> Any:
    # libpq opens its sockets in C, past the socket guard: its hosts are checked here.
    params = conninfo_to_dict(conninfo, **kwargs)
    for key in ("host", "hostaddr"):
        for host in str(params.get(key) or "").split(","):
            if host and not host.startswith("/") and not _is_loopback_host(host):
                _refuse(f"PostgreSQL connection to {host!r}")
    return _real_pg_connect(conninfo, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> Iterator[None]:
    """Every test runs with sockets, and PostgreSQL connections, that can reach loopback
    addresses only."""
    patches = pytest.MonkeyPatch()
    patches.setattr(socket.socket, "connect", _guarded_connect)
    patches.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    patches.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)
    patches.setattr(psycopg, "connect", _guarded_pg_connect)
    yield
    patches.undo()


@pytest.fixture(autouse=True)
def no_guard_violations() -> Iterator[None]:
    """Fail a test that tried to leave loopback even if the code under test swallowed the error."""
    _violations.clear()
    yield
    assert not _violations, f"non-loopback network access attempted: {_violations}"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """An empty loopback server; tests add routes to `server.routes`."""
    with LoopbackServer({}) as running:
        yield running


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (it lives beside the repository)")
    return CORPUS


# Fixtures that give a test a real server: every test that takes one is marked `services`.
SERVICE_FIXTURES = frozenset({"postgres_uri", "redis_stream", "prism"})
START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = (
    "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


def service_missing(what: str, error: Exception, start: str) -> None:
    """Skip the test, saying how to start the server; in CI (CI=true) fail it instead, so a
    missing server never lets a run pass by accident."""
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    message = (f"{what}: {reason}. Start or build it with: {start} (.ci/run does when it is"
               " missing)")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


POSTGRES_URI = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_uri(request: pytest.FixtureRequest) -> Iterator[str]:
    """A state URI on the real PostgreSQL server, with tables of its own, dropped afterwards."""
    import uuid

    import psycopg

    try:
        connection = psycopg.connect(POSTGRES_URI, connect_timeout=5, autocommit=True)
    except psycopg.OperationalError as exc:
        service_missing("PostgreSQL is not reachable at 127.0.0.1:5432 (database 'test')", exc,
                        START_POSTGRES)
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    yield f"{POSTGRES_URI}?table_prefix={prefix}"
    with connection:
        for (table,) in connection.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE %s", (prefix + "%",)
        ).fetchall():
            connection.execute(f"DROP TABLE IF EXISTS {table}")


REDIS_URI = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_stream() -> Iterator[str]:
    """A fresh stream name on the real Redis server, deleted afterwards."""
    import uuid

    import redis

    client = redis.Redis.from_url(REDIS_URI, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_missing("Redis is not reachable at 127.0.0.1:6379", exc, START_REDIS)
    name = f"newsbeam-test-{uuid.uuid4().hex[:8]}"
    yield name
    client.delete(name, f"{name}:ids")  # the stream and the ids its sink appended
    client.close()


def _prism_path() -> Path:
    from apache_beam.version import __version__ as beam_version

    given = os.environ.get("NEWSBEAM_PRISM")
    if given:
        return Path(given)
    return Path.home() / ".cache" / "newsbeam" / "prism" / f"v{beam_version}" / "prism"


@pytest.fixture(scope="session")
def prism() -> str:
    """The path of a Prism binary (Beam's portable runner, for `--prism_location`): the one
    NEWSBEAM_PRISM names, else the one .ci/services builds for the installed Beam."""
    from apache_beam.version import __version__ as beam_version

    path = _prism_path()
    if not os.access(path, os.X_OK):
        build = (f"GOBIN={path.parent} go install"
                 f" github.com/apache/beam/sdks/v2/go/cmd/prism@v{beam_version}")
        service_missing("Prism is not built", FileNotFoundError(f"no binary at {path}"), build)
    return str(path)
