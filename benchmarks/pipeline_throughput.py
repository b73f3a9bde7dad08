"""End-to-end pages/s of the batch pipeline, next to a plain Python loop doing the same
fetch-parse-extract-tag work.

Serves N real article pages from ../shared/corpus/extraction (cycled under distinct URLs) and
RSS feeds listing them from one loopback host, in a process of its own, then times:
- a plain loop (fetch each feed, parse it, fetch each page, extract it, tag it, one after
  another, with newsbeam's own plain functions);
- the pipeline in one process (the default runner), with 1 and 2 extraction processes;
- the pipeline on 2 Beam worker processes (--direct_num_workers=2
  --direct_running_mode=multi_processing, one extraction process each), without and with the
  redistribution of pages before extraction: all pages come from one host, so without it the
  worker that fetched them also extracts them all.
Wall time includes the pipeline's start-up (several seconds for worker processes).

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

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.demo.loopback import LoopbackServer, Route
from pipeline.graph.batch import BatchConfig, build_batch
from pipeline.graph.core import CoreConfig
from pipeline.job.run_batch import run_batch
from transforms.core import Feed, FetchedFeed, IsolationSettings, Page
from transforms.extract import ExtractionError, extract_article
from transforms.feeds import parse_feed
from transforms.fetch import HttpClient, HttpSettings
from transforms.topics import TopicMatcher, load_taxonomy

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


def pipeline_run(feed_urls: list[str], processes: int, out: str) -> int:
    """The pipeline in one process (the default runner), as `newsbeam run` runs it."""
    feeds = tuple(Feed(url, index=i) for i, url in enumerate(feed_urls))
    options = PipelineOptions(["--allow-private-networks", "--state=none",
                               f"--extract-processes={processes}"])
    records: int = run_batch(options, feeds, load_taxonomy(), out)["entries"]["records"]
    return records


def workers_run(feed_urls: list[str], spread: bool, out: str) -> int:
    """The pipeline on 2 Beam worker processes, with or without redistributing the pages."""
    feeds = tuple(Feed(url, index=i) for i, url in enumerate(feed_urls))
    options = PipelineOptions(["--runner=FnApiRunner", "--direct_num_workers=2",
                               "--direct_running_mode=multi_processing"])
    config = BatchConfig(out=out, core=CoreConfig(
        load_taxonomy(), HTTP, isolation=IsolationSettings(processes=1),
        spread_extraction=spread))
    with beam.Pipeline(options=options) as pipeline:
        build_batch(pipeline, feeds, config)
    return len([line for path in Path(out).glob("articles-*.jsonl") for line in path.open()])


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
        runs = [
            (f"pipeline in one process, {n} extraction process{'es' if n > 1 else ''}",
             lambda out, n=n: pipeline_run(feed_urls, n, out)) for n in (1, 2)
        ] + [
            (f"pipeline on 2 worker processes, {label}",
             lambda out, spread=spread: workers_run(feed_urls, spread, out))
            for label, spread in (("pages not redistributed", False),
                                  ("pages redistributed", True))
        ]
        for label, run in runs:
            with tempfile.TemporaryDirectory() as out:
                started = time.perf_counter()
                records = run(out)
                seconds = time.perf_counter() - started
            rate = records / seconds
            print(f"{label}: {records} records in {seconds:.1f} s, {rate:.1f} pages/s,"
                  f" {rate / plain_rate:.2f} x the plain loop")
    finally:
        ours.send("stop")
        site.join(timeout=10)


if __name__ == "__main__":
    main()
