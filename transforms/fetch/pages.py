"""FetchPages: each new entry's article page, fetched concurrently, politely, robots-aware."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam

from transforms.core import (
    DEAD_LETTERS,
    FETCH_PAGES,
    TALLIES,
    Composite,
    Entry,
    Page,
    Tally,
    dead_letter,
)
from transforms.fetch.http import FetchError, HttpSettings, MiB, Response, is_page_content_type
from transforms.fetch.polite import DEFAULT_POLITENESS, HostGate, Politeness
from transforms.fetch.polite_fetch import (
    BATCH_GROUPING,
    Grouping,
    PoliteFetchFn,
    fetch_grouped_by_host,
    wait_tallies,
)
from transforms.fetch.robots import (
    ROBOTS_MAX_BYTES,
    RobotsRules,
    crawl_interval,
    robots_agent,
)

PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"


@dataclasses.dataclass(eq=False)
class _FetchPageFn(PoliteFetchFn):
    stage = FETCH_PAGES

    def fetch_item(self, entry: Entry, gate: HostGate) -> Iterator[Any]:
        """Fetch the page; a failure is a dead letter, unless the feed carried the article's
        full text, which then stands in for the page (an empty Page goes on to extraction)."""
        try:
            if self.politeness.respect_robots:
                rules, fetched_robots = self._robots_rules(entry, gate)
                if fetched_robots:
                    yield Tally("robots.fetched")
                agent = robots_agent(self.settings.user_agent)
                if not rules.allows(entry.link, agent):
                    yield from _lost(entry, "robots_disallowed",
                                     f"{rules.why} disallows {agent} from this page",
                                     "robots.txt")
                    return
            waited = gate.wait_turn()
            yield from wait_tallies(entry.link, waited)
            response = self.get(entry.link, accept=PAGE_ACCEPT,
                                content_type_ok=is_page_content_type)
        except FetchError as error:
            yield from _lost(entry, error.reason, str(error), error.error_type)
            return
        yield Tally("pages.fetched")
        yield Page(
            entry=entry, final_url=response.url, status=response.status,
            content_type=response.content_type, body=response.body,
            fetched_at=response.fetched_at, last_modified=response.headers.get("last-modified"),
        )

    def _robots_rules(self, entry: Entry, gate: HostGate) -> tuple[RobotsRules, bool]:
        """The site's robots.txt rules (and whether they were fetched just now); a Crawl-delay
        in them spaces out this host's requests from now on."""
        fetched = False

        def fetch_robots(url: str) -> Response:
            nonlocal fetched
            gate.wait_turn()  # robots.txt is a request to the host like any other
            fetched = True
            return self.get(url, max_bytes=ROBOTS_MAX_BYTES, accept="text/plain, */*;q=0.5")

        rules = self.resources().robots.rules(entry.link, fetch_robots)
        interval = crawl_interval(rules, self.settings.user_agent,
                                  self.politeness.max_crawl_delay)
        if interval:
            gate.set_interval(interval)
        return rules, fetched


def _lost(entry: Entry, reason: str, message: str, error_type: str) -> Iterator[Any]:
    """The outputs for a page that could not be had: the feed's full text standing in for it
    (an empty Page), or a dead letter."""
    if entry.full_text:
        yield Tally(f"pages.feed_fallback.{reason}")
        yield Page(entry=entry, final_url=entry.link, status=0, content_type="", body=b"",
                   fetched_at=datetime.now(UTC))
        return
    yield beam.pvalue.TaggedOutput(DEAD_LETTERS, dead_letter(
        FETCH_PAGES, reason, subject="entry", url=entry.link, feed_url=entry.feed_url,
        message=message, error_type=error_type, article_id=entry.article_id,
    ))


def _entry_link(entry: Entry) -> str:
    return entry.link


@dataclasses.dataclass(eq=False)
class FetchPages(Composite):
    """Entry -> Page (main) and DeadLetter (`dead_letters`).

    Entries are grouped by host so each host's limits hold across workers; within a worker,
    hosts are fetched concurrently.
    """

    settings: HttpSettings
    politeness: Politeness = DEFAULT_POLITENESS
    max_bytes: int = 10 * MiB
    grouping: Grouping = BATCH_GROUPING

    def expand(self, entries: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        fn = _FetchPageFn(self.settings, self.max_bytes, self.politeness)
        return fetch_grouped_by_host(entries, _entry_link, fn, DEAD_LETTERS, TALLIES,
                                     main="pages", grouping=self.grouping)
