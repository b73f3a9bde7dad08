"""Test and benchmark helpers around the loopback server: latency, a concurrency meter, a news
site built from the demo sample, and faults."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from pipeline import demo
from pipeline.demo.loopback import Handler, LoopbackServer, RequestHandler, Route

HTML = {"Content-Type": "text/html; charset=utf-8"}
RSS = "application/rss+xml"


class ConcurrencyMeter:
    """Counts requests in progress on one server: the most at once, and when each started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = 0
        self.peak = 0
        self.starts: list[float] = []
        self.paths: list[str] = []  # the path of each start, where the handler says it

    def __enter__(self) -> ConcurrencyMeter:
        return self._start("")

    def _start(self, path: str) -> ConcurrencyMeter:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
            self.starts.append(time.monotonic())
            self.paths.append(path)
        return self

    @contextlib.contextmanager
    def request(self, path: str) -> Iterator[None]:
        """A request to `path` in progress (its start noted with its path)."""
        self._start(path)
        try:
            yield
        finally:
            self.__exit__()

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self.current -= 1


def delayed(route: Route, delay: float, meter: ConcurrencyMeter | None = None) -> Handler:
    """A handler that answers `route` after `delay` seconds (latency), measured by `meter`."""

    def handle(handler: RequestHandler) -> None:
        with meter.request(handler.path) if meter else contextlib.nullcontext():
            time.sleep(delay)
            handler.send_route(route)

    return handle


# Every article page of news_site ends with a line of its own, so every text differs.
UNIQUE_LINE = "This is report number"


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def news_site(host: str, articles: int,
              wrap: Callable[[Route], Route | Handler] = lambda route: route) -> LoopbackServer:
    """A started news site on `host`: /feed.xml, an RSS feed listing `articles` pages at
    /news/N.html (the demo sample's page template around its stories, about 6 KB each), and a
    robots.txt that allows everything. `wrap` makes each route what is served (latency,
    faults)."""
    stories = demo.sample_articles()
    server = LoopbackServer({}, host=host).start()
    base = server.base_url
    items = []
    for n in range(articles):
        story = dict(stories[n % len(stories)])
        story["title"] = f"{story['title']} ({host} #{n})"
        shift = n % len(story["paragraphs"])
        story["paragraphs"] = (story["paragraphs"][shift:] + story["paragraphs"][:shift]
                               + [f"{UNIQUE_LINE} {n} from the {host} desk."])
        path = f"/news/{n}.html"
        server.routes[path] = wrap(Route(demo.render_page(story, base), headers=HTML))
        items.append(f"<item><title>{_xml(story['title'])}</title><link>{base}{path}</link>"
                     "<pubDate>Tue, 04 Mar 2025 07:45:00 GMT</pubDate></item>")
    feed = ("<?xml version='1.0'?><rss version='2.0'><channel><title>Desk</title>"
            + "".join(items) + "</channel></rss>").encode()
    server.routes["/feed.xml"] = wrap(Route(feed, headers={"Content-Type": RSS}))
    server.routes["/robots.txt"] = wrap(
        Route(b"User-agent: *\nAllow: /\n", headers={"Content-Type": "text/plain"}))
    return server


class Faults:
    """Fails about a third of the requests a route gets, at random but reproducibly (decided by
    the seed, the host, the path and how often it was asked for): a 500, a connection reset, or
    no answer within `hang` seconds. Records which host/path were served in the end."""

    def __init__(self, seed: int, hang: float) -> None:
        self._seed = seed
        self._hang = hang
        self._lock = threading.Lock()
        self.attempts: Counter[str] = Counter()
        self.served: set[str] = set()
        self.failures: Counter[str] = Counter()

    def wrap(self, route: Route) -> Handler:
        def handle(handler: RequestHandler) -> None:
            path = f"{handler.server.server_address[0]!s}{handler.path}"
            with self._lock:
                attempt = self.attempts[path]
                self.attempts[path] += 1
            draw = random.Random(f"{self._seed}:{path}:{attempt}").random()
            if draw < 1 / 9:
                self._failed("500")
                handler.send_route(Route(b"down for a moment", 500))
            elif draw < 2 / 9:
                self._failed("reset")
                # SO_LINGER with a zero timeout makes close() send a RST instead of a FIN.
                handler.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                handler.request.close()
                handler.close_connection = True
            elif draw < 3 / 9:
                self._failed("timeout")
                time.sleep(self._hang)
                handler.close_connection = True
            else:
                handler.send_route(route)
                with self._lock:
                    self.served.add(path)

        return handle

    def _failed(self, kind: str) -> None:
        with self._lock:
            self.failures[kind] += 1


class Hold:
    """Holds the requests of a route until released, and tells when one is waiting: a test
    can then act (kill a run, stop a server) while the run is at a known point."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.waiting = threading.Event()

    def wrap(self, route: Route) -> Handler:
        def handle(handler: RequestHandler) -> None:
            self.waiting.set()
            self._event.wait(timeout=120)
            handler.send_route(route)

        return handle

    def release(self) -> None:
        self._event.set()

    @staticmethod
    def passing(route: Route) -> Handler:
        """The route, answered at once (for the requests a test does not hold)."""
        return lambda handler: handler.send_route(route)


def story_pages(host: str = "127.0.0.1") -> LoopbackServer:
    """A started site with the demo sample's article pages at their paths (and no feed: tests
    add the one they need)."""
    server = LoopbackServer({}, host=host).start()
    for story in demo.sample_articles():
        server.routes[story["path"]] = Route(demo.render_page(story, server.base_url),
                                             headers=HTML)
    return server


class ChangingFeed:
    """A feed whose n-th request is answered with its n-th version (the last one from then on),
    each version with an ETag of its own, so an unchanged feed answers 304. A version lists
    (story, pubDate) pairs, or (story, pubDate, title) to retitle a story's item."""

    def __init__(self, site: LoopbackServer, versions: list[list[tuple[Any, ...]]],
                 extra_items: str = "", etag: bool = True) -> None:
        self.site, self.versions, self.requests = site, versions, 0
        self.extra_items = extra_items  # RSS items in every version, after the stories
        self.etag = etag  # without one, every request is answered in full

    def __call__(self, handler: RequestHandler) -> None:
        number = min(self.requests, len(self.versions) - 1)
        self.requests += 1
        stories = demo.sample_articles()
        items = "".join(
            f"<item><title>{(rest or [stories[n]['title']])[0]}</title>"
            f"<link>{self.site.url(stories[n]['path'])}</link><pubDate>{date}</pubDate></item>"
            for n, date, *rest in self.versions[number])
        etag = f'"{json.dumps(self.versions[number])}"'.replace('"', "'")
        handler.send_route(Route(
            f"<?xml version='1.0'?><rss version='2.0'><channel><title>Desk</title>{items}"
            f"{self.extra_items}</channel></rss>".encode(),
            headers={"Content-Type": "application/rss+xml",
                     **({"ETag": f'"{hash(etag)}"'} if self.etag else {})}))
