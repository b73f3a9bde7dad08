"""The newsbeam command: run, topics tag, and the one-line errors with exit status 2."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from pipeline import cli, demo
from pipeline.cli import main
from pipeline.demo.loopback import RequestHandler
from pipeline.job.setup import RunFailedError
from tests.conftest import POSTGRES_URI
from tests.servers import Hold
from transforms.core import summarize


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("newsbeam: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_bad_feeds_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n  - url: https://ok.example/feed\n  - url: not a url\n")
    status, _, err = _run(capsys, "run", "--feeds", str(feeds), "--out", str(tmp_path / "o"))
    assert status == 2
    assert _error_line(err) == (
        f"newsbeam: error: {feeds}: feeds[1].url: 'not a url' is not an absolute http(s) URL"
    )
    assert not (tmp_path / "o").exists()  # refused before anything ran


def test_bad_topics_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds: [https://ok.example/feed]\n")
    topics = tmp_path / "topics.yaml"
    topics.write_text("version: 1\ntopics:\n  - name: trade\n    terms: [trade]\n"
                      "    relevance: {share: lots}\n")
    status, _, err = _run(capsys, "run", "--feeds", str(feeds), "--topics", str(topics))
    assert status == 2
    assert _error_line(err) == (
        f"newsbeam: error: {topics}: topics[0] (trade).relevance.share: expected a non-negative"
        " number, got 'lots'"
    )


@pytest.mark.parametrize("typo", ["--direct_num_wrkers=2", "--fedds=x.yaml", "--allow-private"])
def test_unknown_options_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], typo: str
) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds: [https://ok.example/feed]\n")
    status, _, err = _run(capsys, "run", "--feeds", str(feeds), typo)
    assert status == 2
    assert f"unrecognized option '{typo}'" in _error_line(err)


def test_missing_feeds_option(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(capsys, "run")
    assert status == 2 and "--feeds FILE is required" in _error_line(err)


@pytest.mark.slow
def test_run_writes_records_dead_letters_and_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = demo.sample_server()
    try:
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text("feeds:\n" + "".join(
            f"  - url: {site.url('/feeds/' + name)}\n" for name, _, _ in demo.FEED_FILES
        ))
        out = tmp_path / "out"
        status, stdout, _ = _run(capsys, "run", "--feeds", str(feeds), "--out", str(out),
                                 "--allow-private-networks", "--direct_num_workers=1",
                                 f"--state=sqlite:{tmp_path / 'state.db'}")
    finally:
        site.stop()
    assert status == 0
    assert ("entries  11 parsed: 6 records, 2 duplicates (0 written by earlier runs),"
            " 3 dead letters  [ok]") in stdout
    summary = json.loads((out / "run.json").read_text())
    assert summary["runner"] == "FnApiRunner"
    assert summary["topics"]["fentanyl"] == {"about": 2, "mention": 1}
    assert len(list(out.glob("articles-*.jsonl"))) >= 1
    assert len(list(out.glob("dead-letters-*.jsonl"))) >= 1


@pytest.mark.slow
def test_run_without_permission_refuses_loopback_feeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = demo.sample_server()
    try:
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(f"feeds: [{site.url('/feeds/world.rss')}]\n")
        status, stdout, _ = _run(capsys, "run", "--feeds", str(feeds), "--out",
                                 str(tmp_path / "out"), "--state=none")
        assert sum(site.requests.values()) == 0
    finally:
        site.stop()
    assert status == 0
    assert "1 dead letters  [ok]" in stdout
    assert "dead letters at fetch_feeds: blocked_address 1" in stdout


def test_topics_tag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = tmp_path / "in.jsonl"
    lines.write_text(
        json.dumps({"id": "a", "title": "Tariffs rise again", "text": "Imports fell."}) + "\n"
        + json.dumps({"id": "b", "title": "Weather", "text": "Sunny all week."}) + "\n"
    )
    status, stdout, _ = _run(capsys, "topics", "tag", "--jsonl", str(lines))
    assert status == 0
    results = [json.loads(line) for line in stdout.splitlines()]
    assert [r["id"] for r in results] == ["a", "b"]
    assert [t["name"] for t in results[0]["topics"]] == ["trade"]
    assert set(results[0]["topics"][0]) == {"name", "relevance", "score", "evidence"}
    assert results[1]["topics"] == []


def test_topics_tag_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = tmp_path / "in.jsonl"
    lines.write_text('{"id": "a", "text": "x"}\n{broken\n')
    status, _, err = _run(capsys, "topics", "tag", "--jsonl", str(lines))
    assert status == 2 and f"{lines}:2: not valid JSON" in _error_line(err)


def test_out_folder_that_cannot_be_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds: [https://ok.example/feed]\n")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    status, _, err = _run(capsys, "run", "--feeds", str(feeds), "--out", str(blocker / "out"))
    assert status == 2
    assert _error_line(err).startswith(f"newsbeam: error: --out {blocker / 'out'}: cannot create")


def test_a_stream_on_the_in_process_runner_needs_an_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds: [https://ok.example/feed]\n")
    status, _, err = _run(capsys, "stream", "--feeds", str(feeds), "--out", str(tmp_path / "o"))
    assert status == 2
    line = _error_line(err)
    assert "needs --stop-after" in line and "newsbeam run --every" in line


def test_a_stream_retries_failed_pages_only_after_their_window_is_committed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds: [https://ok.example/feed]\n")
    status, _, err = _run(capsys, "stream", "--feeds", str(feeds), "--out", str(tmp_path / "o"),
                          "--runner=DataflowRunner", "--window=10m", "--retry-after=5m",
                          f"--state={POSTGRES_URI}")
    assert status == 2
    assert _error_line(err) == (
        "newsbeam: error: stream: --retry-after (5m) must be longer than --window (10m): what a"
        " window wrote is committed to the state store when it closes")


@pytest.mark.parametrize(("argv", "message"), [
    (["stream", "--stop-after=1m", "--detach"],
     "stream: --detach needs a runner whose workers run elsewhere"),
    (["run", "--detach"], "run: --detach needs a runner whose workers run elsewhere"),
    (["run", "--detach", "--every=5m", "--runner=DataflowRunner"],
     "run: --every waits for each run before the next; it does not go with --detach"),
])
def test_a_job_detaches_only_from_a_runner_that_runs_elsewhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str,
) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds: [https://ok.example/feed]\n")
    status, _, err = _run(capsys, *argv, "--feeds", str(feeds), "--out", str(tmp_path / "o"),
                          "--state=none")
    assert status == 2
    assert message in _error_line(err)


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--window=5m"], "unrecognized option '--window=5m'"),
    (["stream", "--poll-interval=often"], "'often' is not a duration"),
    (["stream", "--every=5m"], "unrecognized option '--every=5m'"),
])
def test_each_command_takes_its_own_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str,
) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds: [https://ok.example/feed]\n")
    status, _, err = _run(capsys, *argv, "--feeds", str(feeds))
    assert status == 2 and message in err


@pytest.mark.slow
def test_run_every_finishes_the_run_in_progress_on_sigterm(tmp_path: Path) -> None:
    site = demo.sample_server()
    hold = Hold()
    feed = site.routes["/feeds/world.rss"]
    requests = []

    def second_run_held(handler: RequestHandler) -> None:
        requests.append(1)
        (hold.wrap(feed) if len(requests) == 2 else Hold.passing(feed))(handler)

    site.routes["/feeds/world.rss"] = second_run_held
    try:
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text("feeds:\n" + "".join(
            f"  - {site.url('/feeds/' + name)}\n" for name, _, _ in demo.FEED_FILES))
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "run", "--feeds", str(feeds), "--out",
             str(tmp_path / "out"), f"--state=sqlite:{tmp_path / 'state.db'}",
             "--allow-private-networks", "--every=1s"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert hold.waiting.wait(timeout=120), "the second run never started"
        process.send_signal(signal.SIGTERM)  # while the second run waits for a feed
        hold.release()
        _, err = process.communicate(timeout=120)
    finally:
        hold.release()
        site.stop()
    assert process.returncode == 0, err
    assert "SIGTERM: finishing the run in progress" in err
    runs = [line for line in err.splitlines() if line.startswith("INFO newsbeam.schedule: run ")]
    assert len(runs) == 2 and all(line.endswith("[ok]") for line in runs), err
    assert "6 records" in runs[0] and "0 records" in runs[1]  # the second one was incremental
    assert len(requests) == 2  # and no third run started


def test_the_command_exits_at_once_with_every_output_written(tmp_path) -> None:
    # What the run wrote, what it printed into a pipe and its exit status are all there when
    # the command has exited (its fetch and extraction workers stopped first).
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "demo", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "run.json").read_text())
    records = [json.loads(line) for path in tmp_path.glob("articles-*.jsonl")
               for line in path.read_text().splitlines()]
    assert len(records) == summary["entries"]["records"] == 6
    assert done.stdout.rstrip().endswith(f"output   {tmp_path}")


@pytest.mark.parametrize(("accounted", "status"), [(True, 0), (False, 3)])
def test_run_exits_3_when_its_counts_do_not_add_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    accounted: bool, status: int,
) -> None:
    summary = dict(summarize(Counter({"feeds.configured": 1, "feeds.fetched": 1})),
                   run_id="r1", out=str(tmp_path))
    summary["accounted"] = {"feeds": True, "entries": accounted}
    monkeypatch.setattr(cli, "run_batch", lambda *args: summary)
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n  - https://news.example/feed.xml\n")
    got, out, err = _run(capsys, "run", "--feeds", str(feeds), "--out", str(tmp_path))
    assert got == status
    if accounted:
        assert "newsbeam: error:" not in err
    else:
        assert _error_line(err) == (
            "newsbeam: error: the run did not account for every feed and entry")
    assert "feeds" in out  # the summary is printed either way


def _fake_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, outcome: object) -> list:
    """run_batch replaced by one that records its options and feeds, then returns or raises
    `outcome`; a feeds file to run."""
    calls: list = []

    def run_batch(options, feeds, taxonomy, out):  # noqa: ANN001, ANN202
        calls.append((options.get_all_options(retain_unknown_options=True), feeds, out))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(cli, "run_batch", run_batch)
    (tmp_path / "feeds.yaml").write_text("feeds:\n  - https://news.example/feed.xml\n")
    return calls


def _done(tmp_path: Path) -> dict:
    summary = dict(summarize(Counter({"feeds.configured": 1, "feeds.fetched": 1})),
                   run_id="r1", out=str(tmp_path))
    summary["accounted"] = {"feeds": True, "entries": True}
    return summary


def test_a_failed_run_exits_1_in_one_line_with_its_traceback_at_debug_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    failure = RunFailedError("the run failed, nothing was committed: disk full")
    failure.__cause__ = OSError("No space left on device")
    _fake_runs(monkeypatch, tmp_path, failure)
    with caplog.at_level(logging.DEBUG, logger="pipeline.cli"):
        status, _, err = _run(capsys, "run", "--feeds", str(tmp_path / "feeds.yaml"),
                              "--out", str(tmp_path))
    assert status == 1
    assert _error_line(err) == "newsbeam: error: the run failed, nothing was committed: disk full"
    (logged,) = [r for r in caplog.records if r.name == "pipeline.cli"]
    assert logged.getMessage() == "the run failed" and logged.exc_info[1] is failure


def test_the_command_line_is_read_from_the_process_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _fake_runs(monkeypatch, tmp_path, _done(tmp_path))
    monkeypatch.setattr(sys, "argv", ["newsbeam", "run", "--feeds",
                                      str(tmp_path / "feeds.yaml"), "--out", str(tmp_path)])
    assert main() == 0
    assert calls[0][2] == str(tmp_path)


def test_run_every_runs_without_its_own_flag_among_the_beam_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _fake_runs(monkeypatch, tmp_path, _done(tmp_path))
    monkeypatch.setattr(cli, "run_every", lambda every, run: (run(), int(every))[1])
    status = main(["run", "--feeds", str(tmp_path / "feeds.yaml"), "--out", str(tmp_path),
                   "--every", "7s", "--host-concurrency=3"])
    assert status == 7  # run_every got the period
    options = calls[0][0]
    assert "every" not in options and options["host_concurrency"] == 3


def test_the_demo_runs_the_sample_without_state_and_on_loopback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _fake_runs(monkeypatch, tmp_path, _done(tmp_path))
    status, out, _ = _run(capsys, "demo", "--out", str(tmp_path), "--direct_num_workers=1")
    assert status == 0 and out.startswith("demo: serving the sample site at http://127.0.0.1:")
    options, feeds, target = calls[0]
    assert (options["state"], options["allow_private_networks"]) == ("none", True)
    assert options["direct_num_workers"] == 1 and target == str(tmp_path)
    assert len(feeds) == len(demo.FEED_FILES)



def test_a_topics_command_refuses_what_it_does_not_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    texts = tmp_path / "texts.jsonl"
    texts.write_text("")
    status, _, err = _run(capsys, "topics", "tag", "--jsonl", str(texts), "--runner=FnApiRunner")
    assert status == 2
    assert "--runner=FnApiRunner" in _error_line(err)
