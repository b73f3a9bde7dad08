"""The stream's semantics, poll by poll: TestStream ticks in place of the impulse (Beam's
bundle-based DirectRunner, --streaming) against a loopback site whose feed changes between
polls; then a bounded `newsbeam stream` with the real impulse."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import apache_beam as beam
import psycopg
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

# Renamed so that pytest does not take it for a test class.
from apache_beam.testing.test_stream import TestStream as ScriptedStream
from apache_beam.transforms.window import TimestampedValue

from pipeline import demo
from pipeline.cli import main
from pipeline.demo.loopback import LoopbackServer, Route
from pipeline.graph.stream import StreamConfig, build_stream
from tests.conftest import POSTGRES_URI
from tests.helpers import stream_config, window_summaries
from tests.servers import ChangingFeed, ConcurrencyMeter, delayed, story_pages
from transforms.core import Feed
from transforms.feeds import PollClock
from transforms.health import decode
from transforms.sinks import parse_sink
from transforms.state import open_state

pytestmark = pytest.mark.slow  # whole streams

HTML = {"Content-Type": "text/html; charset=utf-8"}
LONG_AGO = "Mon, 01 Jan 2001 00:00:00 GMT"
RECENT = "Tue, 04 Mar 2025 07:45:00 GMT"
TTL = 3600.0


@pytest.fixture
def site() -> Iterator[LoopbackServer]:
    server = story_pages()
    yield server
    server.stop()


def _lines(out: Path, pattern: str) -> list[tuple[str, dict]]:
    return [(path.name, json.loads(line)) for path in sorted(out.glob(pattern))
            for line in path.open() if line.strip()]


def _run_stream(feed_url: str, config: StreamConfig, polls: list[float]) -> None:
    """The stream of `config` over one feed, polled at each of `polls` (epoch seconds) by a
    scripted impulse, on Beam's bundle-based DirectRunner (whose timers fire by the scripted
    watermark): `config` takes its time from the ticks (PollClock.TICKS)."""
    ticks = ScriptedStream()
    for at in polls:
        ticks = ticks.advance_watermark_to(at).add_elements([TimestampedValue(at, at)])
    ticks = ticks.advance_watermark_to_infinity()
    options = PipelineOptions(["--runner=BundleBasedDirectRunner", "--streaming"])
    with beam.Pipeline(options=options) as pipeline:
        build_stream(pipeline | ticks, (Feed(feed_url),), config)


def test_each_poll_emits_only_what_is_new_and_an_id_is_new_again_after_its_ttl(
    site: LoopbackServer, tmp_path: Path,
) -> None:
    stories = demo.sample_articles()
    a, b, c, d = 0, 1, 2, 4  # four stories of the sample
    feed = ChangingFeed(site, [
        [(a, LONG_AGO), (b, RECENT)],  # poll 1
        [(a, LONG_AGO), (b, RECENT), (c, RECENT)],  # poll 2: one new entry
        [(a, LONG_AGO), (b, RECENT), (c, RECENT)],  # poll 3: unchanged, 304
        [(a, LONG_AGO), (b, RECENT), (c, RECENT), (d, RECENT)],  # poll 4, after the TTL
    ])
    site.routes["/feed.xml"] = feed
    # A stream's clock never runs ahead of real time: its ticks are in the past.
    start = float(int(time.time()) - 3 * 3600)
    config = stream_config(tmp_path, "s1", dedup_ttl=TTL, window=600,
                           poll_clock=PollClock.TICKS)
    # The 4th poll is past the TTL of a and b, not of c.
    _run_stream(site.url("/feed.xml"), config, [start + t for t in (0, 300, 600, 3720)])

    assert feed.requests == 4
    pages = Counter({path: n for path, n in site.requests.items() if path.endswith(".html")})
    assert pages == Counter({stories[a]["path"]: 2, stories[b]["path"]: 2,
                             stories[c]["path"]: 1, stories[d]["path"]: 1})
    records = _lines(tmp_path, "articles-s1-*.jsonl")
    assert Counter(record["title"] for _, record in records) == Counter({
        stories[a]["title"]: 2, stories[b]["title"]: 2, stories[c]["title"]: 1,
        stories[d]["title"]: 1})
    # An article published long ago is written like any other.
    assert any(record["published_at"].startswith("2001-01-01") for _, record in records)
    # Files are cut by ingestion time: each record sits in the window of its fetched_at.
    for name, record in records:
        start_text, end_text = name.removeprefix("articles-s1-").split("-")[:2]
        window = [datetime.strptime(t, "%Y%m%dT%H%M%SZ").timestamp()
                  for t in (start_text, end_text)]
        fetched = datetime.fromisoformat(record["fetched_at"].replace("Z", "+00:00"))
        assert window[0] <= fetched.timestamp() < window[1], (name, record["fetched_at"])
    summaries = window_summaries(tmp_path)
    assert all(summary["accounted"] == {"feeds": True, "entries": True} for summary in summaries)
    totals = Counter()
    for summary in summaries:
        totals.update(summary["counts"])
    assert totals["feeds.configured"] == 4 and totals["feeds.not_modified"] == 1
    # Poll 2 saw a and b again, poll 4 saw c again (within its TTL).
    assert totals["records.output"] == 6 and totals["entries.duplicate"] == 3
    # a and b were forgotten by their timers when the clock passed their TTL, before poll 4
    # (which is why it fetched them again): the state is bounded by the TTL. The ids
    # remembered after that are forgotten as the stream drains (its clock passes every TTL),
    # so a drained stream holds none: every id remembered is forgotten, and counted so.
    assert totals["state.remembered"] == 6 and totals["state.forgotten"] == 6


def test_an_entry_without_a_link_is_a_dead_letter_once_while_it_stays_in_its_feed(
    site: LoopbackServer, tmp_path: Path,
) -> None:
    stories = demo.sample_articles()
    feed = ChangingFeed(site, [[(0, RECENT)], [(0, RECENT), (1, RECENT)],
                               [(0, RECENT), (1, RECENT), (2, RECENT)]],
                        extra_items="<item><title>Opinion: no link here</title>"
                        "<guid isPermaLink='false'>n-1</guid></item>")
    site.routes["/feed.xml"] = feed
    start = float(int(time.time()) - 3 * 3600)
    config = stream_config(tmp_path, "s3", dedup_ttl=TTL, window=600,
                           poll_clock=PollClock.TICKS)
    _run_stream(site.url("/feed.xml"), config, [start, start + 300, start + 600])

    assert feed.requests == 3  # three polls, each answered in full
    letters = _lines(tmp_path, "dead-letters-s3-*.jsonl")
    assert [(letter["reason"], letter["url"]) for _, letter in letters] == [
        ("entry_without_link", "n-1")]
    records = _lines(tmp_path, "articles-s3-*.jsonl")
    assert sorted(record["title"] for _, record in records) == sorted(
        stories[n]["title"] for n in (0, 1, 2))
    totals: Counter[str] = Counter()
    for summary in window_summaries(tmp_path):
        assert summary["accounted"] == {"feeds": True, "entries": True}
        totals.update(summary["counts"])
    # Polls parsed 2, 3 and 4 entries. Poll 2 saw story 0 and the link-less entry again, poll
    # 3 stories 0 and 1 and the link-less entry: duplicates.
    assert totals["entries.parsed"] == 9 and totals["entries.dead_letter"] == 1
    assert totals["entries.duplicate"] == 2 + 3


def test_with_a_state_store_a_page_that_failed_for_a_passing_reason_is_asked_for_again(
    site: LoopbackServer, tmp_path: Path,
) -> None:
    stories = demo.sample_articles()
    a, b, c, d = 0, 1, 2, 4
    feed = ChangingFeed(site, [
        [(a, RECENT), (b, RECENT)],  # poll 1: a's page is down for now (503)
        [(a, RECENT), (b, RECENT), (c, RECENT)],  # poll 2: a seen within --retry-after
        [(a, RECENT), (b, RECENT), (c, RECENT), (d, RECENT)],  # poll 3: past it
    ])
    site.routes["/feed.xml"] = feed
    page = site.routes[stories[a]["path"]]
    assert isinstance(page, Route)
    answers = iter([Route(b"busy", 503), Route(b"busy", 503)])  # both attempts of poll 1
    site.routes[stories[a]["path"]] = lambda handler: handler.send_route(next(answers, page))
    # Records are windowed by when their pages were fetched (now): for their window to have
    # closed, and its ids to be in the store, by poll 3, poll 3 is scripted an hour ahead.
    start = float(int(time.time()) - 600)
    config = stream_config(tmp_path, "s2", window=600, retry_after=TTL,
                           state_uri=f"sqlite:{tmp_path / 'state.db'}",
                           poll_clock=PollClock.TICKS,
                           feed_health_sink=parse_sink(f"jsonl:{tmp_path / 'health'}",
                                                       default_table="unused"))
    _run_stream(site.url("/feed.xml"), config, [start, start + 300, start + 300 + TTL + 60])

    pages = Counter({path: n for path, n in site.requests.items() if path.endswith(".html")})
    # a: twice on poll 1 (an attempt and its retry), once more on poll 3; b and c, done for
    # good by then, are found in the store on poll 3 and not asked for again.
    assert pages == Counter({stories[a]["path"]: 3, stories[b]["path"]: 1,
                             stories[c]["path"]: 1, stories[d]["path"]: 1})
    records = _lines(tmp_path, "articles-s2-*.jsonl")
    assert sorted(record["title"] for _, record in records) == sorted(
        stories[n]["title"] for n in (a, b, c, d))
    letters = _lines(tmp_path, "dead-letters-s2-*.jsonl")
    assert [(letter["stage"], letter["reason"], letter["url"]) for _, letter in letters] == [
        ("fetch_pages", "http_status", site.url(stories[a]["path"]))]
    totals: Counter[str] = Counter()
    for summary in window_summaries(tmp_path):
        assert summary["accounted"] == {"feeds": True, "entries": True}
        totals.update(summary["counts"])
    assert totals["entries.duplicate"] == 2  # a and b on poll 2
    assert totals["entries.seen_before"] == 2  # b and c on poll 3
    # The feed's health, per window, carried from window to window in the store: the last
    # row written has all three polls and the four articles.
    rows = sorted((row for _, row in _lines(tmp_path / "health", "feed-health-s2-*.jsonl")),
                  key=lambda row: row["updated_at"])
    assert {row["id"] for row in rows} == {site.url("/feed.xml")}
    assert totals["health.healthy"] == len(rows) >= 1
    store = open_state(f"sqlite:{tmp_path / 'state.db'}")
    try:
        kept = decode(store.feed_health([site.url("/feed.xml")])[site.url("/feed.xml")])
    finally:
        store.close()
    assert kept.recent_entries == (2, 3, 4) and kept.consecutive_failures == 0
    assert kept.new_articles_since(0) == 4 and kept.interval_reason == "config"
    assert kept.interval == config.poll_interval


@pytest.mark.services
def test_a_bounded_stream_writes_each_article_once_to_every_sink(
    tmp_path: Path, postgres_uri: str, capsys: pytest.CaptureFixture[str],
) -> None:
    meters = {host: ConcurrencyMeter() for host in ("127.0.0.2", "127.0.0.3")}
    sites = {host: LoopbackServer({}, host=host).start() for host in meters}
    stories = demo.sample_articles()
    for host, site in sites.items():
        for story in stories:
            site.routes[story["path"]] = delayed(
                Route(demo.render_page(story, site.base_url), headers=HTML), 0.2, meters[host])
    feeds = {
        # Gains an entry, then loses one and changes another's title, then turns over.
        "127.0.0.2": ChangingFeed(sites["127.0.0.2"], [
            [(0, RECENT), (1, RECENT)], [(0, RECENT), (1, RECENT), (2, RECENT)],
            [(1, LONG_AGO), (2, RECENT)], [(2, RECENT), (3, RECENT)]]),
        "127.0.0.3": ChangingFeed(sites["127.0.0.3"], [
            [(4, RECENT)], [(4, RECENT), (5, RECENT)], [(5, RECENT)]]),
    }
    for host, feed in feeds.items():
        sites[host].routes["/feed.xml"] = feed
    prefix = postgres_uri.split("table_prefix=")[1]
    out = tmp_path / "out"
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text("feeds:\n" + "".join(
        f"  - {site.url('/feed.xml')}\n" for site in sites.values()))
    try:
        status = main([
            "stream", "--feeds", str(feeds_file), "--out", str(out), "--allow-private-networks",
            "--poll-interval=1s", "--stop-after=6s", "--window=1m", f"--state={postgres_uri}",
            f"--sink=jsonl:{out}", f"--sink=parquet:{tmp_path / 'parquet'}",
            f"--sink={POSTGRES_URI}?table={prefix}articles",
        ])
    finally:
        for site in sites.values():
            site.stop()
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert all(feed.requests >= 4 for feed in feeds.values())  # polled every second
    assert all(meter.peak <= 2 for meter in meters.values())  # per-host limits held
    records = _lines(out, "articles-stream-*.jsonl")
    ids = Counter(record["id"] for _, record in records)
    assert len(ids) == 6 and set(ids.values()) == {1}  # six articles, each written once
    for name, record in records:
        span = name.split("-")[3:5]  # articles-stream-<id>-<start>-<end>-...
        window = [datetime.strptime(t, "%Y%m%dT%H%M%SZ").timestamp() for t in span]
        fetched = datetime.fromisoformat(record["fetched_at"].replace("Z", "+00:00"))
        assert window[0] <= fetched.timestamp() < window[1]
    table = pq.read_table(sorted((tmp_path / "parquet").glob("articles-*.parquet")))
    assert sorted(table.column("id").to_pylist()) == sorted(ids)
    with psycopg.connect(POSTGRES_URI) as connection:
        rows = connection.execute(f"SELECT id FROM {prefix}articles").fetchall()
        remembered = connection.execute(
            f"SELECT id FROM {prefix}seen_articles").fetchall()
    assert sorted(row[0] for row in rows) == sorted(ids)
    # What the stream wrote is in the state store, so a later run or stream skips it.
    assert sorted(row[0] for row in remembered) == sorted(ids)
    totals = json.loads(next(out.glob("stream-*.json")).read_text())
    assert totals["accounted"] == {"feeds": True, "entries": True}
    assert totals["entries"]["records"] == 6
    assert "6 records" in printed
