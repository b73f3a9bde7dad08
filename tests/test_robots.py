"""robots.txt as RFC 9309 says: what its HTTP status means, whose group applies, Crawl-delay
honoured up to a cap, rules cached per site for a day (an unavailable one for ten minutes);
and, end to end, the request log of a site showing the spacing and the User-Agent."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.demo.loopback import Handler, RequestHandler, Route
from tests.servers import news_site
from transforms.fetch.http import FetchError, Response
from transforms.fetch.robots import (
    ROBOTS_TTL,
    UNAVAILABLE_TTL,
    RobotsCache,
    RobotsRules,
    crawl_interval,
    robots_agent,
    robots_url,
    rules_from_response,
)

AGENT = "newsbeam/0.1 (+https://n.example/bot)"
ROBOTS = """User-agent: *
Disallow: /private/
Crawl-delay: 2

User-agent: newsbeam
Disallow: /drafts/
Crawl-delay: 4
"""


def _answer(body: str) -> Response:
    return Response(url="https://n.example/robots.txt", status=200, headers={},
                    body=body.encode(), fetched_at=datetime.now(UTC))


def _failing(reason: str, status: int | None = None):  # noqa: ANN202
    def fetch() -> Response:
        raise FetchError(reason, f"{reason} {status or ''}".strip(),
                         url="https://n.example/robots.txt", status=status)
    return fetch


@pytest.mark.parametrize(("status", "allows_all"), [
    (400, True), (401, True), (403, True), (404, True), (410, True), (429, True), (499, True),
    (500, False), (503, False),
])
def test_the_status_of_robots_txt_decides_as_rfc_9309_says(status: int, allows_all: bool) -> None:
    rules = rules_from_response(_failing("http_status", status))
    assert rules.allows("https://n.example/a", "newsbeam") is allows_all
    assert rules.disallow_all is not allows_all
    # What a page's dead letter will say of it.
    assert rules.why == (f"no robots.txt (HTTP {status})" if allows_all else
                         f"robots.txt unavailable (http_status: http_status {status})")


@pytest.mark.parametrize(("reason", "allows_all"), [
    ("too_large", True),  # treated as absent
    ("timeout", False), ("connection_error", False),  # unreachable: nothing for now
])
def test_a_robots_txt_that_cannot_be_read_decides_by_why(reason: str, allows_all: bool) -> None:
    rules = rules_from_response(_failing(reason))
    assert rules.allows("https://n.example/a", "newsbeam") is allows_all
    assert rules.why == ("robots.txt too large to use; treated as absent" if allows_all else
                         f"robots.txt unavailable ({reason}: {reason})")


def test_a_robots_txt_with_bytes_that_are_not_utf8_is_still_read() -> None:
    rules = rules_from_response(lambda: _answer(ROBOTS))
    assert rules.why == "robots.txt"
    broken = Response(url="https://n.example/robots.txt", status=200, headers={},
                      body=b"User-agent: *\nDisallow: /caf\xe9/\nDisallow: /private/\n",
                      fetched_at=datetime.now(UTC))
    rules = rules_from_response(lambda: broken)
    assert not rules.allows("https://n.example/private/1", "newsbeam")


def test_our_group_applies_rather_than_the_wildcard() -> None:
    rules = rules_from_response(lambda: _answer(ROBOTS))
    agent = robots_agent(AGENT)
    assert agent == "newsbeam"
    assert not rules.allows("https://n.example/drafts/1", agent)
    assert rules.allows("https://n.example/private/1", agent)  # only the wildcard's rule
    assert not rules.allows("https://n.example/private/1", "otherbot")
    assert rules.crawl_delay(agent) == 4.0 and rules.crawl_delay("otherbot") == 2.0


def test_crawl_delay_is_honoured_up_to_the_cap() -> None:
    rules = rules_from_response(lambda: _answer(ROBOTS))
    assert crawl_interval(rules, AGENT, cap=10.0) == 4.0
    assert crawl_interval(rules, AGENT, cap=3.0) == 3.0
    slow = rules_from_response(lambda: _answer("User-agent: *\nCrawl-delay: 120\n"))
    assert crawl_interval(slow, AGENT, cap=10.0) == 10.0
    assert crawl_interval(RobotsRules(None), AGENT, cap=10.0) == 0.0  # none asked


@pytest.mark.parametrize(("agent", "token"), [
    ("newsbeam/0.1 (+https://n.example)", "newsbeam"),
    ("NewsBot (+mailto:desk@n.example)", "NewsBot"),
    ("plain", "plain"),
    ("My News Bot", "My"),
])
def test_the_product_token_is_what_robots_groups_match(agent: str, token: str) -> None:
    assert robots_agent(agent) == token


def test_robots_txt_is_at_the_root_of_the_pages_site() -> None:
    assert robots_url("https://n.example:8443/a/b.html?x=1#y") == "https://n.example:8443/robots.txt"


def test_rules_are_cached_per_site_for_a_day_and_an_unavailable_answer_for_ten_minutes() -> None:
    now = [5000.0]  # a monotonic clock starts anywhere
    asked: list[str] = []
    answers = {"https://a.example/robots.txt": "User-agent: *\nDisallow:\n"}

    def fetch(url: str) -> Response:
        asked.append(url)
        if url not in answers:
            raise FetchError("timeout", "timed out", url=url)
        return _answer(answers[url])

    cache = RobotsCache(clock=lambda: now[0])
    for page in ("https://a.example/1", "https://a.example/2", "https://b.example/1"):
        cache.rules(page, fetch)
    assert asked == ["https://a.example/robots.txt", "https://b.example/robots.txt"]
    now[0] = 5000.0 + UNAVAILABLE_TTL - 1
    cache.rules("https://b.example/2", fetch)
    assert len(asked) == 2
    now[0] = 5000.0 + UNAVAILABLE_TTL  # b's unavailable answer is asked for again, a's kept
    cache.rules("https://b.example/3", fetch)
    cache.rules("https://a.example/3", fetch)
    assert asked[2:] == ["https://b.example/robots.txt"]
    now[0] = 5000.0 + ROBOTS_TTL - 1
    cache.rules("https://a.example/4", fetch)
    assert len(asked) == 3
    now[0] = 5000.0 + ROBOTS_TTL
    cache.rules("https://a.example/4", fetch)
    assert asked[3:] == ["https://a.example/robots.txt"]


@pytest.mark.slow
def test_a_sites_request_log_shows_the_user_agent_and_the_crawl_delay(tmp_path: Path) -> None:
    site = news_site("127.0.0.1", 4)
    log: list[tuple[float, str, str | None]] = []

    def logged(route: Route) -> Handler:
        def handle(handler: RequestHandler) -> None:
            log.append((time.monotonic(), handler.path, handler.headers.get("User-Agent")))
            handler.send_route(route)
        return handle

    site.routes["/robots.txt"] = Route(b"User-agent: *\nCrawl-delay: 0.5\n",
                                       headers={"Content-Type": "text/plain"})
    for path, route in list(site.routes.items()):
        assert isinstance(route, Route)
        site.routes[path] = logged(route)
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - {site.url('/feed.xml')}\n")
    try:
        status = main(["run", "--feeds", str(feeds), "--out", str(tmp_path / "out"),
                       "--state=none", "--allow-private-networks", f"--http-user-agent={AGENT}"])
    finally:
        site.stop()
    assert status == 0
    paths = [path for _, path, _ in log]
    assert paths[:2] == ["/feed.xml", "/robots.txt"] and len(paths) == 6
    assert {agent for _, _, agent in log} == {AGENT}  # feed, robots.txt and pages alike
    # robots.txt and the four pages, each starting at least the Crawl-delay after the last
    # (less the loopback jitter of tests/test_politeness.py).
    starts = [at for at, path, _ in log if path != "/feed.xml"]
    assert min(b - a for a, b in zip(starts, starts[1:], strict=False)) >= 0.5 - 0.05
    records = [json.loads(line) for path in (tmp_path / "out").glob("articles-*.jsonl")
               for line in path.read_text().splitlines()]
    assert len(records) == 4
