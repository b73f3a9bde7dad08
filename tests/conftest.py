"""Shared fixtures: the loopback-only socket guard, fixture servers, corpus paths."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pipeline.demo.loopback import LoopbackServer
from tests.loopback_guard import install

# Beside the repository; NEWSBEAM_CORPUS names it for a copy of the tests run elsewhere
# (benchmarks/mutation.py runs them in mutmut's mutants/ folder).
CORPUS = Path(os.environ.get("NEWSBEAM_CORPUS")
              or Path(__file__).resolve().parents[2] / "shared" / "corpus")

_violations: list[str] = []
# Installs the guard in a Python process started with it on its PYTHONPATH.
SUBPROCESS_GUARD = Path(__file__).resolve().parent / "subprocess_guard"
_GUARDED_ENVIRONMENT = ("PYTHONPATH", "NEWSBEAM_GUARD_LOG")


@pytest.fixture(autouse=True, scope="session")
def loopback_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test runs with sockets, and PostgreSQL connections, that can reach loopback
    addresses only (tests/loopback_guard.py): in this process, and in every Python process a
    test starts that inherits its environment, the fork server of the worker and lane
    processes among them (tests/subprocess_guard on their PYTHONPATH). Those write what they
    refused to the log this yields."""
    undo = install(_violations.append)
    log = tmp_path_factory.mktemp("loopback-guard") / "refused.log"
    log.touch()
    saved = {name: os.environ.get(name) for name in _GUARDED_ENVIRONMENT}
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(SUBPROCESS_GUARD), saved["PYTHONPATH"]]))
    os.environ["NEWSBEAM_GUARD_LOG"] = str(log)
    yield log
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    undo()


@pytest.fixture(autouse=True)
def no_guard_violations(loopback_only: Path) -> Iterator[None]:
    """Fail a test that tried to leave loopback, here or in a process it started, even if the
    code under test swallowed the error."""
    _violations.clear()
    logged = loopback_only.stat().st_size
    yield
    with loopback_only.open(encoding="utf-8") as log:
        log.seek(logged)
        elsewhere = log.read().splitlines()
    assert not _violations and not elsewhere, (
        f"non-loopback network access attempted: {_violations + elsewhere}")


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
SERVICE_FIXTURES = frozenset({"postgres_uri", "redis_stream", "prism", "airflow", "chromium"})
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


AIRFLOW_REQUIREMENTS = (Path(__file__).resolve().parents[1] / "deploy" / "airflow"
                        / "requirements.txt")


@pytest.fixture(scope="session")
def airflow() -> str:
    """The `airflow` command of an environment with deploy/airflow/requirements.txt: the one
    NEWSBEAM_AIRFLOW names, else the one .ci/services installs for these pins."""
    import hashlib

    given = os.environ.get("NEWSBEAM_AIRFLOW")
    key = hashlib.sha256(AIRFLOW_REQUIREMENTS.read_bytes()).hexdigest()[:12]
    path = Path(given) if given else (
        Path.home() / ".cache" / "newsbeam" / "airflow" / key / "bin" / "airflow")
    whole = given or (path.parents[1] / ".installed").exists()  # .ci/services marks it whole
    if not os.access(path, os.X_OK) or not whole:
        service_missing("Airflow is not installed", FileNotFoundError(f"no Airflow at {path}"),
                        "bash .ci/services")
    return str(path)


@pytest.fixture(scope="session")
def chromium() -> list[str]:
    """The command that runs Debian's Chromium headless with no network at all (a network
    namespace of its own: the page under test is a file, and Chromium's own background
    requests cannot leave the machine)."""
    import shutil
    import subprocess

    binary = shutil.which("chromium")
    if binary is None:
        service_missing("Chromium is not installed", FileNotFoundError("no chromium on PATH"),
                        "apt-get install chromium")
    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare or "unshare", "--net", "true"], capture_output=True)
    if unshare is None or probe.returncode != 0:
        service_missing("cannot give Chromium a network namespace of its own",
                        OSError(probe.stderr.decode().strip() or "no unshare"),
                        "run the tests as root (CI does)")
    return [str(unshare), "--net", str(binary), "--headless=new", "--no-sandbox",
            "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]
