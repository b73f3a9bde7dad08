"""End-to-end pages/s of the batch pipeline with 1 and 2 extraction processes, next to a plain
Python loop doing the same fetch-parse-extract-tag work.

Serves N real article pages from ../shared/corpus/extraction (cycled under distinct URLs) and
RSS feeds listing them from a loopback server in its own process, then times: a plain loop
(fetch each feed, parse it, fetch each page, extract it, tag it, one after another, with
newsbeam's own plain functions), and `run_batch` (the real pipeline, FnApiRunner, JSON Lines
output) with --extract-processes 1 and 2. Wall time includes the pipeline's start-up.

    .venv/bin/python benchmarks/pipeline_throughput.py [--pages 800]
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.config import load_taxonomy
from pipeline.loopback import LoopbackServer, Route
from pipeline.run import run_batch
from transforms.core import Feed, FetchedFeed, Page
from transforms.extract import ExtractionError, extract_article
from transforms.feeds import parse_feed
from transforms.fetch import HttpClient, HttpSettings
from transforms.topics import TopicMatcher

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "extraction"
PER_FEED = 50
HTTP = HttpSettings(allow_private_networks=True)


def serve(pages: int, connection) -> None:
    gold = [json.loads(line) for line in (CORPUS / "gold.jsonl").open(encoding="utf-8")]
    bodies = [gzip.decompress((CORPUS / g["html_file"]).read_bytes()) for g in gold]
    server = LoopbackServer({}).start()
    html = {"Content-Type": "text/html; charset=utf-8"}
    links = []
    for n in range(pages):
        path = f"/article/{n}.html"
        server.routes[path] = Route(bodies[n % len(bodies)], headers=html)
        links.append((gold[n % len(gold)]["title"] or f"Article {n}", server.url(path)))
    feeds = []
    for start in range(0, pages, PER_FEED):
        items = "".join(
            f"<item><title>{_xml(title)}</title><link>{url}</link></item>"
            for title, url in links[start:start + PER_FEED])
        path = f"/feed/{start // PER_FEED}.xml"
        server.routes[path] = Route(
            f"<?xml version='1.0'?><rss version='2.0'><channel><title>Bench</title>{items}"
            "</channel></rss>".encode(), headers={"Content-Type": "application/rss+xml"})
        feeds.append(server.url(path))
    connection.send(feeds)
    connection.recv()  # until told to stop
    server.stop()


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain_loop(feed_urls: list[str]) -> int:
    """Fetch, parse, extract and tag everything, one thing at a time; returns pages done."""
    matcher = TopicMatcher(load_taxonomy())
    done = 0
    with HttpClient(HTTP) as client:
        for index, url in enumerate(feed_urls):
            response = client.get(url, max_bytes=5 << 20)
            parsed = parse_feed(FetchedFeed(Feed(url, index=index), response.url, 200,
                                            response.content_type, response.body,
                                            datetime.now(UTC)))
            for entry in parsed.entries:
                page = client.get(entry.link, max_bytes=10 << 20)
                try:
                    article = extract_article(Page(entry, page.url, 200, page.content_type,
                                                   page.body, page.fetched_at))
                except ExtractionError:
                    continue
                matcher.tag(article.title or "", article.text)
                done += 1
    return done


def pipeline_run(feed_urls: list[str], processes: int, out: str) -> dict:
    feeds = tuple(Feed(url, index=i) for i, url in enumerate(feed_urls))
    options = PipelineOptions(["--allow-private-networks", "--state=none",
                               f"--extract-processes={processes}"])
    return run_batch(options, feeds, load_taxonomy(), out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=800)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        raise SystemExit(f"corpus not found at {CORPUS}")
    ours, theirs = multiprocessing.Pipe()
    site = multiprocessing.Process(target=serve, args=(args.pages, theirs))
    site.start()
    try:
        feed_urls = ours.recv()
        started = time.perf_counter()
        done = plain_loop(feed_urls)
        plain = time.perf_counter() - started
        print(f"plain loop: {done} pages in {plain:.1f} s, {done / plain:.1f} pages/s")
        plain_rate = done / plain
        for processes in (1, 2):
            with tempfile.TemporaryDirectory() as out:
                started = time.perf_counter()
                summary = pipeline_run(feed_urls, processes, out)
                seconds = time.perf_counter() - started
            records = summary["entries"]["records"]
            rate = records / seconds
            print(f"pipeline, {processes} extraction process{'es' if processes > 1 else ''}:"
                  f" {records} records in {seconds:.1f} s, {rate:.1f} pages/s,"
                  f" {rate / plain_rate:.2f} x the plain loop")
    finally:
        ours.send("stop")
        site.join(timeout=10)


if __name__ == "__main__":
    main()
