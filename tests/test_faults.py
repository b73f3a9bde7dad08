"""Faults during a run: a flaky site, a run killed midway, PostgreSQL going away while records
are written. Nothing served is lost, nothing is written twice, and a failed run says why."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import demo
from pipeline.job.run_batch import run_batch
from tests.conftest import POSTGRES_URI, service_missing
from tests.servers import Faults, Hold, news_site
from transforms.core import Feed
from transforms.topics import load_taxonomy

pytestmark = pytest.mark.slow  # whole runs, some in processes of their own

# Failures worth asking again for: the next run retries these articles.
TRANSIENT = {"connection_error", "timeout", "http_status"}
HELD_PAGE = "/us/2024/05/15/overdose-deaths-fall.html"


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for f in out.glob("articles-*.jsonl") for line in f.open()]


def _letters(out: Path) -> list[dict]:
    return [json.loads(line) for f in out.glob("dead-letters-*.jsonl") for line in f.open()]


def test_a_flaky_site_loses_no_article_it_served(tmp_path: Path) -> None:
    # A seed with which both feeds and robots.txt get through within the retries, so what the
    # test looks at is the pages: every one the site served in the end must be a record.
    faults = Faults(seed=3, hang=1.0)
    sites = [news_site(host, 20, faults.wrap) for host in ("127.0.0.2", "127.0.0.3")]
    try:
        options = PipelineOptions(["--allow-private-networks", "--state=none",
                                   "--http-timeout=0.4", "--http-deadline=5"])
        feeds = tuple(Feed(site.url("/feed.xml"), index=n) for n, site in enumerate(sites))
        summary = run_batch(options, feeds, load_taxonomy(), str(tmp_path))
    finally:
        for site in sites:
            site.stop()
    assert {"500", "reset", "timeout"} <= set(faults.failures)  # every kind of fault happened
    for site in sites:
        assert {_where(site.url("/feed.xml")), _where(site.url("/robots.txt"))} <= faults.served
    served = {url for url in faults.served if "/news/" in url}
    retried = {url for url in served if faults.attempts[url] > 1}
    assert retried, "no page needed a retry: the test would not test retries"
    recorded = Counter(_where(record["url"]) for record in _records(tmp_path))
    assert set(recorded) == served and set(recorded.values()) == {1}
    letters = _letters(tmp_path)
    assert {_where(letter["url"]) for letter in letters} == (
        {url for url in faults.attempts if "/news/" in url} - served)
    assert {letter["reason"] for letter in letters} <= TRANSIENT, letters
    assert summary["accounted"] == {"feeds": True, "entries": True}


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}{parts.path}"


def _kill_when_held(command: list[str], hold: Hold) -> None:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        assert hold.waiting.wait(timeout=120), "the run never reached the held page"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql",
                                                            marks=pytest.mark.services)])
def test_a_run_killed_midway_and_run_again_writes_every_article_once(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str,
) -> None:
    site = demo.sample_server()
    hold = Hold()
    site.routes[HELD_PAGE] = hold.wrap(site.routes[HELD_PAGE])  # type: ignore[arg-type]
    out = tmp_path / "out"
    flags = [f"--state=sqlite:{tmp_path / 'state.db'}"]
    table = ""
    if backend == "postgresql":
        state = request.getfixturevalue("postgres_uri")
        table = state.split("table_prefix=")[1] + "articles"
        flags = [f"--state={state}", f"--sink=jsonl:{out}",
                 f"--sink={POSTGRES_URI}?table={table}"]
    try:
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text("feeds:\n" + "".join(
            f"  - {site.url('/feeds/' + name)}\n" for name, _, _ in demo.FEED_FILES))
        command = [sys.executable, "-m", "pipeline.cli", "run", "--feeds", str(feeds),
                   "--out", str(out), "--allow-private-networks", *flags]
        _kill_when_held(command, hold)
        hold.release()
        rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
    finally:
        hold.release()
        site.stop()
    ids = Counter(record["id"] for record in _records(out))
    assert len(ids) == 6 and set(ids.values()) == {1}
    if table:
        with psycopg.connect(POSTGRES_URI) as connection:
            rows = connection.execute(f"SELECT id FROM {table}").fetchall()
        assert sorted(row[0] for row in rows) == sorted(ids)


class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb in a temporary folder, another port), so
    it can be stopped and started without touching the shared one."""

    def __init__(self) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        self.bin = Path(binaries[-1]) if binaries else None
        if self.bin is None and shutil.which("initdb"):
            self.bin = Path(shutil.which("initdb") or "").parent
        if self.bin is None:
            service_missing("PostgreSQL's initdb and pg_ctl are not installed",
                            FileNotFoundError("initdb"), "apt install postgresql")
        self.root = Path(tempfile.mkdtemp(prefix="newsbeam-pg-", dir="/tmp"))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.uri = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        # initdb and the server refuse to run as root: as root, run them as postgres.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.root, "postgres")
        self._tool("initdb", "-D", str(self.root / "data"), "-A", "trust", "-U", "postgres",
                   "--no-sync", "-E", "UTF8")
        self.start()

    def _tool(self, name: str, *args: str) -> None:
        assert self.bin is not None
        subprocess.run([*self._as, str(self.bin / name), *args], check=True,
                       capture_output=True, timeout=120)

    def start(self) -> None:
        self._tool("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "log"), "-w",
                   "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
                   " -c fsync=off", "start")

    def stop(self) -> None:
        self._tool("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        subprocess.run([*self._as, str(self.bin / "pg_ctl"), "-D", str(self.root / "data"),
                        "-m", "immediate", "-w", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        yield server
    finally:
        server.remove()


def test_postgres_going_away_while_records_are_written_fails_the_run_and_loses_nothing(
    tmp_path: Path, private_postgres: PrivatePostgres,
) -> None:
    site = demo.sample_server()
    hold = Hold()
    site.routes[HELD_PAGE] = hold.wrap(site.routes[HELD_PAGE])  # type: ignore[arg-type]
    out = tmp_path / "out"
    uri = private_postgres.uri
    try:
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text("feeds:\n" + "".join(
            f"  - {site.url('/feeds/' + name)}\n" for name, _, _ in demo.FEED_FILES))
        command = [sys.executable, "-m", "pipeline.cli", "run", "--feeds", str(feeds),
                   "--out", str(out), "--allow-private-networks", f"--state={uri}",
                   f"--sink=jsonl:{out}", f"--sink={uri}?table=articles"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        # The run is under way, its sinks checked and connected: the server goes away.
        assert hold.waiting.wait(timeout=120), "the run never reached the held page"
        private_postgres.stop()
        hold.release()
        _, err = process.communicate(timeout=300)
        assert process.returncode == 1, err
        lines = [line for line in err.splitlines() if line.startswith("newsbeam: error:")]
        assert len(lines) == 1 and "Traceback" not in err, err
        assert lines[0].startswith("newsbeam: error: the run failed, nothing was committed:")
        assert f"sink postgresql://postgres@127.0.0.1:{private_postgres.port}" in lines[0]
        assert not _records(out)  # the JSON Lines files of a failed run are never finalized

        private_postgres.start()
        rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
    finally:
        hold.release()
        site.stop()
    ids = Counter(record["id"] for record in _records(out))
    assert len(ids) == 6 and set(ids.values()) == {1}
    with psycopg.connect(uri) as connection:
        rows = connection.execute("SELECT id FROM articles").fetchall()
    assert sorted(row[0] for row in rows) == sorted(ids)
