"""A stream on Prism for ten minutes or more over loopback feeds that keep changing, with ids
remembered for a minute: do the ids it holds and its memory stay flat?

The site runs in its own process: 200 feeds on 10 hosts (127.0.2.1-10), each listing its latest
article; at every poll a fifth of the feeds have a new one (so an article leaves its feed within
the TTL, as on a busy feed, and is written once). `newsbeam stream` runs on Prism with
`--poll-interval 10s --window 30s --dedup-ttl 1m --state none`. Every second the benchmark
samples the resident memory of the stream's Python processes and of Prism; at the end it
prints, per window, the records written, the ids remembered and forgotten, the ids held (all
remembered less all forgotten so far) and the memory at the window's end.

    .venv/bin/python benchmarks/stream_soak.py [--minutes 10] [--prism PATH]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.processes import group_usage
from pipeline import demo
from pipeline.demo.loopback import LoopbackServer, RequestHandler, Route

HOSTS = [f"127.0.2.{n}" for n in range(1, 11)]
FEEDS = 200
LISTED = 1  # articles a feed lists: its latest
CHANGE_EVERY = 5  # a feed gains an article at one request in five
HTML = {"Content-Type": "text/html; charset=utf-8"}
MiB = 1 << 20


def serve(polls: int, connection) -> None:  # noqa: ANN001
    """The site, in its own process, until told to stop."""
    stories = demo.sample_articles()
    servers = [LoopbackServer({}, host=host).start() for host in HOSTS]
    lock = threading.Lock()
    asked: Counter[int] = Counter()

    def feed_handler(n: int, server: LoopbackServer) -> object:
        def handle(handler: RequestHandler) -> None:
            with lock:
                asked[n] += 1
                latest = (asked[n] + n) // CHANGE_EVERY
            items = "".join(
                f"<item><title>Story {n}.{v}</title><link>{server.url(f'/a/{n}/{v}.html')}"
                "</link></item>" for v in range(max(0, latest - LISTED + 1), latest + 1))
            body = (f"<?xml version='1.0'?><rss version='2.0'><channel><title>Feed {n}"
                    f"</title>{items}</channel></rss>").encode()
            handler.send_route(Route(body, headers={
                "Content-Type": "application/rss+xml", "ETag": f'"{n}.{latest}"'}))
        return handle

    def page_handler(server: LoopbackServer) -> object:
        def handle(handler: RequestHandler) -> None:
            _, _, n, v = handler.path.split("/")
            story = dict(stories[int(n) % len(stories)])
            story["paragraphs"] = [*story["paragraphs"], f"Update {v} of feed {n}."]
            handler.send_route(Route(demo.render_page(story, server.base_url), headers=HTML))
        return handle

    for n in range(FEEDS):
        server = servers[n % len(servers)]
        server.routes[f"/feed/{n}.xml"] = feed_handler(n, server)
        for v in range((polls + n) // CHANGE_EVERY + 2):  # every article it will list
            server.routes[f"/a/{n}/{v}.html"] = page_handler(server)
    connection.send([servers[n % len(servers)].url(f"/feed/{n}.xml") for n in range(FEEDS)])
    connection.recv()
    for server in servers:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--prism", default=os.environ.get("NEWSBEAM_PRISM"))
    parser.add_argument("--log", help="keep the stream's log in this file")
    args = parser.parse_args()
    if not args.prism:
        parser.error("--prism PATH (or NEWSBEAM_PRISM): a Prism binary (see README)")
    ours, theirs = multiprocessing.Pipe()
    polls = int(args.minutes * 6) + 30  # polls are 10 s apart, with room to spare
    site = multiprocessing.Process(target=serve, args=(polls, theirs))
    site.start()
    urls = ours.recv()
    samples: list[tuple[float, int, int]] = []  # (time, Python RSS, Prism RSS)
    with tempfile.TemporaryDirectory() as folder:
        feeds_file = Path(folder) / "feeds.yaml"
        feeds_file.write_text("feeds:\n" + "".join(f"  - {url}\n" for url in urls))
        out = Path(folder) / "out"
        command = [
            sys.executable, "-m", "pipeline.cli", "stream", "--feeds", str(feeds_file),
            "--out", str(out), "--state=none", "--allow-private-networks",
            "--poll-interval=10s", "--window=30s", "--dedup-ttl=1m",
            f"--stop-after={int(args.minutes * 60)}s",
            "--runner=PrismRunner", f"--prism_location={args.prism}",
        ]
        log = Path(args.log or Path(folder) / "stream.log")
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                   stderr=log.open("w"), start_new_session=True)
        deadline = time.time() + args.minutes * 60 + 300
        try:
            while process.poll() is None and time.time() < deadline:
                usage = group_usage(process.pid)
                prism = sum(u.rss_bytes for u in usage if "prism" in u.command.split(" ", 1)[0])
                samples.append((time.time(), sum(u.rss_bytes for u in usage) - prism, prism))
                time.sleep(1.0)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            ours.send("stop")
            site.join(timeout=30)
        if process.returncode:
            print(log.read_text()[-3000:])
        summaries = []
        for path in out.glob("summary-*.json"):
            text, decoder, position = path.read_text(), json.JSONDecoder(), 0
            while text[position:].strip():
                position += len(text[position:]) - len(text[position:].lstrip())
                summary, position = decoder.raw_decode(text, position)
                summaries.append(summary)
    print(f"{FEEDS} feeds on {len(HOSTS)} hosts, a fifth of them changing per poll; Prism,"
          f" poll 10 s, window 30 s, dedup TTL 1 min, {args.minutes:g} min;"
          f" exit {process.returncode}")
    print("window end  records  remembered  forgotten  ids held  Python MiB  Prism MiB")
    held = 0
    for summary in sorted(summaries, key=lambda s: s["window"]["start"]):
        end = datetime.fromisoformat(summary["window"]["end"].replace("Z", "+00:00"))
        ids = summary["ids"]
        held += ids["remembered"] - ids["forgotten"]
        memory = [(python, prism) for at, python, prism in samples if at <= end.timestamp()]
        python, prism = memory[-1] if memory else (0, 0)
        print(f"{end:%H:%M:%S}    {summary['entries']['records']:7}  {ids['remembered']:10}"
              f"  {ids['forgotten']:9}  {held:8}  {python / MiB:10.0f}  {prism / MiB:9.0f}")


if __name__ == "__main__":
    main()
