"""One request for a feed: conditional when validators are known, and what it came back with.
Imports no Beam: the lane processes (transforms.fetch.lane_processes) run `poll_in_lane`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from transforms.core import Feed, FetchedFeed, Validators
from transforms.feeds.schedule import max_age
from transforms.fetch import FetchError, HostGate, HttpClient, Response, is_feed_content_type

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


def poll_in_lane(feed: Feed, gate: HostGate, client: HttpClient,
                 max_bytes: int) -> tuple[float, FeedPoll]:
    """A batch run's poll of `feed` in one of its host's lanes: its turn waited for, then the
    request with the validators the feed carries; the seconds waited, and the poll."""
    waited = gate.wait_turn()
    return waited, poll_feed(feed, feed.validators,
                             lambda url, **kwargs: client.get(url, max_bytes=max_bytes, **kwargs))
