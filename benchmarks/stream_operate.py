"""Operating a stream: a stream on Prism over loopback feeds that change while it runs (some keep
bringing articles, some stop changing, some start failing, some disappear), with a state store,
`--feed-health` and `--metrics-port`. It scrapes the metrics while the stream runs, then prints
how each feed's health class moved window by window, writes `newsbeam report` and, where
Chromium is installed, a screenshot of it.

Feeds (12, on three hosts 127.0.3.1-3): 4 `growing` (a new article every other poll), 2
`unchanged` (304 after the first answer), 3 `failing` (503 from a third of the way in) and 3
`gone` (404 from a third of the way in). Expected, by the README's rule: growing and unchanged
stay healthy; failing becomes failing after its third failed poll; gone becomes dead at its
first 404. (`quiet` needs a day without articles; tests/test_feed_health.py shows it.)

    .venv/bin/python benchmarks/stream_operate.py [--minutes 3] [--prism PATH] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import demo
from pipeline.demo.loopback import LoopbackServer, RequestHandler, Route

HOSTS = [f"127.0.3.{n}" for n in (1, 2, 3)]
KINDS = ["growing"] * 4 + ["unchanged"] * 2 + ["failing"] * 3 + ["gone"] * 3
HTML = {"Content-Type": "text/html; charset=utf-8"}
RSS = {"Content-Type": "application/rss+xml"}


class Site:
    """The feeds and their pages, changing as the stream runs."""

    def __init__(self, turn_at: float) -> None:
        self.turn_at = turn_at  # when failing feeds start failing and gone ones go
        self.servers = [LoopbackServer({}, host=host).start() for host in HOSTS]
        self.asked: dict[int, int] = defaultdict(int)
        self.lock = threading.Lock()
        stories = demo.sample_articles()
        self.urls = []
        for n, kind in enumerate(KINDS):
            server = self.servers[n % len(self.servers)]
            server.routes[f"/feed-{n}.xml"] = self._feed(n, kind, server)
            for v in range(40):
                story = stories[(n + v) % len(stories)]
                server.routes[f"/a/{n}/{v}.html"] = Route(
                    demo.render_page({**story, "path": f"/a/{n}/{v}.html"}, server.base_url),
                    headers=HTML)
            self.urls.append(server.url(f"/feed-{n}.xml"))

    def _feed(self, n: int, kind: str, server: LoopbackServer) -> object:
        def handle(handler: RequestHandler) -> None:
            with self.lock:
                self.asked[n] += 1
                asked = self.asked[n]
            late = time.time() >= self.turn_at
            if kind == "failing" and late:
                handler.send_route(Route(b"busy", 503))
                return
            if kind == "gone" and late:
                handler.send_route(Route(b"", 404))
                return
            latest = 1 if kind == "unchanged" else 1 + asked // 2
            items = "".join(
                f"<item><title>Story {n}.{v}</title><link>{server.url(f'/a/{n}/{v}.html')}"
                "</link></item>" for v in range(max(0, latest - 3), min(latest, 40)))
            body = (f"<?xml version='1.0'?><rss version='2.0'><channel><title>{kind} {n}"
                    f"</title>{items}</channel></rss>").encode()
            etag = f'"{n}-{latest}"'
            if handler.headers.get("If-None-Match") == etag:
                handler.send_route(Route(b"", 304, headers={"ETag": etag}))
            else:
                handler.send_route(Route(body, headers={**RSS, "ETag": etag}))
        return handle

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def scrape(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--prism", default=os.environ.get("NEWSBEAM_PRISM"))
    parser.add_argument("--out", default=None, help="where to keep the outputs and the report")
    args = parser.parse_args()
    work = Path(args.out or tempfile.mkdtemp(prefix="newsbeam-operate-"))
    work.mkdir(parents=True, exist_ok=True)
    seconds = args.minutes * 60
    site = Site(turn_at=time.time() + seconds / 3)
    feeds = work / "feeds.yaml"
    feeds.write_text("feeds:\n" + "".join(f"  - url: {url}\n" for url in site.urls))
    port = 19400 + os.getpid() % 500
    command = [sys.executable, "-m", "pipeline.cli", "stream", "--feeds", str(feeds),
               "--out", str(work / "out"), f"--state=sqlite:{work / 'state.db'}",
               "--allow-private-networks", "--poll-interval=5s", "--window=20s",
               f"--stop-after={int(seconds)}s", f"--feed-health=jsonl:{work / 'health'}",
               f"--metrics-port={port}", "--runner=PrismRunner"]
    if args.prism:
        command.append(f"--prism_location={args.prism}")
    started = time.time()
    stream = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              start_new_session=True)
    print(f"stream on Prism for {args.minutes:g} min; failing and gone feeds turn at"
          f" {seconds / 3:.0f} s; outputs in {work}")
    watched = ("newsbeam_feeds_polled_total", "newsbeam_feeds_not_modified_total",
               "newsbeam_feeds_failed_total{reason=http_status}", "newsbeam_records_total",
               "newsbeam_records_written_total{sink=jsonl}",
               "newsbeam_seconds_since_window_closed")
    try:
        while stream.poll() is None:
            time.sleep(15)
            try:
                found = scrape(port)
            except httpx.HTTPError:
                continue
            print(f"  {time.time() - started:5.0f} s  " + "  ".join(
                f"{name.removeprefix('newsbeam_')} {found.get(name, 0):g}" for name in watched))
    except KeyboardInterrupt:
        os.killpg(stream.pid, signal.SIGINT)
    finally:
        site.stop()
    _, stderr = stream.communicate(timeout=120)
    if stream.returncode:
        print(stderr.decode()[-3000:])
        raise SystemExit(stream.returncode)
    # How each feed's class moved, window by window (a row per window that polled it).
    classes: dict[str, list[str]] = defaultdict(list)
    for path in sorted((work / "health").glob("feed-health-*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if not classes[row["id"]] or classes[row["id"]][-1] != row["health_class"]:
                classes[row["id"]].append(row["health_class"])
    print("health class per feed, as it moved:")
    for n, url in enumerate(site.urls):
        print(f"  {KINDS[n]:9s} {url.rsplit('/', 1)[1]:12s} {' -> '.join(classes[url])}")
    page, shot = work / "report.html", work / "report.png"
    subprocess.run([sys.executable, "-m", "pipeline.cli", "report", "--out", str(work / "out"),
                    f"--state=sqlite:{work / 'state.db'}", "--html", str(page)], check=True)
    chromium, unshare = shutil.which("chromium"), shutil.which("unshare")
    if chromium and unshare:
        subprocess.run([unshare, "--net", chromium, "--headless=new", "--no-sandbox",
                        "--disable-gpu", "--disable-background-networking",
                        "--virtual-time-budget=15000", "--window-size=1300,3300",
                        f"--screenshot={shot}", page.as_uri()], capture_output=True, check=True)
        print(f"screenshot: {shot}")


if __name__ == "__main__":
    main()
