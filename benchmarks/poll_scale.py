"""Batch cycles over 10,000 loopback feeds: `newsbeam run` with an SQLite and with a
PostgreSQL state, beside the plain threaded script a user would write, interleaved in one run.

The site runs in its own process: 10,000 RSS feeds on 50 hosts (127.0.4.1-50), every request
answered after 20 ms, with ETags. Each feed lists 20 entries out of a pool of 40 pages per
host (so the first cycle fetches the pool, 2,000 pages, not one page per entry). Cycle 1: every
feed in full. Then `--rounds` rounds of two cycles: 5% of the feeds list one new article of
their own (500 pages), the others answer 304; then nothing changed (10,000 answers of 304).
This machine's speed moves by a tenth or more from one minute to the next, so each round
gives its ratios and the last line their medians. For each cycle, each
contender runs in a process of its own, one after the other: `newsbeam run` (SQLite state),
`newsbeam run` (PostgreSQL state, on 127.0.0.1:5432), and the script (64 threads: requests
with a session per thread, feedparser, trafilatura; ETags and the links it has seen kept
between cycles; no per-host limit). It prints wall seconds, CPU seconds of all the
contender's processes (the machine's busy time less the site's: benchmarks/cpu.py), and CPU per
feed polled and per page extracted.

    .venv/bin/python benchmarks/poll_scale.py [--feeds 10000] [--rounds 3] [--no-postgres]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cpu import timed
from pipeline import demo
from pipeline.demo.loopback import LoopbackServer, RequestHandler, Route

HOSTS = [f"127.0.4.{n}" for n in range(1, 51)]
LATENCY = 0.020
ENTRIES = 20
POOL = 40  # shared article pages per host
CHANGED_EVERY = 20  # each 5%-changed cycle: one feed in 20 lists a new article
HTML = {"Content-Type": "text/html; charset=utf-8"}
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test?table_prefix=pollscale_"


def new_articles(feed: int, changes: int) -> int:
    """Articles of its own `feed` lists after `changes` changes (one more each, for 5% of
    the feeds)."""
    return changes if feed % CHANGED_EVERY == 0 else 0


def serve(feeds: int, changes, rounds: int, connection) -> None:  # noqa: ANN001
    """The site, in its own process, until told to stop; then its request counts go back."""
    stories = demo.sample_articles()
    servers = [LoopbackServer({}, host=host).start() for host in HOSTS]
    lock = threading.Lock()
    asked: Counter[str] = Counter()

    def page(server: LoopbackServer, n: int, line: str) -> Route:
        story = dict(stories[n % len(stories)])
        story["paragraphs"] = [*story["paragraphs"], line]
        return Route(demo.render_page(story, server.base_url), headers=HTML)

    def delayed(route: Route, kind: str) -> object:
        def handle(handler: RequestHandler) -> None:
            with lock:
                asked[kind] += 1
            time.sleep(LATENCY)
            handler.send_route(route)
        return handle

    def feed_handler(n: int, server: LoopbackServer) -> object:
        def handle(handler: RequestHandler) -> None:
            version = new_articles(n, changes.value)
            etag = f'"{n}.{version}"'
            time.sleep(LATENCY)
            if handler.headers.get("If-None-Match") == etag:
                with lock:
                    asked["feed 304"] += 1
                handler.send_route(Route(b"", 304, headers={"ETag": etag}))
                return
            with lock:
                asked["feed 200"] += 1
            links = [server.url(f"/pool/{(n + k) % POOL}.html") for k in range(ENTRIES)]
            links += [server.url(f"/a/{n}/{v}.html") for v in range(1, version + 1)]
            items = "".join(f"<item><title>Story {n} {k}</title><link>{link}</link></item>"
                            for k, link in enumerate(links))
            body = (f"<?xml version='1.0'?><rss version='2.0'><channel><title>Feed {n}"
                    f"</title>{items}</channel></rss>").encode()
            handler.send_route(Route(body, headers={"Content-Type": "application/rss+xml",
                                                    "ETag": etag}))
        return handle

    for index, server in enumerate(servers):
        for k in range(POOL):
            server.routes[f"/pool/{k}.html"] = delayed(
                page(server, k, f"Pool story {k} of host {index}."), "page")
    for n in range(feeds):
        server = servers[n % len(servers)]
        server.routes[f"/feed/{n}.xml"] = feed_handler(n, server)
        for version in range(1, rounds + 1):
            server.routes[f"/a/{n}/{version}.html"] = delayed(
                page(server, n, f"News {version} of feed {n}."), "page")
    connection.send([servers[n % len(servers)].url(f"/feed/{n}.xml") for n in range(feeds)])
    while True:
        message = connection.recv()
        if message == "counts":
            with lock:
                connection.send(dict(asked))
                asked.clear()
        else:
            break
    for server in servers:
        server.stop()


SCRIPT = '''
import json, sys, threading
from concurrent.futures import ThreadPoolExecutor
import feedparser, requests, trafilatura

feeds_file, state_file = sys.argv[1], sys.argv[2]
urls = json.load(open(feeds_file))
try:
    state = json.load(open(state_file))
except FileNotFoundError:
    state = {"etags": {}, "seen": []}
etags, seen, lock = state["etags"], set(state["seen"]), threading.Lock()
local = threading.local()

def session():
    if not hasattr(local, "session"):
        local.session = requests.Session()
    return local.session

def poll(url):
    headers = {"If-None-Match": etags[url]} if url in etags else {}
    response = session().get(url, headers=headers, timeout=30)
    if response.status_code == 304:
        return
    etags[url] = response.headers.get("ETag", "")
    for entry in feedparser.parse(response.content).entries:
        with lock:
            if entry.link in seen:
                continue
            seen.add(entry.link)
        trafilatura.extract(session().get(entry.link, timeout=30).text)

with ThreadPoolExecutor(64) as pool:
    list(pool.map(poll, urls))
json.dump({"etags": etags, "seen": sorted(seen)}, open(state_file, "w"))
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="newsbeam-pollscale-"))
    changes = multiprocessing.Value("i", 0)
    ours, theirs = multiprocessing.Pipe()
    site = multiprocessing.Process(target=serve, args=(args.feeds, changes, args.rounds, theirs))
    site.start()
    urls: list[str] = ours.recv()
    (work / "feeds.yaml").write_text("feeds:\n" + "".join(f"  - url: {u}\n" for u in urls))
    (work / "feeds.json").write_text(json.dumps(urls))
    if not args.no_postgres:
        import psycopg

        with psycopg.connect(POSTGRES.split("?")[0], autocommit=True) as admin:
            for (table,) in admin.execute("SELECT tablename FROM pg_tables WHERE tablename"
                                          " LIKE 'pollscale_%'").fetchall():
                admin.execute(f"DROP TABLE {table}")
    newsbeam = [sys.executable, "-m", "pipeline.cli", "run", "--feeds", str(work / "feeds.yaml"),
                "--allow-private-networks"]
    contenders = {
        "newsbeam (SQLite state)": [*newsbeam, "--out", str(work / "sqlite"),
                                    f"--state=sqlite:{work / 'state.db'}"],
        "newsbeam (PostgreSQL state)": [*newsbeam, "--out", str(work / "postgres"),
                                        f"--state={POSTGRES}"],
        "plain threaded script": [sys.executable, "-c", SCRIPT, str(work / "feeds.json"),
                                  str(work / "script-state.json")],
    }
    if args.no_postgres:
        del contenders["newsbeam (PostgreSQL state)"]
    print(f"{args.feeds} feeds on {len(HOSTS)} hosts, {LATENCY * 1000:.0f} ms per request;"
          f" outputs in {work}")
    cycles = [(1, "all feeds in full", 0)]
    for number in range(args.rounds):
        cycles += [(2 + 2 * number, "5% changed", number + 1),
                   (3 + 2 * number, "nothing changed", number + 1)]
    ratios: dict[tuple[str, str], list[float]] = {}
    for number, kind, version in cycles:
        changes.value = version
        print(f"cycle {number} ({kind}):")
        times = {}
        for name, command in contenders.items():
            ours.send("counts")
            ours.recv()  # the counts so far belong to no one
            wall, cpu = timed(command, site.pid, ok=(0, 3))
            ours.send("counts")
            asked = ours.recv()
            pages = asked.get("page", 0)
            polled = asked.get("feed 200", 0) + asked.get("feed 304", 0)
            times[name] = wall
            print(f"  {name:28s} {wall:6.1f} s wall, {cpu:6.1f} s CPU"
                  f" ({polled} feeds polled: {asked.get('feed 304', 0)} x 304; {pages} pages);"
                  f" {cpu / max(polled, 1) * 1000:.2f} ms CPU per feed,"
                  f" {cpu / pages * 1000 if pages else 0:.1f} ms CPU per page")
        script = times.pop("plain threaded script")
        for name, wall in times.items():
            ratios.setdefault((kind, name), []).append(wall / script)
        print("  ratio to the script: " + ", ".join(
            f"{name} {wall / script:.2f}" for name, wall in times.items()))
    print("median ratios to the script: " + "; ".join(
        f"{kind}, {name}: {statistics.median(values):.2f}"
        for (kind, name), values in ratios.items()))
    ours.send("stop")
    site.join(timeout=30)


if __name__ == "__main__":
    main()
