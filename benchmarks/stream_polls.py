"""A stream polling 200 loopback feeds 10 times, 5% of them with a new entry at each poll.

The site runs in its own process: 200 feeds on 10 hosts (127.0.0.2-11), each listing its
latest entry (so entries leave the feeds as new ones come); at every poll 10 feeds change, the
others answer 304. The stream runs on Beam's bundle-based DirectRunner with a TestStream of 10
ticks, 5 minutes apart, in place of the impulse (so 50 minutes of polling take seconds), with
a TTL of 15 minutes for article ids. For every poll it prints the feeds polled and not modified,
the new articles, the page requests they caused, and the ids the keyed state holds next to what
the TTL allows (the ids first seen in the last 15 minutes).

    .venv/bin/python benchmarks/stream_polls.py [--feeds 200] [--polls 10]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.servers

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms.window import TimestampedValue

from pipeline import demo
from pipeline.demo.loopback import LoopbackServer, RequestHandler, Route
from pipeline.graph.core import CoreConfig
from pipeline.graph.stream import StreamConfig, build_stream
from pipeline.job.incremental import new_run_id
from pipeline.job.options import DEFAULT_RETRY_AFTER
from transforms.core import Feed
from transforms.feeds import PollClock
from transforms.fetch import HttpSettings
from transforms.topics import load_taxonomy

HOSTS = [f"127.0.0.{n}" for n in range(2, 12)]
INTERVAL = 300.0
TTL = 900.0
CHANGE_EVERY = 20  # a feed changes at one poll in 20: 5% of the feeds at every poll


def version(feed: int, poll: int) -> int:
    """How many times feed `feed` has changed by poll `poll` (polls count from 1)."""
    return sum(1 for p in range(2, poll + 1) if (feed + p) % CHANGE_EVERY == 0)


def serve(feeds: int, connection) -> None:  # noqa: ANN001
    """The site, in its own process: feed n's k-th request gets its version at poll k."""
    stories = demo.sample_articles()
    servers = [LoopbackServer({}, host=host).start() for host in HOSTS]
    requests: Counter[str] = Counter()

    def feed_route(n: int, server: LoopbackServer) -> None:
        def handle(handler: RequestHandler) -> None:
            path = handler.path
            requests[path] += 1
            current = version(n, requests[path])
            link = server.url(f"/a/{n}/{current}.html")
            body = (f"<?xml version='1.0'?><rss version='2.0'><channel><title>Feed {n}</title>"
                    f"<item><title>Story {n}.{current}</title><link>{link}</link></item>"
                    "</channel></rss>").encode()
            handler.send_route(Route(body, headers={"Content-Type": "application/rss+xml",
                                                    "ETag": f'"{n}.{current}"'}))
        server.routes[f"/feed/{n}.xml"] = handle

    for n in range(feeds):
        server = servers[n % len(servers)]
        feed_route(n, server)
        story = dict(stories[n % len(stories)])
        for v in range(version(n, 100) + 1):
            story["paragraphs"] = [*stories[n % len(stories)]["paragraphs"],
                                   f"Update {v} of story {n}."]
            server.routes[f"/a/{n}/{v}.html"] = Route(
                demo.render_page(story, server.base_url),
                headers={"Content-Type": "text/html; charset=utf-8"})
    connection.send([servers[n % len(servers)].url(f"/feed/{n}.xml") for n in range(feeds)])
    while (command := connection.recv()) != "stop":
        if command == "report":
            connection.send(sum((s.requests for s in servers), Counter()))
    for server in servers:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--polls", type=int, default=10)
    args = parser.parse_args()
    ours, theirs = multiprocessing.Pipe()
    site = multiprocessing.Process(target=serve, args=(args.feeds, theirs))
    site.start()
    try:
        feed_urls = ours.recv()
        start = float(int(time.time()) // int(INTERVAL) * int(INTERVAL) - 24 * 3600)
        ticks = TestStream()
        for poll in range(args.polls):
            at = start + poll * INTERVAL
            ticks = ticks.advance_watermark_to(at).add_elements([TimestampedValue(at, at)])
        ticks = ticks.advance_watermark_to_infinity()
        with tempfile.TemporaryDirectory() as out:
            config = StreamConfig(
                out=out, core=CoreConfig(load_taxonomy(), HttpSettings(
                    allow_private_networks=True)),
                stream_id="bench", launch=new_run_id(), poll_interval=INTERVAL,
                window=INTERVAL, dedup_ttl=TTL, retry_after=DEFAULT_RETRY_AFTER,
                poll_clock=PollClock.TICKS)
            feeds = tuple(Feed(url, index=n) for n, url in enumerate(feed_urls))
            started = time.perf_counter()
            options = PipelineOptions(["--runner=BundleBasedDirectRunner", "--streaming"])
            with beam.Pipeline(options=options) as pipeline:
                build_stream(pipeline | ticks, feeds, config)
            seconds = time.perf_counter() - started
            summaries = {}
            for path in Path(out).glob("summary-bench-*.json"):
                for document in path.read_text().split("\n}\n"):
                    if document.strip():
                        summary = json.loads(document + "\n}")
                        window = summary["window"]["start"]
                        summaries.setdefault(window, Counter()).update(summary["counts"])
        ours.send("report")
        requests = ours.recv()
    finally:
        ours.send("stop")
        site.join(timeout=10)
    print(f"{args.feeds} feeds on {len(HOSTS)} hosts, {args.polls} polls {INTERVAL / 60:g} min"
          f" apart, {100 / CHANGE_EVERY:g}% of the feeds changing per poll, id TTL"
          f" {TTL / 60:g} min; {seconds:.1f} s")
    held = 0
    recent: list[int] = []
    for poll, window in enumerate(sorted(summaries), start=1):
        counts = summaries[window]
        held += counts["state.remembered"] - counts["state.forgotten"]
        recent.append(counts["state.remembered"])
        allowed = sum(recent[-int(TTL / INTERVAL):])
        new = sum(1 for n in range(args.feeds)
                  if poll == 1 or version(n, poll) != version(n, poll - 1))
        pages = sum(count for path, count in requests.items()
                    if path.startswith("/a/") and _poll_of(path, args.feeds) == poll)
        print(f"poll {poll:2}: {counts['feeds.configured']} feeds polled,"
              f" {counts['feeds.not_modified']} not modified, {new} new articles,"
              f" {pages} page requests, {counts['records.output']} records;"
              f" keyed state holds {held} ids (the TTL allows {allowed})")


def _poll_of(path: str, feeds: int) -> int:
    """The poll at which the page /a/<feed>/<version>.html first appeared in its feed."""
    _, _, feed, page = path.split("/")
    wanted = int(page.removesuffix(".html"))
    return next(poll for poll in range(1, 200) if version(int(feed), poll) == wanted)


if __name__ == "__main__":
    main()
