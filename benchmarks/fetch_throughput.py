"""Fetch-stage throughput against 20 slow hosts on loopback, next to a plain sequential loop.

Serves N pages (default 2,000) from 20 loopback addresses (127.0.0.2 to 127.0.0.21), each
response delayed by 50 ms, runs newsbeam's FetchPages stage over them with its default politeness
settings, and prints pages/s for it (with its CPU per page) and for a plain sequential httpx loop
over the same URLs, and the most concurrent requests any one host saw (the per-host limit is 2).

    .venv/bin/python benchmarks/fetch_throughput.py [--pages 2000] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.servers

import apache_beam as beam
import httpx
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.demo.loopback import LoopbackServer, Route
from tests.servers import ConcurrencyMeter, delayed
from transforms.core import Entry, article_id, canonical_url
from transforms.fetch import DEFAULT_POLITENESS, FetchPages, HttpSettings

HOSTS = [f"127.0.0.{n}" for n in range(2, 22)]
PAGE = Route(b"<html><body>" + b"<p>benchmark page text</p>" * 200 + b"</body></html>",
             headers={"Content-Type": "text/html; charset=utf-8"})


def _entry(url: str) -> Entry:
    canonical = canonical_url(url)
    return Entry(feed_url="http://127.0.0.2/feed", feed_title=None, feed_tags=(),
                 feed_index=0, position=0, guid=None, link=url, canonical_url=canonical,
                 article_id=article_id(canonical), title=None, authors=(), published_at=None,
                 updated_at=None, categories=(), summary=None)




def serve(hosts: list[str], pages: int, latency: float, connection) -> None:
    """The loopback site, in its own process so its work does not compete with the fetcher's."""
    servers = [LoopbackServer({}, host=host).start() for host in hosts]
    meters = [ConcurrencyMeter() for _ in hosts]
    for n in range(pages):
        servers[n % len(servers)].routes[f"/article/{n}.html"] = delayed(
            PAGE, latency, meters[n % len(servers)])
    connection.send([server.base_url for server in servers])
    while (command := connection.recv()) != "stop":
        if command == "report":
            connection.send((max(m.peak for m in meters),
                             sum(sum(s.requests.values()) for s in servers)))
            for meter in meters:
                meter.peak = 0
    for server in servers:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()

    ours, theirs = multiprocessing.Pipe()
    site = multiprocessing.Process(target=serve, args=(HOSTS, args.pages, args.latency, theirs))
    site.start()
    try:
        bases = ours.recv()
        urls = [f"{bases[n % len(bases)]}/article/{n}.html" for n in range(args.pages)]
        settings = HttpSettings(allow_private_networks=True)
        started, cpu_started = time.perf_counter(), time.process_time()
        with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
            # Entries are made inside the pipeline, as ParseEntries makes them in a real run (a
            # Create of 2,000 ready-made dataclasses costs Beam more than the fetching does).
            fetched = (pipeline | beam.Create(urls) | "Entries" >> beam.Map(_entry)
                       | FetchPages(settings, DEFAULT_POLITENESS))
            fetched.pages | "Done" >> beam.Map(lambda page: None)
        newsbeam_seconds = time.perf_counter() - started
        newsbeam_cpu = time.process_time() - cpu_started  # this process: client, threads, Beam
        ours.send("report")
        peak, served = ours.recv()

        started = time.perf_counter()
        with httpx.Client() as client:
            for url in urls:
                client.get(url).raise_for_status()
        sequential_seconds = time.perf_counter() - started
    finally:
        ours.send("stop")
        site.join(timeout=10)

    newsbeam_rate = args.pages / newsbeam_seconds
    sequential_rate = args.pages / sequential_seconds
    print(f"pages: {args.pages} from {len(HOSTS)} hosts, {args.latency * 1000:.0f} ms latency")
    print(f"newsbeam FetchPages: {newsbeam_seconds:.2f} s, {newsbeam_rate:.1f} pages/s"
          f" (per-host limit {DEFAULT_POLITENESS.per_host},"
          f" {DEFAULT_POLITENESS.workers} concurrent per worker; requests served {served})")
    print(f"  CPU of the fetching process: {newsbeam_cpu * 1000 / args.pages:.2f} ms per page"
          " (HTTP client, fetch threads, Beam)")
    print(f"sequential loop:     {sequential_seconds:.2f} s, {sequential_rate:.1f} pages/s")
    print(f"speed-up: {newsbeam_rate / sequential_rate:.1f}x")
    print(f"most concurrent requests one host saw: {peak}"
          f" ({'within' if peak <= DEFAULT_POLITENESS.per_host else 'OVER'} the limit)")


if __name__ == "__main__":
    main()
