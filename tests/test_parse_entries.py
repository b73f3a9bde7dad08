"""ParseEntries: feeds parsed in the worker processes, and every way that can end accounted for
(entries, a dead letter for a parser error, a feed past the time limit, a worker that died)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tests.helpers import test_pipeline
from transforms.core import (
    Feed,
    FetchedFeed,
    IsolationSettings,
    PollObservation,
    background,
    workers,
)
from transforms.feeds import ParsedFeed, ParseEntries, parse_entries

pytestmark = pytest.mark.slow  # every test starts worker processes

URL = "http://127.0.0.1:8000/feed.xml"
AT = datetime(2026, 12, 7, 12, tzinfo=UTC)


def _rss(items: int) -> bytes:
    return (b"<?xml version='1.0'?><rss version='2.0'><channel><title>Loopback news</title>"
            + b"".join(f"<item><title>Story {n}</title><link>http://127.0.0.1:8000/{n}.html"
                       f"</link></item>".encode() for n in range(items))
            + b"</channel></rss>")


def _fetched(body: bytes = _rss(3)) -> FetchedFeed:
    poll = PollObservation(feed_url=URL, feed_title=None, polled_at=AT.timestamp(),
                           outcome="fetched", status=200)
    return FetchedFeed(Feed(URL), URL, 200, "application/rss+xml", body, AT, poll=poll)


def raise_a_parser_bug(fetched: FetchedFeed) -> ParsedFeed:
    raise ValueError("a parser bug")


def die(fetched: FetchedFeed) -> ParsedFeed:
    os._exit(3)


def _parsed_by(monkeypatch: pytest.MonkeyPatch, function: str) -> None:
    """Make ParseEntries parse feeds with this module's `function`, in a pool of its own."""
    target = f"{__name__}:{function}"
    monkeypatch.setattr(parse_entries, "PARSE_FEED", target)
    monkeypatch.setattr(workers, "TARGETS", (target, workers.EXTRACT_ARTICLE))
    monkeypatch.setattr(background, "per_process", lambda key, make: make())


def test_feeds_are_parsed_in_the_worker_processes() -> None:
    with test_pipeline() as p:
        parsed = p | beam.Create([_fetched()]) | ParseEntries(IsolationSettings(processes=1))
        assert_that(parsed.entries | beam.Map(lambda e: (e.title, e.feed_title)),
                    equal_to([(f"Story {n}", "Loopback news") for n in range(3)]),
                    label="Entries")
        assert_that(parsed.polls | beam.Map(lambda o: (o.outcome, o.entries, o.feed_title)),
                    equal_to([("fetched", 3, "Loopback news")]), label="Poll")
        assert_that(parsed.dead_letters, equal_to([]), label="NoLetter")


@pytest.mark.parametrize(("function", "timeout", "reason", "error_type"), [
    ("raise_a_parser_bug", 30.0, "unexpected_error", "ValueError"),
    ("die", 30.0, "feed_parse_crashed", "WorkerCrashed"),
    (None, 0.001, "feed_parse_timeout", "TaskTimeout"),  # 2,000 items take longer than that
])
def test_a_feed_whose_parsing_failed_is_a_dead_letter_and_a_failed_poll(
    monkeypatch: pytest.MonkeyPatch, function: str | None, timeout: float, reason: str,
    error_type: str,
) -> None:
    if function is not None:
        _parsed_by(monkeypatch, function)
    with test_pipeline() as p:
        parsed = p | beam.Create([_fetched(_rss(2000))]) | ParseEntries(
            IsolationSettings(processes=1, timeout=timeout))
        assert_that(parsed.entries, equal_to([]), label="NoEntry")
        assert_that(parsed.dead_letters | beam.Map(
            lambda d: (d.reason, d.subject, d.feed_url, d.error_type)),
            equal_to([(reason, "feed", URL, error_type)]), label="Letter")
        assert_that(parsed.polls | beam.Map(lambda o: (o.outcome, o.reason, o.status)),
                    equal_to([("failed", reason, 200)]), label="Poll")


def test_the_worker_processes_import_no_beam() -> None:
    # They import their targets' modules: Beam there would cost every worker a second and
    # tens of MiB.
    # What the fork server imports: what the worker processes run, and the lane processes
    # (which poll a batch run's feeds).
    modules = ["transforms.core.isolation", *workers.FORK_SERVER_IMPORTS]
    program = ("import sys\n" + "".join(f"import {module}\n" for module in modules)
               + "print(sorted(m for m in sys.modules if m.split('.')[0] == 'apache_beam'))\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
