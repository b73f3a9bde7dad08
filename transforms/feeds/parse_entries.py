"""ParseEntries: feeds parsed in the worker processes, their entries and polls as outputs.

Parsing is the CPU-bound part of polling (feedparser is pure Python): on the bundle's thread it
would hold the interpreter lock the polls' threads need, while the worker processes, which
extract the pages later, sit idle. So each full answer goes to a worker process, with the same
time limit a page's extraction has, and its outcome comes back as the stage's outputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import apache_beam as beam

from transforms.core import (
    DEAD_LETTERS,
    DEFAULT_ISOLATION,
    PARSE_ENTRIES,
    PARSE_FEED,
    POLLS,
    TALLIES,
    Composite,
    DeadLetter,
    FetchedFeed,
    IsolationSettings,
    Place,
    PooledFn,
    Tally,
    TaskTimeout,
    WorkerCrashed,
    dead_letter,
)
from transforms.feeds.parsed import ParsedFeed, polled


def parsed_outcome(fetched: FetchedFeed, outcome: Future[ParsedFeed],
                   timeout: float) -> ParsedFeed:
    """What parsing `fetched` in a worker process gave: its ParsedFeed, or one with no entries
    and the feed's dead letter where the worker ran past the time limit or died. An error of
    parse_feed itself is raised again, for the stage's one way to fail."""
    try:
        return outcome.result()
    except TaskTimeout:
        reason, message = "feed_parse_timeout", f"parsing took over {timeout:g}s"
        error_type = "TaskTimeout"
    except WorkerCrashed as error:
        reason, message, error_type = "feed_parse_crashed", str(error), "WorkerCrashed"
    url = fetched.feed.url
    letter = dead_letter(PARSE_ENTRIES, reason, subject="feed", url=url, feed_url=url,
                         message=message, error_type=error_type)
    return ParsedFeed(title=None, entries=(), dead_letters=(letter,), bozo_reason=None,
                      bozo_type=None)


def parsed_outputs(fetched: FetchedFeed, parsed: ParsedFeed) -> Iterator[Any]:
    """A parsed feed's outputs: its entries (main), its dead letters, its tallies, and the
    poll that fetched it with what parsing found (`polls`)."""
    if parsed.bozo_type and parsed.entries:
        yield Tally(f"feeds.ill_formed_kept.{parsed.bozo_type}")
    rejected = sum(1 for letter in parsed.dead_letters if letter.subject == "entry")
    yield Tally("entries.parsed", len(parsed.entries) + rejected)
    # A feed that was fetched but yields no entry is a dead letter (counted as one), so
    # "fetched" is counted here, once parsing has shown the feed is usable.
    if not any(letter.subject == "feed" for letter in parsed.dead_letters):
        yield Tally("feeds.fetched")
    yield from parsed.entries
    for letter in parsed.dead_letters:
        yield beam.pvalue.TaggedOutput(DEAD_LETTERS, letter)
    if fetched.poll is not None:
        yield beam.pvalue.TaggedOutput(POLLS, polled(fetched.poll, parsed))


@dataclasses.dataclass(eq=False)
class _ParseEntriesFn(PooledFn):
    """Hands fetched feeds to the worker processes and turns what they parse into outputs."""

    stage = PARSE_ENTRIES

    def process(
        self, fetched: FetchedFeed, window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> Iterator[Any]:
        timeout = self.isolation.timeout
        yield from self.run_in_worker(
            PARSE_FEED, fetched, Place(window, timestamp),
            lambda outcome: parsed_outputs(fetched, parsed_outcome(fetched, outcome, timeout)))

    def if_failed(self, fetched: FetchedFeed, letter: DeadLetter) -> Iterator[Any]:
        # The poll still happened: the feed's health counts it, as failed for the reason
        # its dead letter gives.
        if fetched.poll is not None:
            yield beam.pvalue.TaggedOutput(POLLS, dataclasses.replace(
                fetched.poll, outcome="failed", reason=letter.reason))


@dataclasses.dataclass(eq=False)
class ParseEntries(Composite):
    """FetchedFeed -> Entry (main), DeadLetter (`dead_letters`) and the poll that fetched each
    feed, with its entries, for the feed's health (`polls`: PollObservation); feeds are
    parsed in the worker processes, each within the isolation's time limit."""

    isolation: IsolationSettings = DEFAULT_ISOLATION

    def expand(self, fetched: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return fetched | "Parse" >> beam.ParDo(_ParseEntriesFn(self.isolation)).with_outputs(
            DEAD_LETTERS, TALLIES, POLLS, main="entries"
        )
