"""The batch job through Beam's portable job API, the path Flink, Spark and Dataflow take: a
job service and an SDK worker pool in processes of their own, workers that import the package
and unpickle every DoFn, nothing shared with the launching process but files and servers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc

from pipeline import demo
from pipeline.cli import main
from pipeline.demo.loopback import LoopbackServer
from tests.conftest import POSTGRES_URI
from transforms.state import STAGING_FOLDER

pytestmark = pytest.mark.slow  # starts a job service and a worker pool


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{process.args} exited: {log.read_text()[-2000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(f"nothing listens on port {port} after 60 s: {log.read_text()[-2000:]}")


@pytest.fixture
def portable(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A job service and an SDK worker pool, each in a process (group) of its own."""
    job_port, pool_port = _free_port(), _free_port()
    # The pool starts SDK workers with the `python` first on PATH: this environment's.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    started = []
    for module, flag, port in (
        ("apache_beam.runners.portability.local_job_service_main", "--port", job_port),
        ("apache_beam.runners.worker.worker_pool_main", "--service_port", pool_port),
    ):
        log = tmp_path / f"{module.rsplit('.', 1)[-1]}.log"
        process = subprocess.Popen([sys.executable, "-m", module, flag, str(port)], env=env,
                                   stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                   start_new_session=True)
        started.append(process)
        _wait_for_port(port, process, log)
    try:
        yield job_port, pool_port
    finally:
        for process in started:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _sample_feeds_file(site: LoopbackServer, tmp_path: Path) -> Path:
    """A feeds file listing the demo sample's three feeds on `site`."""
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n" + "".join(
        f"  - {site.url('/feeds/' + name)}\n" for name, _, _ in demo.FEED_FILES))
    return feeds


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(out.glob("articles-*.jsonl")) for line in f.open()]


def _letters(out: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(out.glob("dead-letters-*.jsonl"))
            for line in f.open()]


def _comparable(record: dict) -> tuple:
    """What a run decides about an article (not when it happened)."""
    return (record["id"], record["url"], record["title"], record["text"],
            tuple(sorted((t["name"], t["relevance"], t["score"]) for t in record["topics"])),
            record["published_at"], record["extraction_method"])


def test_the_portable_runner_gives_what_an_in_process_run_gives(
    portable: tuple[int, int], postgres_uri: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job_port, pool_port = portable
    prefix = postgres_uri.split("table_prefix=")[1]
    site: LoopbackServer = demo.sample_server()
    try:
        feeds = _sample_feeds_file(site, tmp_path)
        local_out = tmp_path / "local"
        assert main(["run", "--feeds", str(feeds), "--out", str(local_out), "--state=none",
                     "--allow-private-networks"]) == 0
        portable_out = tmp_path / "portable"
        status = main([
            "run", "--feeds", str(feeds), "--out", str(portable_out),
            "--allow-private-networks", f"--state={postgres_uri}",
            f"--sink=jsonl:{portable_out}", f"--sink={POSTGRES_URI}?table={prefix}articles",
            f"--dead-letters={POSTGRES_URI}?table={prefix}dead_letters",
            "--runner=PortableRunner", f"--job_endpoint=localhost:{job_port}",
            "--environment_type=EXTERNAL", f"--environment_config=localhost:{pool_port}",
            "--shared-filesystem",
        ])
    finally:
        site.stop()
    out = capsys.readouterr().out
    assert status == 0, out
    local, remote = _records(local_out), _records(portable_out)
    assert len(remote) == 6
    assert sorted(map(_comparable, remote)) == sorted(map(_comparable, local))
    with psycopg.connect(POSTGRES_URI) as connection:
        rows = connection.execute(f"SELECT id FROM {prefix}articles").fetchall()
        letters = connection.execute(
            f"SELECT stage, reason, url FROM {prefix}dead_letters").fetchall()
        committed = connection.execute(f"SELECT count(*) FROM {prefix}seen_articles").fetchone()
    assert sorted(r[0] for r in rows) == sorted(r["id"] for r in local)
    assert sorted(letters) == sorted((d["stage"], d["reason"], d["url"])
                                     for d in _letters(local_out))
    # The run's state was staged by the workers and committed by the driver: 6 records, and
    # the PDF and the removed page (404), which failed for good.
    assert committed is not None and committed[0] == 8
    summary = json.loads((portable_out / "run.json").read_text())
    assert summary["runner"] == "PortableRunner"
    assert summary["accounted"] == {"feeds": True, "entries": True}


def _wait_for_job(job_port: int, job_id: str) -> str:
    """The state a job the job service runs ends in (asked once a second, for up to 90 s)."""
    deadline, state = time.monotonic() + 90, "RUNNING"
    while state not in ("DONE", "FAILED", "CANCELLED") and time.monotonic() < deadline:
        time.sleep(1)
        with grpc.insecure_channel(f"localhost:{job_port}") as channel:
            reply = beam_job_api_pb2_grpc.JobServiceStub(channel).GetState(
                beam_job_api_pb2.GetJobStateRequest(job_id=job_id), timeout=10)
        state = str(beam_job_api_pb2.JobState.Enum.Name(reply.state))
    return state


def _detached(
    portable: tuple[int, int], capsys: pytest.CaptureFixture[str], out: Path, saved: str,
    argv: list[str],
) -> dict:
    """Run a newsbeam command detached on the job service, wait for its job to end well, and
    return the details the command saved in `out` (file `saved`, a glob)."""
    job_port, pool_port = portable
    status = main([
        *argv, "--runner=PortableRunner", f"--job_endpoint=localhost:{job_port}",
        "--environment_type=EXTERNAL", f"--environment_config=localhost:{pool_port}",
        "--shared-filesystem", "--detach",
    ])
    printed = capsys.readouterr().out
    assert status == 0, printed
    details: dict = json.loads(next(out.glob(saved)).read_text())
    assert details["status"] == "submitted" and details["job_id"] in printed
    assert _wait_for_job(job_port, details["job_id"]) == "DONE"
    return details


def test_a_detached_run_commits_its_state_itself_once_its_outputs_are_written(
    portable: tuple[int, int], postgres_uri: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # How a Dataflow Flex Template launches a run: the launcher exits once the job is
    # submitted, so nobody is left to commit the state but the pipeline.
    prefix = postgres_uri.split("table_prefix=")[1]
    site: LoopbackServer = demo.sample_server()
    out = tmp_path / "out"
    try:
        details = _detached(portable, capsys, out, "run.json", [
            "run", "--feeds", str(_sample_feeds_file(site, tmp_path)), "--out", str(out),
            "--allow-private-networks", f"--state={postgres_uri}"])
    finally:
        site.stop()
    ids = [record["id"] for record in _records(out)]
    assert len(ids) == 6
    summary = json.loads(Path(details["summary"]).read_text())
    assert summary["accounted"] == {"feeds": True, "entries": True}
    with psycopg.connect(POSTGRES_URI) as connection:
        committed = connection.execute(
            f"SELECT id FROM {prefix}seen_articles").fetchall()
    # The 6 records and the 2 pages that failed for good (the PDF, the removed page).
    assert set(ids) <= {row[0] for row in committed} and len(committed) == 8
    assert not any((out / STAGING_FOLDER).glob("*"))  # the staged files are gone


def test_a_detached_stream_runs_on_in_the_job_service_and_writes_each_article_once(
    portable: tuple[int, int], postgres_uri: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The job service runs pipelines on Beam's in-process runner, which fires event-time
    # timers early: the stream's dedup must not forget ids because of it.
    prefix = postgres_uri.split("table_prefix=")[1]
    site: LoopbackServer = demo.sample_server()
    out = tmp_path / "out"
    try:
        _detached(portable, capsys, out, "stream-*.json", [
            "stream", "--feeds", str(_sample_feeds_file(site, tmp_path)), "--out", str(out),
            "--allow-private-networks", f"--state={postgres_uri}", "--poll-interval=2s",
            "--window=5s", "--stop-after=8s",
            f"--sink=jsonl:{out}", f"--sink={POSTGRES_URI}?table={prefix}articles"])
    finally:
        site.stop()
    ids = [record["id"] for record in _records(out)]
    assert len(ids) == 6 and len(set(ids)) == 6  # the sample's six articles, each once
    with psycopg.connect(POSTGRES_URI) as connection:
        rows = connection.execute(f"SELECT id FROM {prefix}articles").fetchall()
    assert sorted(row[0] for row in rows) == sorted(ids)
