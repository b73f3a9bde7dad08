"""265 real article pages through `newsbeam run`, beside the plain threaded script a user would
write and trafilatura's command line, with the F1 of each against the gold text.

The site runs in its own process: the pages of ../shared/corpus/extraction (read from there,
not copied) spread over 10 hosts (127.0.5.1-10), 26 or 27 each, every response after 50 ms,
and an RSS feed per host listing its pages. Each contender does the same work, fetch every feed
and page and extract the article's text, in a process of its own, timed from start to finish:

- `newsbeam run` (the console script: start-up, imports and Beam included; no state, JSON Lines
  out; its per-host limit, 2 at once);
- the plain threaded script: feeds, then one thread per page (so 26 or 27 at once per host),
  requests and trafilatura.extract on the page's bytes, all in one interpreter;
- trafilatura's command line over the page URLs (--parallel one thread per host; its
  SLEEP_TIME set to 0); timed only, as its plain output does not name the page of a text.

Rounds are interleaved; it prints, per contender, each round's wall seconds and CPU seconds
(all its processes: benchmarks/cpu.py), the median, and the macro F1 of the bags of whitespace
tokens against the gold text (as benchmarks/extraction_quality.py scores them; a page with no
text scores 0), and the ratio of newsbeam's median time to the script's. A round in which a
contender other than newsbeam crashed (the threaded script has died in lxml, a thread per page)
is reported and left out of its median; newsbeam failing stops the benchmark.

    .venv/bin/python benchmarks/real_pages.py [--rounds 3] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cpu import timed
from benchmarks.extraction_quality import CORPUS, token_prf
from benchmarks.run_throughput import trafilatura_command
from pipeline.demo.loopback import LoopbackServer, RequestHandler, Route

HOSTS = [f"127.0.5.{n}" for n in range(1, 11)]
BIN = Path(sys.executable).parent


def serve(gold: list[dict], latency: float, connection) -> None:  # noqa: ANN001
    """The site, in its own process, until told to stop."""
    servers = [LoopbackServer({}, host=host).start() for host in HOSTS]

    def delayed(route: Route):  # noqa: ANN202
        def handle(handler: RequestHandler) -> None:
            time.sleep(latency)
            handler.send_route(route)
        return handle

    listed: dict[int, list[str]] = {n: [] for n in range(len(servers))}
    links = []
    for index, item in enumerate(gold):
        host = index % len(servers)
        html = gzip.decompress((CORPUS / item["html_file"]).read_bytes())
        path = f"/a/{item['id']}.html"
        servers[host].routes[path] = delayed(Route(html, headers={"Content-Type": "text/html"}))
        links.append(servers[host].url(path))
        listed[host].append(
            f"<item><title>{item['id']}</title><link>{servers[host].url(path)}</link></item>")
    for host, server in enumerate(servers):
        rss = ("<?xml version='1.0'?><rss version='2.0'><channel><title>Host"
               f" {host}</title>{''.join(listed[host])}</channel></rss>").encode()
        server.routes["/feed.xml"] = delayed(Route(rss, headers={
            "Content-Type": "application/rss+xml"}))
    connection.send(([server.url("/feed.xml") for server in servers], links))
    connection.recv()
    for server in servers:
        server.stop()


SCRIPT = '''
import json, sys
from concurrent.futures import ThreadPoolExecutor
import feedparser, requests, trafilatura

feed_urls = json.load(open(sys.argv[1]))
with ThreadPoolExecutor(len(feed_urls)) as pool:
    feeds = list(pool.map(lambda url: requests.get(url, timeout=30).content, feed_urls))
links = [entry.link for body in feeds for entry in feedparser.parse(body).entries]

def fetch_and_extract(url):
    return url, trafilatura.extract(requests.get(url, timeout=30).content) or ""

with ThreadPoolExecutor(len(links)) as pool:
    texts = dict(pool.map(fetch_and_extract, links))
json.dump(texts, open(sys.argv[2], "w"))
'''


def newsbeam(feed_urls: list[str], work: Path) -> list[str]:
    feeds = work / "feeds.yaml"
    feeds.write_text("feeds:\n" + "".join(f"  - {url}\n" for url in feed_urls))
    return [str(BIN / "newsbeam"), "run", "--feeds", str(feeds), "--out", str(work / "out"),
            "--state=none", "--allow-private-networks"]


def newsbeam_texts(work: Path) -> dict[str, str]:
    texts = {}
    for path in (work / "out").glob("articles-*.jsonl"):
        for line in path.open(encoding="utf-8"):
            record = json.loads(line)
            texts[record["url"]] = record["text"]
    return texts


def script(feed_urls: list[str], work: Path) -> list[str]:
    (work / "feeds.json").write_text(json.dumps(feed_urls))
    return [sys.executable, "-c", SCRIPT, str(work / "feeds.json"), str(work / "texts.json")]


def script_texts(work: Path) -> dict[str, str]:
    texts: dict[str, str] = json.loads((work / "texts.json").read_text())
    return texts


def f1(texts: dict[str, str], gold: list[dict]) -> tuple[float, int]:
    """Macro F1 over every gold page (0 for a page with no text), and the pages with text."""
    by_id = {url.rsplit("/", 1)[-1].removesuffix(".html"): text for url, text in texts.items()}
    scores = [token_prf(by_id.get(item["id"], ""), item["body"])[2] for item in gold]
    return sum(scores) / len(scores), sum(1 for text in by_id.values() if text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        raise SystemExit(f"the corpus is not at {CORPUS}: this benchmark reads its pages there")
    gold = [json.loads(line) for line in (CORPUS / "gold.jsonl").open(encoding="utf-8")]
    ours, theirs = multiprocessing.Pipe()
    site = multiprocessing.Process(target=serve, args=(gold, args.latency, theirs))
    site.start()
    feed_urls, links = ours.recv()
    contenders: dict[str, tuple[Callable[..., list[str]], Any, Callable | None]] = {
        "newsbeam run": (newsbeam, feed_urls, newsbeam_texts),
        "plain threaded script": (script, feed_urls, script_texts),
        "trafilatura CLI": (trafilatura_command, links, None),
    }
    walls: dict[str, list[float]] = {name: [] for name in contenders}
    failures: Counter[str] = Counter()
    print(f"{len(gold)} real pages on {len(HOSTS)} hosts, {args.latency * 1000:.0f} ms per"
          f" request; {args.rounds} rounds")
    try:
        for round_ in range(1, args.rounds + 1):
            for name, (command, inputs, read) in contenders.items():
                with tempfile.TemporaryDirectory() as tmp:
                    try:
                        wall, cpu = timed(command(inputs, Path(tmp)), site.pid)
                    except SystemExit as failed:  # another's crashed round: reported
                        if name == "newsbeam run":
                            raise
                        failures[name] += 1
                        print(f"round {round_}, {name + ':':22} failed: "
                              f"{str(failed).strip().splitlines()[-1]}", flush=True)
                        continue
                    quality = "F1 not scored (its output does not name the page)"
                    if read is not None:
                        score, extracted = f1(read(Path(tmp)), gold)
                        quality = f"{extracted} texts, F1 {score:.4f}"
                walls[name].append(wall)
                print(f"round {round_}, {name + ':':22} {wall:5.2f} s wall, {cpu:5.2f} s CPU,"
                      f" {quality}", flush=True)
    finally:
        ours.send("stop")
        site.join(timeout=10)
    if failures:
        print("failed rounds (not in the medians): " + ", ".join(
            f"{name} {count} of {args.rounds}" for name, count in failures.items()))
    medians = {name: statistics.median(values) for name, values in walls.items() if values}
    print("median: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in medians.items()))
    print("; ".join(f"newsbeam / {name}: {medians['newsbeam run'] / medians[name]:.2f}"
                    for name in ("plain threaded script", "trafilatura CLI") if name in medians))


if __name__ == "__main__":
    main()
