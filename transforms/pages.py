"""FetchPages: each new entry's article page, fetched concurrently, politely, robots-aware."""

from __future__ import annotations

from datetime import UTC, datetime

import apache_beam as beam

from transforms.background import Emitter
from transforms.dead_letters import DEAD_LETTERS, FETCH_PAGES, dead_letter, unexpected_error
from transforms.extract import feed_full_text
from transforms.fetch_fn import PoliteFetchFn, fetch_grouped_by_host
from transforms.http import FetchError, HttpSettings, MiB, Response, is_page_content_type
from transforms.polite import DEFAULT_POLITENESS, HostGate, Politeness
from transforms.records import Entry, Page
from transforms.robots import ROBOTS_MAX_BYTES, RobotsCache, robots_agent

PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"


class _FetchPageFn(PoliteFetchFn):
    def setup(self) -> None:
        super().setup()
        self._robots = RobotsCache()

    def fetch_item(self, entry: Entry, gate: HostGate, emit: Emitter) -> None:
        """Fetch the page; a failure is a dead letter, unless the feed carried the article's
        full text, which then stands in for the page (an empty Page goes on to extraction)."""
        try:
            if self.politeness.respect_robots and not self._robots_allow(entry, gate, emit):
                return
            gate.wait_turn()
            response = self.get(entry.link, accept=PAGE_ACCEPT,
                                content_type_ok=is_page_content_type)
        except FetchError as error:
            self._dead_letter(emit, entry, error.reason, str(error), error.error_type)
            return
        except Exception as error:  # a bug or an input nobody foresaw: account for it
            emit.output(unexpected_error(
                FETCH_PAGES, error, subject="entry", url=entry.link, feed_url=entry.feed_url,
                article_id=entry.article_id,
            ), DEAD_LETTERS)
            return
        emit.count("pages.fetched")
        emit.output(Page(
            entry=entry, final_url=response.url, status=response.status,
            content_type=response.content_type, body=response.body,
            fetched_at=response.fetched_at, last_modified=response.headers.get("last-modified"),
        ))

    def _robots_allow(self, entry: Entry, gate: HostGate, emit: Emitter) -> bool:
        agent = robots_agent(self.settings.user_agent)

        def fetch_robots(url: str) -> Response:
            gate.wait_turn()  # robots.txt is a request to the host like any other
            emit.count("robots.fetched")
            return self.get(url, max_bytes=ROBOTS_MAX_BYTES, accept="text/plain, */*;q=0.5")

        rules = self._robots.rules(entry.link, fetch_robots)
        delay = rules.crawl_delay(agent)
        if delay:
            gate.set_interval(min(delay, self.politeness.max_crawl_delay))
        if rules.allows(entry.link, agent):
            return True
        self._dead_letter(emit, entry, "robots_disallowed",
                          f"{rules.why} disallows {agent} from this page", "robots.txt")
        return False

    @staticmethod
    def _dead_letter(
        emit: Emitter, entry: Entry, reason: str, message: str, error_type: str
    ) -> None:
        if feed_full_text(entry):
            emit.count(f"pages.feed_fallback.{reason}")
            emit.output(Page(entry=entry, final_url=entry.link, status=0, content_type="",
                             body=b"", fetched_at=datetime.now(UTC)))
            return
        emit.output(dead_letter(
            FETCH_PAGES, reason, subject="entry", url=entry.link, feed_url=entry.feed_url,
            message=message, error_type=error_type, article_id=entry.article_id,
        ), DEAD_LETTERS)


def _entry_link(entry: Entry) -> str:
    return entry.link


class FetchPages(beam.PTransform):
    """Entry -> Page (main) and DeadLetter (`dead_letters`).

    Entries are grouped by host so each host's limits hold across workers; within a worker,
    hosts are fetched concurrently.
    """

    def __init__(
        self, settings: HttpSettings, politeness: Politeness = DEFAULT_POLITENESS,
        max_bytes: int = 10 * MiB,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.politeness = politeness
        self.max_bytes = max_bytes

    def expand(self, entries: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        fn = _FetchPageFn(self.settings, self.max_bytes, self.politeness)
        return fetch_grouped_by_host(entries, _entry_link, fn, DEAD_LETTERS, main="pages")
