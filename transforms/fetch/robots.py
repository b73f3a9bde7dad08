"""robots.txt for article pages, fetched once per site and worker, decided as RFC 9309 says.

- robots.txt answered 2xx: its rules apply (parsed by Protego, Google's semantics);
- 4xx (no robots.txt): everything is allowed;
- 5xx, or unreachable: nothing is allowed for now (the site may be down or overloaded).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from protego import Protego

from transforms.fetch.http import FetchError, Response

ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309 asks crawlers to parse at least 500 KiB
ROBOTS_TTL = 24 * 3600.0  # RFC 9309: do not use a cached robots.txt for more than 24 hours
UNAVAILABLE_TTL = 600.0  # an unreachable robots.txt is asked for again sooner


@dataclasses.dataclass(frozen=True)
class RobotsRules:
    """What one site's robots.txt says, for one user agent."""

    parser: Protego | None  # None: no rules (allow all), unless `disallow_all`
    disallow_all: bool = False
    why: str = ""

    def allows(self, url: str, user_agent: str) -> bool:
        if self.disallow_all:
            return False
        return self.parser is None or bool(self.parser.can_fetch(url, user_agent))

    def crawl_delay(self, user_agent: str) -> float:
        delay = self.parser.crawl_delay(user_agent) if self.parser is not None else None
        return float(delay or 0.0)


def robots_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/robots.txt"


def robots_agent(user_agent: str) -> str:
    """The product token robots.txt groups are matched against ("newsbeam" in "newsbeam/0.1")."""
    return user_agent.split("/", 1)[0].split(" ", 1)[0] or user_agent


def crawl_interval(rules: RobotsRules, user_agent: str, cap: float) -> float:
    """How far apart a robots.txt's Crawl-delay asks requests to its host to start, for our
    `user_agent` (matched by its product token): at most `cap` seconds, 0 if it asks nothing.
    A site asking for minutes between requests would stall its whole host lane."""
    return min(rules.crawl_delay(robots_agent(user_agent)), cap)


def rules_from_response(fetch: Callable[[], Response]) -> RobotsRules:
    """Rules from fetching robots.txt; the HTTP outcome decides as RFC 9309 says."""
    try:
        response = fetch()
    except FetchError as error:
        if error.reason == "http_status" and error.status and 400 <= error.status < 500:
            return RobotsRules(None, why=f"no robots.txt (HTTP {error.status})")
        if error.reason == "too_large":
            return RobotsRules(None, why="robots.txt too large to use; treated as absent")
        return RobotsRules(None, disallow_all=True,
                           why=f"robots.txt unavailable ({error.reason}: {error})")
    text = response.body.decode("utf-8", errors="replace")
    return RobotsRules(Protego.parse(text), why="robots.txt")


class RobotsCache:
    """Per-worker cache of each site's rules, fetched at most once at a time per site."""

    def __init__(self, ttl: float = ROBOTS_TTL, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._site_locks: dict[str, threading.Lock] = {}
        self._rules: dict[str, tuple[float, RobotsRules]] = {}

    def rules(self, url: str, fetch: Callable[[str], Response]) -> RobotsRules:
        """The rules for the site of `url`, fetching its robots.txt with `fetch` if needed."""
        site = robots_url(url)
        with self._lock:
            site_lock = self._site_locks.setdefault(site, threading.Lock())
        with site_lock:
            cached = self._rules.get(site)
            if cached is not None:
                fetched_at, rules = cached
                ttl = min(self._ttl, UNAVAILABLE_TTL) if rules.disallow_all else self._ttl
                if self._clock() - fetched_at < ttl:
                    return rules
            rules = rules_from_response(lambda: fetch(site))
            self._rules[site] = (self._clock(), rules)
            return rules
