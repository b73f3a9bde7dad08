"""One run at a time on a state: overlapping runs and streams on one `--state` leave the work
to the one holding its lease; the others wait (`--wait`) or exit with status 4 naming it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline import demo
from pipeline.cli import EXIT_BUSY, main
from pipeline.demo.loopback import LoopbackServer
from pipeline.job.lease import StateBusyError, state_lease
from tests.servers import Hold, news_site
from transforms.state import open_state

ARTICLES = 12


def _main(*argv: str) -> int:
    """`newsbeam ARGV` in this process: its exit status."""
    try:
        return main(list(argv))
    except SystemExit as exit_:
        return int(exit_.code or 0)


def _newsbeam(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _held_site(hold: Hold) -> LoopbackServer:
    """A news site whose feed is held (the run holding the lease waits there) until released."""
    site = news_site("127.0.0.1", ARTICLES)
    site.routes["/feed.xml"] = hold.wrap(site.routes["/feed.xml"])
    return site


def _feeds_file(tmp_path: Path, site: LoopbackServer) -> Path:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - {site.url('/feed.xml')}\n")
    return feeds


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(out.glob("articles-*.jsonl"))
            for line in path.read_text().splitlines()]


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'state.db'}"
    uri: str = request.getfixturevalue("postgres_uri")
    return uri


def test_a_second_holder_is_refused_with_the_first_ones_name(state: str) -> None:
    with (state_lease(state, "stream") as holder, pytest.raises(StateBusyError) as busy,
          state_lease(state, "run")):
        pytest.fail("two holders at once")
    message = str(busy.value)
    assert f"newsbeam stream (pid {os.getpid()} on {holder.host}, since " in message
    assert message.endswith("not started (--wait DURATION waits for it)")
    with state_lease(state, "run"):  # released with the first one's `with`
        pass


def test_a_waiting_run_takes_the_lease_when_it_is_freed(state: str) -> None:
    taken = threading.Event()

    def waiter() -> None:
        with state_lease(state, "run", wait=30):
            taken.set()

    with state_lease(state, "run"):
        thread = threading.Thread(target=waiter)
        thread.start()
        assert not taken.wait(timeout=1.5)
    assert taken.wait(timeout=10)
    thread.join()


def test_waiting_ends_with_the_holder_named(state: str) -> None:
    with state_lease(state, "stream"):
        started = time.monotonic()
        with (pytest.raises(StateBusyError, match="held by newsbeam stream .* after waiting"),
              state_lease(state, "run", wait=1.0)):
            pass
        assert time.monotonic() - started >= 1.0


@pytest.mark.slow
def test_three_runs_at_once_one_does_the_work(tmp_path: Path, state: str) -> None:
    hold = Hold()
    site = _held_site(hold)
    try:
        feeds = _feeds_file(tmp_path, site)
        out = tmp_path / "out"
        runs = [_newsbeam("run", "--feeds", str(feeds), "--out", str(out), f"--state={state}",
                          "--allow-private-networks") for _ in range(3)]
        assert hold.waiting.wait(timeout=120), "no run fetched the feed"
        # The two others are refused while the first holds the lease (and its feed is held).
        deadline = time.monotonic() + 120
        while sum(run.poll() is not None for run in runs) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        hold.release()
        outcomes = [(run.wait(timeout=300), *run.communicate()) for run in runs]
    finally:
        hold.release()
        site.stop()
    statuses = sorted(status for status, _, _ in outcomes)
    assert statuses == [0, EXIT_BUSY, EXIT_BUSY], outcomes
    worker = next(run for run, (status, _, _) in zip(runs, outcomes, strict=True) if status == 0)
    for status, _, err in outcomes:
        if status == EXIT_BUSY:
            assert err.strip().splitlines() == [
                line for line in err.strip().splitlines() if line.startswith("newsbeam: error:")]
            assert f"is held by newsbeam run (pid {worker.pid} on " in err
    records = _records(out)
    assert len(records) == len({record["id"] for record in records}) == ARTICLES
    pages = {path: n for path, n in site.requests.items() if path.startswith("/news/")}
    assert len(pages) == ARTICLES and set(pages.values()) == {1}
    assert site.requests["/feed.xml"] == 1


@pytest.mark.slow
def test_a_holder_killed_with_sigkill_frees_the_state(tmp_path: Path, state: str) -> None:
    hold = Hold()
    site = _held_site(hold)
    try:
        feeds = _feeds_file(tmp_path, site)
        out = tmp_path / "out"
        holder = _newsbeam("run", "--feeds", str(feeds), "--out", str(out), f"--state={state}",
                           "--allow-private-networks")
        assert hold.waiting.wait(timeout=120)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        hold.release()  # the feed is served at once from now on
        # Taken within ten seconds, or the run exits 4.
        status = _main("run", "--feeds", str(feeds), "--out", str(out), f"--state={state}",
                       "--allow-private-networks", "--wait=10s")
    finally:
        hold.release()
        site.stop()
    assert status == 0
    assert len({record["id"] for record in _records(out)}) == ARTICLES


@pytest.mark.slow
def test_run_every_outlasting_its_period_refuses_a_manual_run_then_goes_on(
    tmp_path: Path,
) -> None:
    state = f"sqlite:{tmp_path / 'state.db'}"
    hold = Hold()
    site = _held_site(hold)
    try:
        feeds = _feeds_file(tmp_path, site)
        out = tmp_path / "out"
        every = _newsbeam("run", "--feeds", str(feeds), "--out", str(out), f"--state={state}",
                          "--allow-private-networks", "--every=1s")
        assert hold.waiting.wait(timeout=120)  # held, it outlasts its one-second period
        manual = _newsbeam("run", "--feeds", str(feeds), "--out", str(out),
                           f"--state={state}", "--allow-private-networks")
        _, manual_err = manual.communicate(timeout=120)
        hold.release()
        runs_seen = _wait_for_lines(every, "INFO newsbeam.schedule: run ", 2)
        every.send_signal(signal.SIGTERM)
        _, rest = every.communicate(timeout=120)
    finally:
        hold.release()
        site.stop()
    assert manual.returncode == EXIT_BUSY, manual_err
    assert f"held by newsbeam run (pid {every.pid} on " in manual_err
    assert every.returncode == 0, rest
    assert "records" in runs_seen[0] and "0 records" in runs_seen[1]
    assert len({record["id"] for record in _records(out)}) == len(_records(out)) == ARTICLES


@pytest.mark.slow
def test_run_every_skips_a_run_while_another_holds_the_state(tmp_path: Path) -> None:
    state = f"sqlite:{tmp_path / 'state.db'}"
    site = news_site("127.0.0.1", ARTICLES)
    try:
        feeds = _feeds_file(tmp_path, site)
        with state_lease(state, "run"):
            every = _newsbeam("run", "--feeds", str(feeds), "--out", str(tmp_path / "out"),
                              f"--state={state}", "--allow-private-networks", "--every=1s")
            skipped = _wait_for_lines(every, "WARNING newsbeam.schedule: ", 1)
            assert site.requests["/feed.xml"] == 0  # nothing fetched without the lease
        ran = _wait_for_lines(every, "INFO newsbeam.schedule: run ", 1)
        every.send_signal(signal.SIGTERM)
        every.communicate(timeout=120)
    finally:
        site.stop()
    assert f"held by newsbeam run (pid {os.getpid()} on " in skipped[0]
    assert "the next run starts as planned" in skipped[0]
    assert f"{ARTICLES} records" in ran[0]
    assert every.returncode == 0


@pytest.mark.slow
def test_a_run_is_refused_while_a_stream_holds_the_state(
    tmp_path: Path, postgres_uri: str,
) -> None:
    site = demo.sample_server()
    try:
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text("feeds:\n" + "".join(
            f"  - {site.url('/feeds/' + name)}\n" for name, _, _ in demo.FEED_FILES))
        stream = _newsbeam("stream", "--feeds", str(feeds), "--out", str(tmp_path / "stream"),
                           f"--state={postgres_uri}", "--allow-private-networks",
                           "--stop-after=60s", "--poll-interval=5s", "--window=10s")
        deadline = time.monotonic() + 120
        while not site.requests and time.monotonic() < deadline:
            time.sleep(0.2)  # the stream polls once it holds the lease
        status = _main("run", "--feeds", str(feeds), "--out", str(tmp_path / "run"),
                       f"--state={postgres_uri}", "--allow-private-networks")
        stream.send_signal(signal.SIGKILL)
        stream.wait(timeout=30)
    finally:
        site.stop()
    assert status == EXIT_BUSY
    assert not list((tmp_path / "run").glob("articles-*.jsonl"))


def test_a_run_busy_on_its_state_exits_4_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    state = f"sqlite:{tmp_path / 'state.db'}"
    site = news_site("127.0.0.1", 2)
    try:
        with state_lease(state, "stream"), pytest.raises(SystemExit) as exit_:
            main(["run", "--feeds", str(_feeds_file(tmp_path, site)), "--out",
                  str(tmp_path / "out"), f"--state={state}", "--allow-private-networks"])
    finally:
        site.stop()
    assert exit_.value.code == EXIT_BUSY
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"newsbeam: error: the state {state} is held by newsbeam stream (pid ")
    assert len(err.splitlines()) == 1
    assert site.requests.total() == 0


def test_first_uses_of_a_postgresql_state_at_once_all_succeed(postgres_uri: str) -> None:
    barrier = threading.Barrier(6)
    failures: list[BaseException] = []

    def first_use() -> None:
        barrier.wait()
        try:
            open_state(postgres_uri).close()
        except BaseException as error:  # noqa: BLE001  (any failure is the finding)
            failures.append(error)

    threads = [threading.Thread(target=first_use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def _wait_for_lines(process: subprocess.Popen[str], prefix: str, count: int) -> list[str]:
    """The first `count` lines of `process`'s stderr that start with `prefix` (read as they
    come; the test fails after two minutes without them)."""
    found: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith(prefix):
                found.append(line.rstrip("\n"))
                if len(found) >= count:
                    done.set()
                    return

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(timeout=120), f"no {count} lines starting {prefix!r}: {found}"
    return found
