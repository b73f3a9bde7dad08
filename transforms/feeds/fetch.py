"""FetchFeeds: feed bytes over newsbeam's HTTP client, conditionally when validators are known."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam

from transforms.core import (
    DEAD_LETTERS,
    FETCH_FEEDS,
    POLLS,
    TALLIES,
    Composite,
    Feed,
    FetchedFeed,
    PollObservation,
    Tally,
    Validators,
    count,
    dead_letter,
)
from transforms.feeds.schedule import max_age
from transforms.fetch import (
    DEFAULT_POLITENESS,
    FetchError,
    HostGate,
    HttpSettings,
    MiB,
    PoliteFetchFn,
    Politeness,
    Response,
    fetch_grouped_by_host,
    is_feed_content_type,
    wait_tallies,
)

# The tag of FetchFeeds' output of (feed URL, Validators) pairs, from feeds fetched in full.
VALIDATORS = "validators"

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9,"
    " application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


def conditional_headers(validators: Validators) -> dict[str, str]:
    """If-None-Match / If-Modified-Since from the validators the feed's last fetch returned."""
    headers = {}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


@dataclasses.dataclass(frozen=True)
class FeedPoll:
    """What one request for a feed came back with."""

    fetched: FetchedFeed | None  # a full response
    not_modified: bool  # 304: the validators sent still hold
    error: FetchError | None
    validators: Validators  # the server's with a full response (empty when it sent none)
    max_age: float | None  # how long the server says its answer stays fresh, in seconds
    polled_at: float = 0.0  # when it was asked (a full answer: its fetched_at), epoch seconds
    seconds: float | None = None  # how long the request took, retries included


def poll_feed(feed: Feed, validators: Validators, get: Callable[..., Response]) -> FeedPoll:
    """Request a feed with `get` (a fetching DoFn's), conditionally when validators are known."""
    asked, started = time.time(), time.monotonic()
    try:
        response = get(feed.url, accept=FEED_ACCEPT, content_type_ok=is_feed_content_type,
                       headers=conditional_headers(validators))
    except FetchError as error:
        return FeedPoll(None, False, error, Validators(), None, asked,
                        time.monotonic() - started)
    seconds = time.monotonic() - started
    freshness = max_age(response.headers.get("cache-control"))
    if response.status == 304:
        return FeedPoll(None, True, None, validators, freshness, asked, seconds)
    fetched = FetchedFeed(
        feed=feed, final_url=response.url, status=response.status,
        content_type=response.content_type, body=response.body,
        fetched_at=response.fetched_at,
    )
    sent = Validators(response.headers.get("etag"), response.headers.get("last-modified"))
    return FeedPoll(fetched, False, None, sent, freshness, fetched.fetched_at.timestamp(),
                    seconds)


def observation(feed: Feed, poll: FeedPoll, interval: float | None = None,
                interval_reason: str = "config") -> PollObservation:
    """What a poll tells about the feed's health (parsing adds the entries of a full answer)."""
    if poll.error is not None:
        outcome, status, reason = "failed", poll.error.status, poll.error.reason
    elif poll.not_modified:
        outcome, status, reason = "not_modified", 304, None
    else:
        outcome, reason = "fetched", None
        status = poll.fetched.status if poll.fetched is not None else None
    return PollObservation(
        feed_url=feed.url, feed_title=feed.name, polled_at=poll.polled_at, outcome=outcome,
        status=status, reason=reason, response_seconds=poll.seconds, interval=interval,
        interval_reason=interval_reason)


def feed_outputs(feed: Feed, poll: FeedPoll, interval: float | None = None,
                 interval_reason: str = "config") -> Iterator[Any]:
    """A poll's outputs, in both modes: the fetched feed (main), its validators, a dead letter
    for a feed that could not be had, the tallies, and the poll's observation for the feed's
    health, with the wait until its next poll in a stream (a full answer carries it on to
    parsing, which adds its entries)."""
    observed = observation(feed, poll, interval, interval_reason)
    if poll.fetched is None:  # a full answer's goes on with it, for parsing to complete
        yield beam.pvalue.TaggedOutput(POLLS, observed)
    if poll.error is not None:
        error = poll.error
        yield beam.pvalue.TaggedOutput(DEAD_LETTERS, dead_letter(
            FETCH_FEEDS, error.reason, subject="feed", url=error.url, feed_url=feed.url,
            message=str(error), error_type=error.error_type,
        ))
    elif poll.not_modified:
        yield Tally("feeds.not_modified")
    elif poll.fetched is not None:
        if poll.validators:
            yield beam.pvalue.TaggedOutput(VALIDATORS, (feed.url, poll.validators))
        yield dataclasses.replace(poll.fetched, poll=observed)


@dataclasses.dataclass(eq=False)
class _FetchFeedFn(PoliteFetchFn):
    stage = FETCH_FEEDS

    def fetch_item(self, feed: Feed, gate: HostGate) -> Iterator[Any]:
        waited = gate.wait_turn()
        yield from wait_tallies(feed.url, waited)
        yield from feed_outputs(feed, poll_feed(feed, feed.validators, self.get))


def _feed_url(feed: Feed) -> str:
    return feed.url


def _configured(feeds: int) -> Tally:
    """The feeds counted on the way in: in the Beam counter (for monitoring) and the summary."""
    count("feeds.configured", feeds)
    return Tally("feeds.configured", feeds)


class FetchedFeeds(NamedTuple):
    """What FetchFeeds outputs."""

    feeds: beam.PCollection  # FetchedFeed: feeds fetched in full
    validators: beam.PCollection  # (feed URL, Validators) of those that sent any
    dead_letters: beam.PCollection
    tallies: beam.PCollection  # configured feeds (counted on the way in), 304s
    polls: beam.PCollection  # PollObservation: every poll, for the feeds' health


@dataclasses.dataclass(eq=False)
class FetchFeeds(Composite):
    """Feed -> FetchedFeeds.

    Feeds are grouped by host, so a host that serves many feeds gets its politeness limits too.
    Feeds carrying validators are fetched conditionally; a 304 is counted, not output.
    """

    settings: HttpSettings
    politeness: Politeness = DEFAULT_POLITENESS
    max_bytes: int = 5 * MiB

    def expand(self, feeds: beam.PCollection) -> FetchedFeeds:
        fn = _FetchFeedFn(self.settings, self.max_bytes, self.politeness)
        fetched = fetch_grouped_by_host(feeds, _feed_url, fn, DEAD_LETTERS, VALIDATORS,
                                        TALLIES, POLLS, main="feeds")
        # Counted on the way in, apart from the fetch, whatever becomes of each feed.
        configured = (feeds | "CountConfigured" >> beam.combiners.Count.Globally()
                      | "ConfiguredTally" >> beam.Map(_configured))
        tallies = (configured, fetched.tallies) | "Tallies" >> beam.Flatten()
        return FetchedFeeds(fetched.feeds, fetched.validators, fetched.dead_letters, tallies,
                            fetched.polls)
