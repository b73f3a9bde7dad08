"""`newsbeam run` end to end on many hosts with latency, next to plain threads and trafilatura.

The site runs in its own process: 20 hosts (127.0.0.2-21), each with an RSS feed of 30 items,
30 article pages (the demo sample's page template around its stories, about 6 KB each) and a
robots.txt, every response delayed by --latency (100 ms). Every contender does the same work,
fetch every page and extract its text, and is timed from start to finish:

- `newsbeam run` (the console script, in its own process: start-up, imports and Beam included;
  no state, JSON Lines out; per-host limit 2),
- plain threads: one thread per page, so 30 connections per host, the standard library's HTTP
  client and trafilatura.extract, after fetching the feeds and parsing them with feedparser (a
  shared httpx client is far slower with hundreds of threads: its pool serializes them),
- trafilatura's command line over the page URLs (--parallel one thread per host; it takes one
  URL per host at a time, with its SLEEP_TIME set to 0).

For each it prints the time, pages per second and the most requests one host saw at once, and
for newsbeam when its feed and page requests happened (where its time goes).

    .venv/bin/python benchmarks/run_throughput.py [--hosts 20] [--per-host 30] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import configparser
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.servers

import feedparser
import trafilatura

from pipeline.demo.loopback import Handler, RequestHandler, Route
from tests.servers import UNIQUE_LINE, ConcurrencyMeter, news_site

BIN = Path(sys.executable).parent


def serve(hosts: list[str], per_host: int, latency: float, connection) -> None:  # noqa: ANN001
    """The site, in its own process so its work does not compete with the contenders'."""
    meters = {host: ConcurrencyMeter() for host in hosts}
    log: list[tuple[float, str]] = []  # (wall time, path) of every request as it arrives

    def slow(meter: ConcurrencyMeter) -> Callable[[Route], Handler]:
        def wrap(route: Route) -> Handler:
            def handle(handler: RequestHandler) -> None:
                log.append((time.time(), handler.path))
                with meter:
                    time.sleep(latency)
                    handler.send_route(route)
            return handle
        return wrap

    servers = [news_site(host, per_host, slow(meters[host])) for host in hosts]
    connection.send([server.url("/feed.xml") for server in servers])
    while (command := connection.recv()) != "stop":
        if command == "report":
            connection.send((max(m.peak for m in meters.values()), list(log)))
            for meter in meters.values():
                meter.peak = 0
            log.clear()
    for server in servers:
        server.stop()


def run_newsbeam(feed_urls: list[str], work: Path) -> int:
    feeds = work / "feeds.yaml"
    feeds.write_text("feeds:\n" + "".join(f"  - {url}\n" for url in feed_urls))
    out = work / "newsbeam-out"
    subprocess.run([str(BIN / "newsbeam"), "run", "--feeds", str(feeds), "--out", str(out),
                    "--state=none", "--allow-private-networks"], check=True,
                   stdout=subprocess.DEVNULL)
    return json.loads((out / "run.json").read_text())["entries"]["records"]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        body: bytes = response.read()
        return body


def run_plain_threads(feed_urls: list[str]) -> tuple[int, list[str]]:
    """Feeds, then every page on its own thread (30 connections per host), extracted there."""
    with ThreadPoolExecutor(len(feed_urls)) as pool:
        feeds = list(pool.map(_get, feed_urls))
    links = [entry.link for body in feeds for entry in feedparser.parse(body).entries]

    def fetch_and_extract(url: str) -> bool:
        return bool(trafilatura.extract(_get(url)))

    with ThreadPoolExecutor(len(links)) as pool:
        done = sum(pool.map(fetch_and_extract, links))
    return done, links


def trafilatura_command(links: list[str], work: Path) -> list[str]:
    """trafilatura's command line over `links`: one thread per host (it takes one URL per host
    at a time), SLEEP_TIME 0, its SSRF protection off for the loopback site; texts to stdout."""
    config = configparser.ConfigParser()
    config.read_string(resources.files("trafilatura").joinpath("settings.cfg").read_text())
    config["DEFAULT"]["SLEEP_TIME"] = "0"
    config["DEFAULT"]["SSRF_PROTECTION"] = "off"  # the site is on loopback addresses
    settings = work / "trafilatura.cfg"
    with settings.open("w") as handle:
        config.write(handle)
    urls = work / "urls.txt"
    urls.write_text("\n".join(links) + "\n")
    hosts = len({link.split("/")[2] for link in links})
    return [str(BIN / "trafilatura"), "--input-file", str(urls), "--parallel", str(hosts),
            "--config-file", str(settings)]


def run_trafilatura_cli(links: list[str], work: Path) -> int:
    done = subprocess.run(trafilatura_command(links, work), check=True, capture_output=True,
                          text=True)
    # Texts go to stdout (its output files are named by a hash near-duplicates share).
    return done.stdout.count(UNIQUE_LINE)


def timeline(log: list[tuple[float, str]], started: float) -> str:
    feeds = [t - started for t, path in log if path == "/feed.xml"]
    pages = [t - started for t, path in log if path.startswith("/news/")]
    if not feeds or not pages:
        return "no requests seen"
    return (f"feeds requested {min(feeds):.2f}-{max(feeds):.2f} s, pages requested"
            f" {min(pages):.2f}-{max(pages):.2f} s after start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--per-host", type=int, default=30)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each contender, interleaved (the median is reported)")
    args = parser.parse_args()
    hosts = [f"127.0.0.{n}" for n in range(2, 2 + args.hosts)]
    pages = args.hosts * args.per_host
    ours, theirs = multiprocessing.Pipe()
    site = multiprocessing.Process(target=serve,
                                   args=(hosts, args.per_host, args.latency, theirs))
    site.start()
    times: dict[str, list[float]] = {"newsbeam run": [], "plain threads": [],
                                     "trafilatura CLI": []}
    try:
        feed_urls = ours.recv()
        links = [f"{url.removesuffix('/feed.xml')}/news/{n}.html"
                 for url in feed_urls for n in range(args.per_host)]
        print(f"{pages} pages on {args.hosts} hosts ({args.per_host} each, an RSS feed per"
              f" host), {args.latency * 1000:.0f} ms latency; {args.rounds} rounds")
        contenders = (
            ("newsbeam run", "records", run_newsbeam, feed_urls),
            ("plain threads", "texts", lambda urls, _: run_plain_threads(urls)[0], feed_urls),
            ("trafilatura CLI", "texts", run_trafilatura_cli, links),
        )
        for round_ in range(1, args.rounds + 1):
            for name, unit, run, inputs in contenders:
                with tempfile.TemporaryDirectory() as tmp:
                    started = time.time()
                    done = run(inputs, Path(tmp))
                    seconds = time.time() - started
                ours.send("report")
                peak, log = ours.recv()
                times[name].append(seconds)
                print(f"round {round_}, {name + ':':17} {seconds:5.2f} s,"
                      f" {done / seconds:6.1f} pages/s, {done} {unit},"
                      f" at most {peak} requests per host at once")
                if name == "newsbeam run":
                    print(f"  where the time goes: {timeline(log, started)}")
    finally:
        ours.send("stop")
        site.join(timeout=10)
    print("median: " + ", ".join(f"{name} {statistics.median(values):.2f} s"
                                 for name, values in times.items()))


if __name__ == "__main__":
    main()
