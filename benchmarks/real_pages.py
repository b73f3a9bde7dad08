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
- trafilatura's command line over the page URLs (--parallel one thread per host, JSON out so
  each text names its URL; its SLEEP_TIME set to 0).

Rounds are interleaved; it prints, per contender, each round's wall seconds and CPU seconds
(its processes and their children), the median, and the macro F1 of the bags of whitespace
tokens against the gold text (as benchmarks/extraction_quality.py scores them; a page with no
text scores 0), and the ratio of newsbeam's median time to the script's.

    .venv/bin/python benchmarks/real_pages.py [--rounds 3] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import configparser
import gzip
import json
import multiprocessing
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.extraction_quality import CORPUS, token_prf
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


def run_newsbeam(feed_urls: list[str], work: Path) -> dict[str, str]:
    feeds = work / "feeds.yaml"
    feeds.write_text("feeds:\n" + "".join(f"  - {url}\n" for url in feed_urls))
    out = work / "newsbeam-out"
    subprocess.run([str(BIN / "newsbeam"), "run", "--feeds", str(feeds), "--out", str(out),
                    "--state=none", "--allow-private-networks"], check=True,
                   stdout=subprocess.DEVNULL)
    texts = {}
    for path in out.glob("articles-*.jsonl"):
        for line in path.open(encoding="utf-8"):
            record = json.loads(line)
            texts[record["url"]] = record["text"]
    return texts


def run_script(feed_urls: list[str], work: Path) -> dict[str, str]:
    (work / "feeds.json").write_text(json.dumps(feed_urls))
    subprocess.run([sys.executable, "-c", SCRIPT, str(work / "feeds.json"),
                    str(work / "texts.json")], check=True)
    texts: dict[str, str] = json.loads((work / "texts.json").read_text())
    return texts


def run_trafilatura_cli(links: list[str], work: Path) -> dict[str, str]:
    config = configparser.ConfigParser()
    config.read_string(resources.files("trafilatura").joinpath("settings.cfg").read_text())
    config["DEFAULT"]["SLEEP_TIME"] = "0"
    config["DEFAULT"]["SSRF_PROTECTION"] = "off"  # the site is on loopback addresses
    settings = work / "trafilatura.cfg"
    with settings.open("w") as handle:
        config.write(handle)
    urls = work / "urls.txt"
    urls.write_text("\n".join(links) + "\n")
    done = subprocess.run([str(BIN / "trafilatura"), "--input-file", str(urls), "--parallel",
                           str(len(HOSTS)), "--json", "--config-file", str(settings)],
                          check=True, capture_output=True, text=True)
    texts = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            document = json.loads(line)
            texts[document.get("source") or document.get("url") or ""] = (
                document.get("text") or "")
    return texts


def f1(texts: dict[str, str], gold: list[dict]) -> tuple[float, int]:
    """Macro F1 over every gold page (0 for a page with no text), and the pages with text."""
    by_id = {url.rsplit("/", 1)[-1].removesuffix(".html"): text for url, text in texts.items()}
    scores = [token_prf(by_id.get(item["id"], ""), item["body"])[2] for item in gold]
    return sum(scores) / len(scores), sum(1 for text in by_id.values() if text)


def timed(run, inputs, work: Path) -> tuple[float, float, dict[str, str]]:  # noqa: ANN001
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    texts = run(inputs, work)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, texts


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
    contenders = {
        "newsbeam run": (run_newsbeam, feed_urls),
        "plain threaded script": (run_script, feed_urls),
        "trafilatura CLI": (run_trafilatura_cli, links),
    }
    walls: dict[str, list[float]] = {name: [] for name in contenders}
    print(f"{len(gold)} real pages on {len(HOSTS)} hosts, {args.latency * 1000:.0f} ms per"
          f" request; {args.rounds} rounds")
    try:
        for round_ in range(1, args.rounds + 1):
            for name, (run, inputs) in contenders.items():
                with tempfile.TemporaryDirectory() as tmp:
                    wall, cpu, texts = timed(run, inputs, Path(tmp))
                score, extracted = f1(texts, gold)
                walls[name].append(wall)
                print(f"round {round_}, {name + ':':22} {wall:5.2f} s wall, {cpu:5.2f} s CPU,"
                      f" {extracted} texts, F1 {score:.4f}", flush=True)
    finally:
        ours.send("stop")
        site.join(timeout=10)
    medians = {name: statistics.median(values) for name, values in walls.items()}
    print("median: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in medians.items()))
    print(f"newsbeam / script: {medians['newsbeam run'] / medians['plain threaded script']:.2f};"
          f" newsbeam / trafilatura CLI: "
          f"{medians['newsbeam run'] / medians['trafilatura CLI']:.2f}")


if __name__ == "__main__":
    main()
