"""The stream on Prism, Beam's portable runner (the closest to Dataflow's model that runs
here), with the real PeriodicImpulse and the wall clock: what the in-process runners cannot
show (timers by the watermark, an impulse that owes ticks, windows closing while it runs)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import apache_beam as beam
import psycopg
import pyarrow.parquet as pq
import pytest
import redis
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.periodicsequence import PeriodicImpulse

from pipeline import demo
from pipeline.cli import main
from pipeline.demo.loopback import LoopbackServer, Route
from pipeline.graph.stream import StreamConfig, build_stream
from tests.conftest import POSTGRES_URI, REDIS_URI
from tests.helpers import stream_config, window_summaries
from tests.servers import HTML, ChangingFeed, ConcurrencyMeter, delayed, story_pages
from transforms.core import Feed
from transforms.fetch import Politeness

pytestmark = pytest.mark.slow  # whole streams on Prism

RECENT = "Tue, 04 Mar 2025 07:45:00 GMT"


@pytest.fixture
def site() -> Iterator[LoopbackServer]:
    server = story_pages()
    yield server
    server.stop()


def _on_prism(prism: str, feed_url: str, config: StreamConfig, *, start: float, stop: float,
              tick: float) -> None:
    options = PipelineOptions(
        ["--runner=PrismRunner", f"--prism_location={prism}", "--streaming"])
    with beam.Pipeline(options=options) as pipeline:
        ticks = pipeline | PeriodicImpulse(
            start_timestamp=start, stop_timestamp=stop, fire_interval=tick)
        build_stream(ticks, (Feed(feed_url, poll_interval=tick),), config)


def _records(out: Path, stream_id: str) -> list[dict]:
    return [json.loads(line) for path in sorted(out.glob(f"articles-{stream_id}-*.jsonl"))
            for line in path.open() if line.strip()]


def test_ids_are_forgotten_after_their_ttl_and_the_ids_held_stay_bounded(
    site: LoopbackServer, tmp_path: Path, prism: str,
) -> None:
    # The same two entries on every poll, answered in full each second for 12 s; ids live 3 s.
    feed = ChangingFeed(site, [[(0, RECENT), (1, RECENT)]], etag=False)
    site.routes["/feed.xml"] = feed
    config = stream_config(tmp_path, "ttl", window=2.0, dedup_ttl=3.0)
    start = time.time()
    _on_prism(prism, site.url("/feed.xml"), config, start=start, stop=start + 12, tick=1.0)

    summaries = window_summaries(tmp_path)
    assert len(summaries) >= 4
    held, peak = 0, 0
    for summary in summaries:
        assert summary["accounted"] == {"feeds": True, "entries": True}
        held += summary["ids"]["remembered"] - summary["ids"]["forgotten"]
        peak = max(peak, held)
    # Never more than the two ids in state, and none left once the stream's timers all fired
    # (its watermark goes to the end of time when the bounded impulse stops).
    assert 1 <= peak <= 2 and held == 0
    # Each article was new again once its id expired: written several times over 12 s.
    titles = Counter(record["title"] for record in _records(tmp_path, "ttl"))
    assert len(titles) == 2 and min(titles.values()) >= 2


def test_ticks_an_impulse_owes_after_a_slow_start_poll_a_feed_once_not_in_a_burst(
    site: LoopbackServer, tmp_path: Path, prism: str,
) -> None:
    feed = ChangingFeed(site, [[(0, RECENT)]])
    site.routes["/feed.xml"] = feed
    config = stream_config(tmp_path, "late", window=60.0)
    # The impulse starts 10 ticks in the past: it releases those 10 at once.
    now = time.time()
    _on_prism(prism, site.url("/feed.xml"), config, start=now - 10, stop=now + 3, tick=1.0)

    totals: Counter[str] = Counter()
    for summary in window_summaries(tmp_path):
        totals.update(summary["counts"])
    # One poll for the 10 owed ticks, then one a second while the impulse runs (3 s, of which
    # Prism's start-up takes some): never one per owed tick.
    assert 1 <= feed.requests <= 5, feed.requests
    assert totals["ticks.stale"] >= 5
    assert totals["feeds.configured"] == feed.requests
    assert len(_records(tmp_path, "late")) == 1


def test_newsbeam_stream_on_prism_writes_each_article_once_over_polls_and_windows(
    tmp_path: Path, prism: str, capsys: pytest.CaptureFixture[str],
) -> None:
    # As a user runs it: `newsbeam stream --runner PrismRunner --prism_location ...`.
    sites = [story_pages(host) for host in ("127.0.0.2", "127.0.0.3")]
    feeds = [
        # Grows, then slides (an item leaves, one is retitled and redated), then stays.
        ChangingFeed(sites[0], [[(0, RECENT)], [(0, RECENT), (1, RECENT)],
                                [(1, "Mon, 01 Jan 2001 00:00:00 GMT", "Updated: a new title"),
                                 (2, RECENT)]]),
        # Unchanged after its first answer: a 304 on every later poll.
        ChangingFeed(sites[1], [[(4, RECENT), (5, RECENT)]]),
    ]
    for site, feed in zip(sites, feeds, strict=True):
        site.routes["/feed.xml"] = feed
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text("feeds:\n" + "".join(
        f"  - {site.url('/feed.xml')}\n" for site in sites))
    out = tmp_path / "out"
    try:
        status = main([
            "stream", "--feeds", str(feeds_file), "--out", str(out), "--state=none",
            "--allow-private-networks", "--poll-interval=1s", "--window=3s",
            "--stop-after=9s", "--runner=PrismRunner", f"--prism_location={prism}",
            f"--feed-health=jsonl:{out / 'health'}",
        ])
    finally:
        for site in sites:
            site.stop()
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert all(feed.requests >= 4 for feed in feeds)  # polled about every second
    records = _records(out, "stream-*")
    ids = Counter(record["id"] for record in records)
    assert len(ids) == 5 and set(ids.values()) == {1}  # five articles, each written once
    summaries = window_summaries(out)
    windows = {summary["window"]["start"] for summary in summaries}
    assert len(windows) >= 3  # summaries cut in several windows while it ran
    assert all(summary["accounted"] == {"feeds": True, "entries": True}
               for summary in summaries)
    totals = json.loads(next(out.glob("stream-*.json")).read_text())
    assert totals["feeds"]["not_modified"] >= 4  # the unchanged feeds answered 304
    assert totals["entries"]["records"] == 5
    # Each feed's health, a row per window that polled it: on Prism as in a batch run. (With
    # --state=none a window's row tells of that window's polls only.)
    health = [json.loads(line) for path in sorted((out / "health").glob("feed-health-*.jsonl"))
              for line in path.open() if line.strip()]
    assert {row["id"] for row in health} == {site.url("/feed.xml") for site in sites}
    assert {row["health_class"] for row in health} == {"healthy"}
    for site in sites:
        rows = [row for row in health if row["id"] == site.url("/feed.xml")]
        assert any(row["last_200"] for row in rows) and any(row["last_304"] for row in rows)
        assert all(row["poll_interval_seconds"] == 1.0 for row in rows)
    # The launch's totals give its last window's classes, not a sum over windows.
    assert totals["feed_health"] == {"healthy": 2} and len(health) > 2


def _growing(stories: int, polls_per_story: int) -> list[list[tuple[int, str]]]:
    """Feed versions that list one more story every `polls_per_story` polls."""
    return [[(n, RECENT) for n in range(1 + poll // polls_per_story)]
            for poll in range(stories * polls_per_story)]


def _growing_sites(tmp_path: Path) -> tuple[list[LoopbackServer], list[ChangingFeed], Path]:
    """Two sites whose feeds list one more story every two polls, and their feeds file."""
    sites = [story_pages(host) for host in ("127.0.0.2", "127.0.0.3")]
    feeds = [ChangingFeed(site, _growing(len(demo.sample_articles()), 2)) for site in sites]
    for site, feed in zip(sites, feeds, strict=True):
        site.routes["/feed.xml"] = feed
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text("feeds:\n" + "".join(
        f"  - {site.url('/feed.xml')}\n" for site in sites))
    return sites, feeds, feeds_file


def _stream_command(feeds_file: Path, out: Path, state: str, prism: str,
                    *sinks: str) -> list[str]:
    return [
        sys.executable, "-m", "pipeline.cli", "stream", "--feeds", str(feeds_file),
        "--out", str(out), f"--state={state}", "--allow-private-networks",
        *(f"--sink={sink}" for sink in sinks),
        "--poll-interval=1s", "--window=3s", "--retry-after=1m",
        "--runner=PrismRunner", f"--prism_location={prism}",
    ]


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)  # the stream, Prism and its workers
    process.wait(timeout=30)


@pytest.mark.services
def test_a_stream_killed_mid_window_and_started_again_writes_every_article_once(
    tmp_path: Path, prism: str, postgres_uri: str, redis_stream: str,
) -> None:
    sites, feeds, feeds_file = _growing_sites(tmp_path)
    out, parquet = tmp_path / "out", tmp_path / "parquet"
    prefix = postgres_uri.split("table_prefix=")[1]
    command = _stream_command(
        feeds_file, out, postgres_uri, prism, f"jsonl:{out}", f"parquet:{parquet}",
        f"{POSTGRES_URI}?table={prefix}articles", f"{REDIS_URI}?stream={redis_stream}")
    try:
        first = subprocess.Popen([*command, "--stop-after=2m"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            # Killed once a window is written, in the next one.
            assert _wait_for(lambda: any(out.glob("articles-*.jsonl")), 90), "no window closed"
            time.sleep(1.5)
        finally:
            _kill_group(first)
        written_before = {record["id"] for record in _records(out, "stream-*")}
        second = subprocess.run([*command, "--stop-after=20s"], capture_output=True, text=True,
                                timeout=300)
        assert second.returncode == 0, second.stderr[-3000:]
    finally:
        for site in sites:
            site.stop()
    served = len(demo.sample_articles()) * len(sites)
    assert all(feed.requests >= 2 * len(demo.sample_articles()) for feed in feeds)
    records = _records(out, "stream-*")
    ids = Counter(record["id"] for record in records)
    assert written_before and len(written_before) < served  # the kill was mid-stream
    assert len(ids) == served and set(ids.values()) == {1}, ids  # all, each once
    table = pq.read_table(sorted(parquet.glob("articles-*.parquet")))
    assert Counter(table.column("id").to_pylist()) == ids
    with psycopg.connect(POSTGRES_URI) as connection:
        rows = connection.execute(f"SELECT id FROM {prefix}articles").fetchall()
    assert sorted(row[0] for row in rows) == sorted(ids)
    client = redis.Redis.from_url(REDIS_URI)
    appended = Counter(fields[b"id"].decode() for _, fields in client.xrange(redis_stream))
    client.close()
    assert appended == ids
    assert not list(out.glob(".*.tmp")) and not list(parquet.glob(".*.tmp"))


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_hosts_feeds_are_polled_at_once_within_its_limit_shared_with_its_pages(
    tmp_path: Path, prism: str,
) -> None:
    # Six feeds and their pages on one host, each request taking 0.3 s; two at a time allowed.
    site = LoopbackServer({}, host="127.0.0.4").start()
    meter = ConcurrencyMeter()
    stories = demo.sample_articles()
    feeds = []
    for n, story in enumerate(stories):
        site.routes[story["path"]] = delayed(
            Route(demo.render_page(story, site.base_url), headers=HTML), 0.3, meter)
        items = (f"<item><title>{story['title']}</title><link>{site.url(story['path'])}</link>"
                 "</item>")
        site.routes[f"/feed/{n}.xml"] = delayed(Route(
            f"<rss version='2.0'><channel><title>F{n}</title>{items}</channel></rss>".encode(),
            headers={"Content-Type": "application/rss+xml", "ETag": f'"{n}"'}), 0.3, meter)
        feeds.append(Feed(site.url(f"/feed/{n}.xml"), poll_interval=30.0))
    config = stream_config(tmp_path, "host", window=60.0, politeness=Politeness(per_host=2))
    start = time.time()
    try:
        options = PipelineOptions(
            ["--runner=PrismRunner", f"--prism_location={prism}", "--streaming"])
        with beam.Pipeline(options=options) as pipeline:
            ticks = pipeline | PeriodicImpulse(
                start_timestamp=start, stop_timestamp=start + 1, fire_interval=30.0)
            build_stream(ticks, tuple(feeds), config)
    finally:
        site.stop()
    assert meter.peak == 2  # overlapping (they were polled at once), never beyond the limit
    feed_starts = sorted(at for at, path in zip(meter.starts, meter.paths, strict=True)
                         if path.startswith("/feed/"))
    # Six polls two at a time: in three rounds of 0.3 s, not six.
    assert len(feed_starts) == 6 and feed_starts[-1] - feed_starts[0] < 5 * 0.3
    assert len(_records(tmp_path, "host")) == len(stories)
