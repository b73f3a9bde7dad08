"""Live metrics for Prometheus (`--metrics-port`): newsbeam's Beam counters as the runner
reports them, served over HTTP, scraped for real and read with Prometheus' own text-format
parser (prometheus_client.parser)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry

from pipeline import demo
from pipeline.job.exposition import Distribution, families
from tests.helpers import eventually
from tests.servers import ChangingFeed, story_pages

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of an exposition, as Prometheus parses it."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return _samples(response.text)


class _Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self):  # type: ignore[no-untyped-def]
        yield from self.metrics


def test_beam_counters_become_prometheus_metrics_with_bounded_labels() -> None:
    counters = {
        "feeds.configured": 10, "feeds.fetched": 6, "feeds.not_modified": 3,
        "dead_letters.fetch_feeds.timeout": 1, "dead_letters.parse_entries.feed_empty": 1,
        "dead_letters.parse_entries.feed_parse_timeout": 2,
        "dead_letters.parse_entries.entry_without_link": 4,
        "dead_letters.parse_entries.unexpected_error": 3,  # a feed's and two entries'
        "feeds.failed.timeout": 1, "feeds.failed.feed_empty": 1,
        "feeds.failed.feed_parse_timeout": 2, "feeds.failed.unexpected_error": 1,
        "entries.parsed": 40, "entries.duplicate": 5, "records.output": 30,
        "written.jsonl": 30, "written.postgresql1": 30, "extraction.trafilatura": 29,
        "extraction.feed": 1, "topics.trade.about": 3, "pages.fetched": 31,
    }
    distributions = {"extraction.ms": Distribution(count=30, sum=4500)}
    registry = CollectorRegistry()
    registry.register(_Fixed(families(counters, distributions, {"runs_finished": 1})))
    samples = _samples(generate_latest(registry).decode())
    assert samples[("newsbeam_feeds_polled_total", ())] == 10
    assert samples[("newsbeam_feeds_not_modified_total", ())] == 3
    assert samples[("newsbeam_feeds_failed_total", (("reason", "timeout"),))] == 1
    assert samples[("newsbeam_feeds_failed_total", (("reason", "feed_empty"),))] == 1
    assert samples[("newsbeam_feeds_failed_total", (("reason", "feed_parse_timeout"),))] == 2
    assert samples[("newsbeam_feeds_failed_total", (("reason", "unexpected_error"),))] == 1
    assert ("newsbeam_feeds_failed_total", (("reason", "entry_without_link"),)) not in samples
    assert samples[("newsbeam_dead_letters_total", (("reason", "entry_without_link"),
                                                    ("stage", "parse_entries")))] == 4
    assert samples[("newsbeam_entries_total", (("outcome", "parsed"),))] == 40
    assert samples[("newsbeam_entries_total", (("outcome", "seen_before"),))] == 0
    assert samples[("newsbeam_records_written_total", (("sink", "postgresql1"),))] == 30
    assert samples[("newsbeam_extractions_total", (("method", "feed"),))] == 1
    assert samples[("newsbeam_topic_articles_total", (("relevance", "about"),
                                                      ("topic", "trade")))] == 3
    assert samples[("newsbeam_extraction_seconds_count", ())] == 30
    assert samples[("newsbeam_extraction_seconds_sum", ())] == 4.5  # seconds, not ms
    assert samples[("newsbeam_runs_finished", ())] == 1
    # Names follow the conventions: prefix, _total on counters; no label holds a URL.
    assert all(name.startswith("newsbeam_") for name, _ in samples)
    assert not any("://" in value for _, labels in samples for _, value in labels)


@pytest.mark.slow
def test_a_run_serves_what_its_runner_counted(tmp_path: Path) -> None:
    from pipeline.cli import main

    site = demo.sample_server()
    port = _free_port()
    try:
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text("feeds:\n" + "".join(
            f"  - url: {site.url('/feeds/' + name)}\n" for name, _, _ in demo.FEED_FILES))
        status = main(["run", "--feeds", str(feeds), "--out", str(tmp_path / "out"),
                       "--allow-private-networks", "--state=none", f"--metrics-port={port}"])
    finally:
        site.stop()
    assert status == 0
    # FnApiRunner reports a run's metrics once it has ended: the server, still up, has them.
    samples = _scrape(port)
    assert samples[("newsbeam_runs_finished", ())] == 1
    assert samples[("newsbeam_feeds_polled_total", ())] == 3
    assert samples[("newsbeam_records_total", ())] == 6
    assert samples[("newsbeam_records_written_total", (("sink", "jsonl"),))] == 6
    assert samples[("newsbeam_dead_letters_total", (("reason", "bad_content_type"),
                                                    ("stage", "fetch_pages")))] == 1
    assert samples[("newsbeam_extraction_seconds_count", ())] == 6
    assert 0 < samples[("newsbeam_extraction_seconds_sum", ())] < 60
    assert samples[("newsbeam_poll_to_record_seconds_count", ())] == 6


@pytest.mark.slow
def test_a_metrics_port_in_use_is_one_line(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text("feeds:\n  - url: http://127.0.0.1:9/feed.xml\n")
        with pytest.raises(SystemExit) as exited:
            main(["run", "--feeds", str(feeds), "--out", str(tmp_path / "out"),
                  "--state=none", f"--metrics-port={port}"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"newsbeam: error: --metrics-port {port}: cannot listen on 127.0.0.1:{port}:"
        " Address already in use")


@pytest.mark.slow
def test_a_stream_on_prism_is_scraped_while_it_runs(tmp_path: Path, prism: str) -> None:
    # Beam 2.77's portable result keeps its first metrics answer (exposition.live_metrics):
    # two scrapes a few seconds apart must differ.
    site = story_pages("127.0.0.2")
    site.routes["/feed.xml"] = ChangingFeed(site, [[(n, "Tue, 04 Mar 2025 07:45:00 GMT")
                                                    for n in range(1 + poll // 2)]
                                                   for poll in range(10)])
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - {site.url('/feed.xml')}\n")
    port, log = _free_port(), tmp_path / "guard.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "stream", "--feeds", str(feeds),
         "--out", str(tmp_path / "out"), "--state=none", "--allow-private-networks",
         "--poll-interval=1s", "--window=2s", "--stop-after=14s", "--runner=PrismRunner",
         f"--prism_location={prism}", f"--metrics-port={port}"],
        env={**os.environ, "PYTHONPATH": str(ROOT / "tests" / "subprocess_guard"),
             "NEWSBEAM_GUARD_LOG": str(log)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        def polled(at_least: float) -> bool:
            try:
                return _scrape(port)[("newsbeam_feeds_polled_total", ())] >= at_least
            except (httpx.HTTPError, KeyError):
                return False

        assert eventually(lambda: polled(2), timeout=30)
        first = _scrape(port)
        time.sleep(3)
        second = _scrape(port)
        assert (second[("newsbeam_feeds_polled_total", ())]
                > first[("newsbeam_feeds_polled_total", ())])
        assert eventually(lambda: ("newsbeam_seconds_since_window_closed", ()) in _scrape(port),
                          timeout=20)
        assert _scrape(port)[("newsbeam_seconds_since_window_closed", ())] < 30
        assert process.wait(timeout=60) == 0, process.stderr.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
        site.stop()
    assert not log.exists(), log.read_text()


def test_every_metric_says_what_it_counts_and_starts_at_zero() -> None:
    registry = CollectorRegistry()
    registry.register(_Fixed(families({}, {}, {"runs_finished": 0,
                                               "seconds_since_window_closed": 1.5})))
    described = {family.name: family.documentation
                 for family in text_string_to_metric_families(generate_latest(registry).decode())}
    assert described == {
        "newsbeam_feeds_polled": "Feed polls made.",
        "newsbeam_feeds_fetched": "Feed polls answered in full and parsed.",
        "newsbeam_feeds_not_modified": "Feed polls answered 304 Not Modified.",
        "newsbeam_pages_fetched": "Article pages fetched.",
        "newsbeam_robots_fetched": "robots.txt files fetched.",
        "newsbeam_records": "Records built (each then goes to every sink).",
        "newsbeam_stream_ticks_stale": "Stream ticks dropped as overtaken by a later one.",
        "newsbeam_stream_ids_remembered": "Article ids taken into keyed state.",
        "newsbeam_stream_ids_forgotten": "Article ids let go from keyed state.",
        "newsbeam_entries": "Feed entries, by what became of them.",
        "newsbeam_feeds_failed": "Feed polls that lost the feed, by reason.",
        "newsbeam_dead_letters": "Dead letters, by stage and reason.",
        "newsbeam_records_written": "Records a sink took, by sink.",
        "newsbeam_extractions": "Articles extracted, by method.",
        "newsbeam_topic_articles": "Records tagged with a topic, by topic and relevance.",
        "newsbeam_extraction_seconds": "Time to extract an article page, in its process.",
        "newsbeam_poll_to_record_seconds": "Time from the poll that found an entry to its"
        " record (then written as its bundle ends).",
        "newsbeam_runs_finished": "Runs this process has finished.",
        "newsbeam_seconds_since_window_closed": "Seconds since the stream's last window"
        " closed.",
    }
    samples = _samples(generate_latest(registry).decode())
    assert samples[("newsbeam_feeds_polled_total", ())] == 0
    assert samples[("newsbeam_extraction_seconds_count", ())] == 0
    assert samples[("newsbeam_extraction_seconds_sum", ())] == 0
    assert samples[("newsbeam_seconds_since_window_closed", ())] == 1.5


class _Result:
    """A finished job's result as runner_metrics reads it (MetricResults.query)."""

    def __init__(self, records: int) -> None:
        self.records = records

    def metrics(self):  # type: ignore[no-untyped-def]
        from apache_beam.metrics.execution import MetricKey, MetricResult
        from apache_beam.metrics.metricbase import MetricName

        key = MetricKey("step", MetricName("newsbeam", "records.output"))
        found = {"counters": [MetricResult(key, self.records, self.records)],
                 "distributions": []}
        return type("Found", (), {"query": lambda _self, _filter=None: found})()


def test_runs_add_up_and_a_failed_one_counts_nothing() -> None:
    from pipeline.job.exposition import RunnerCollector

    collector = RunnerCollector()
    for records in (6, 4):
        collector.watch(_Result(records))  # type: ignore[arg-type]
        collector.finished(_Result(records))  # type: ignore[arg-type]
    collector.watch(_Result(100))  # type: ignore[arg-type]
    collector.abandoned()  # it failed: committed nothing, its re-run counts its work again
    registry = CollectorRegistry()
    registry.register(collector)
    samples = _samples(generate_latest(registry).decode())
    assert samples[("newsbeam_records_total", ())] == 10
    assert samples[("newsbeam_runs_finished", ())] == 2
