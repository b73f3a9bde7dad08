"""Conditional GET of feeds: the validators sent, what one poll comes back with (a full answer,
a 304, a failure) and what it outputs in both modes."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipeline.demo.loopback import LoopbackServer, RequestHandler, Route
from tests.helpers import LOOPBACK_HTTP, test_pipeline
from transforms.core import POLLS, Feed, PollObservation, Tally, Validators
from transforms.feeds.fetch import VALIDATORS, FetchFeeds, feed_outputs
from transforms.feeds.request import FEED_ACCEPT, conditional_headers, poll_feed
from transforms.fetch import HttpClient, Response


def _get(client: HttpClient) -> Callable[..., Response]:
    """What a fetching DoFn hands poll_feed: its client's get, with the feeds' byte cap."""
    return functools.partial(client.get, max_bytes=1 << 20)


RSS = b"<rss version='2.0'><channel><title>t</title></channel></rss>"
ETAG, MODIFIED = '"v7"', "Tue, 04 Mar 2025 07:45:00 GMT"


@pytest.mark.parametrize(("validators", "headers"), [
    (Validators(ETAG, MODIFIED), {"If-None-Match": ETAG, "If-Modified-Since": MODIFIED}),
    (Validators(ETAG, None), {"If-None-Match": ETAG}),
    (Validators(None, MODIFIED), {"If-Modified-Since": MODIFIED}),
    (Validators(), {}),
])
def test_the_validators_of_the_last_full_answer_make_the_request_conditional(
    validators: Validators, headers: dict[str, str],
) -> None:
    assert conditional_headers(validators) == headers


@pytest.fixture
def feed_site() -> Iterator[tuple[LoopbackServer, list[dict[str, str | None]]]]:
    seen: list[dict[str, str | None]] = []

    def feed(handler: RequestHandler) -> None:
        seen.append({name: handler.headers.get(name) for name in
                     ("Accept", "If-None-Match", "If-Modified-Since")})
        if handler.headers.get("If-None-Match") == ETAG:  # a 304 says how long it holds
            handler.send_response(304)
            handler.send_header("Cache-Control", "max-age=900")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_route(Route(RSS, headers={
            "Content-Type": "application/rss+xml", "ETag": ETAG, "Last-Modified": MODIFIED,
            "Cache-Control": "public, max-age=900"}))

    with LoopbackServer({"/feed.xml": feed}) as site:
        yield site, seen


def test_a_full_answer_brings_the_feed_its_validators_and_max_age(feed_site) -> None:
    site, seen = feed_site
    feed = Feed(site.url("/feed.xml"))
    with HttpClient(LOOPBACK_HTTP) as client:
        poll = poll_feed(feed, Validators(), _get(client))
    assert seen == [{"Accept": FEED_ACCEPT, "If-None-Match": None, "If-Modified-Since": None}]
    assert (poll.not_modified, poll.error, poll.max_age) == (False, None, 900.0)
    assert poll.validators == Validators(ETAG, MODIFIED)
    assert poll.fetched is not None
    assert (poll.fetched.feed, poll.fetched.final_url, poll.fetched.status) == (
        feed, feed.url, 200)
    assert (poll.fetched.content_type, poll.fetched.body) == ("application/rss+xml", RSS)


def test_a_304_keeps_the_validators_sent_and_says_how_long_it_stays_fresh(feed_site) -> None:
    site, seen = feed_site
    with HttpClient(LOOPBACK_HTTP) as client:
        poll = poll_feed(Feed(site.url("/feed.xml")), Validators(ETAG, MODIFIED), _get(client))
    assert seen[0]["If-None-Match"] == ETAG and seen[0]["If-Modified-Since"] == MODIFIED
    assert (poll.fetched, poll.not_modified, poll.error) == (None, True, None)
    assert (poll.validators, poll.max_age) == (Validators(ETAG, MODIFIED), 900.0)


def test_a_feed_that_cannot_be_had_is_a_poll_with_its_error() -> None:
    with LoopbackServer({}) as site, HttpClient(LOOPBACK_HTTP) as client:
        poll = poll_feed(Feed(site.url("/gone.xml")), Validators(ETAG, None), _get(client))
    assert poll.error is not None and (poll.error.reason, poll.error.status) == (
        "http_status", 404)
    assert (poll.fetched, poll.not_modified, poll.validators, poll.max_age) == (
        None, False, Validators(), None)


def _observed(outputs: Iterable[Any]) -> tuple[PollObservation, list[Any]]:
    """The observation of a poll without a full answer (first), and its other outputs."""
    first, *rest = outputs
    assert first.tag == POLLS and isinstance(first.value, PollObservation)
    return first.value, rest


def test_each_kind_of_poll_has_its_outputs(feed_site) -> None:
    site, _ = feed_site
    feed = Feed(site.url("/feed.xml"))
    with HttpClient(LOOPBACK_HTTP) as client:
        full = poll_feed(feed, Validators(), _get(client))
        not_modified = poll_feed(feed, full.validators, _get(client))
        failed = poll_feed(Feed(site.url("/gone.xml")), Validators(), _get(client))
    # A full answer carries its poll on to parsing, which adds the entries.
    validators, fetched = list(feed_outputs(feed, full))
    seen = fetched.poll
    assert (seen.outcome, seen.status, seen.polled_at) == (
        "fetched", 200, full.fetched.fetched_at.timestamp())  # type: ignore[union-attr]
    assert seen.response_seconds is not None and 0 < seen.response_seconds < 5
    assert (validators.tag, validators.value) == (VALIDATORS, (feed.url, full.validators))
    assert dataclasses.replace(fetched, poll=None) == full.fetched
    seen, rest = _observed(feed_outputs(feed, not_modified, 600.0, "server"))
    assert (seen.outcome, seen.status, seen.interval, seen.interval_reason) == (
        "not_modified", 304, 600.0, "server")
    assert rest == [Tally("feeds.not_modified")]
    seen, rest = _observed(feed_outputs(Feed(site.url("/gone.xml")), failed))
    assert (seen.outcome, seen.status, seen.reason) == ("failed", 404, "http_status")
    (letter,) = [output.value for output in rest]
    assert (letter.stage, letter.reason, letter.subject) == ("fetch_feeds", "http_status", "feed")
    assert (letter.url, letter.feed_url) == (site.url("/gone.xml"), site.url("/gone.xml"))
    assert letter.error_type == "HTTP 404" and "404" in letter.message
    silent = dataclasses.replace(full, validators=Validators())
    (only,) = feed_outputs(feed, silent)  # no validators: none output
    assert dataclasses.replace(only, poll=None) == full.fetched


def test_fetch_feeds_outputs_feeds_validators_letters_and_counts(feed_site) -> None:
    site, _ = feed_site
    fresh, known, gone = (Feed(site.url("/feed.xml"), index=0),
                          Feed(site.url("/feed.xml?again"), index=1,
                               validators=Validators(ETAG, None)),
                          Feed(site.url("/gone.xml"), index=2))
    with test_pipeline() as pipeline:
        fetched = pipeline | beam.Create([fresh, known, gone]) | FetchFeeds(LOOPBACK_HTTP)
        assert_that(fetched.feeds | beam.Map(lambda f: (f.feed.url, f.body)),
                    equal_to([(fresh.url, RSS)]), label="Feeds")
        assert_that(fetched.validators, equal_to([(fresh.url, Validators(ETAG, MODIFIED))]),
                    label="Validators")
        assert_that(fetched.dead_letters | beam.Map(lambda d: (d.url, d.reason, d.subject)),
                    equal_to([(gone.url, "http_status", "feed")]), label="Letters")
        counts = fetched.tallies | beam.Map(lambda t: (t.name, t.n)) | beam.CombinePerKey(sum)
        assert_that(counts, equal_to([("feeds.configured", 3), ("feeds.not_modified", 1)]),
                    label="Tallies")
