"""PollFeeds: a stream's polls. On every tick of its impulse each feed is fetched if it is due;
what the stream remembers about a feed (its validators, when it is due next, how often it has
failed in a row) lives in Beam keyed state, keyed by the feed's URL.

Polls are due by the wall clock, not by the ticks' event time: after a stall or a slow start an
impulse releases the ticks it owes at once, and a feed polled on the first of them is not due
on the others (nor are Retry-After and max-age counted from a lagging time). Ticks overtaken by
a later one are dropped before they are spread over the feeds, bar one per tick interval.

The request is made by the DoFn that holds the feed's state, since its answer updates that
state and a Beam graph cannot feed results back upstream; it goes through the process's shared
HTTP client and per-host lanes like every other request, so per-host limits hold.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

from transforms.core import (
    DEAD_LETTERS,
    FETCH_FEEDS,
    TALLIES,
    Composite,
    Feed,
    Tally,
    Validators,
    emitted,
    guarded,
    per_process,
)
from transforms.feeds.fetch import VALIDATORS, FeedPoll, FetchedFeeds, feed_outputs, poll_feed
from transforms.feeds.schedule import next_poll_in, rss_ttl
from transforms.fetch import (
    DEFAULT_POLITENESS,
    FetchResources,
    HostGate,
    HttpSettings,
    MiB,
    Politeness,
    Response,
    host_key,
)


@dataclasses.dataclass(frozen=True)
class FeedState:
    """What a stream remembers about one feed between polls."""

    validators: Validators = Validators()
    next_due: float = 0.0  # when the feed is due again, seconds since the epoch
    failures: int = 0  # failed polls in a row


def after_poll(state: FeedState, poll: FeedPoll, now: float, interval: float,
               leeway: float = 0.0) -> FeedState:
    """The feed's state after a poll made at `now` (seconds since the epoch); `leeway` as in
    next_poll_in."""
    if poll.error is not None:
        failures = state.failures + 1
        wait = next_poll_in(interval, failures=failures, hints=(poll.error.retry_after,),
                            leeway=leeway)
        return FeedState(state.validators, now + wait, failures)
    if poll.fetched is not None:  # a full answer: its validators replace the old ones
        validators = poll.validators
        ttl = rss_ttl(poll.fetched.body)
    else:  # not modified: the old ones still hold
        validators, ttl = state.validators, None
    wait = next_poll_in(interval, hints=(poll.max_age, ttl), leeway=leeway)
    return FeedState(validators, now + wait, 0)


class PollClock(enum.Enum):
    """What a stream's polls take for the time now."""

    WALL = "wall"  # the wall clock (every real stream)
    # Each tick's own time, for a scripted impulse (a TestStream) that plays hours of polls in
    # seconds; no tick is ever stale.
    TICKS = "ticks"


def stale_tick(tick: float, now: float, interval: float, last_let_through: float | None) -> bool:
    """Whether a tick can be dropped: a later tick is already due at `now` (the impulse is
    releasing ticks it owes), and a tick was let through less than `interval` ago."""
    return (now >= tick + interval and last_let_through is not None
            and now - last_let_through < interval)


@dataclasses.dataclass(eq=False)
class _EveryFeedFn(beam.DoFn):
    """A tick -> (url, feed) for every feed; a stale tick -> a tally (see stale_tick)."""

    feeds: tuple[Feed, ...]
    interval: float
    clock: PollClock
    _let_through: float | None = dataclasses.field(default=None, init=False, repr=False)

    def process(self, tick: Any, timestamp: Any = beam.DoFn.TimestampParam) -> Iterator[Any]:
        if self.clock is PollClock.WALL:
            now = time.time()
            if stale_tick(float(timestamp), now, self.interval, self._let_through):
                yield from emitted([Tally("ticks.stale")])
                return
            self._let_through = now
        for feed in self.feeds:
            yield feed.url, feed


@dataclasses.dataclass(eq=False)
class _PollFeedFn(beam.DoFn):
    FEED_STATE = ReadModifyWriteStateSpec("feed", PickleCoder())

    settings: HttpSettings
    politeness: Politeness
    poll_interval: float  # the default, for feeds that do not set their own
    max_bytes: int
    tick: float  # the impulse's interval
    clock: PollClock
    _resources: FetchResources | None = dataclasses.field(default=None, init=False, repr=False)

    def setup(self) -> None:
        settings, politeness = self.settings, self.politeness
        self._resources = per_process(("fetch", settings, politeness),
                                      lambda: FetchResources(settings, politeness))

    def teardown(self) -> None:
        self._resources = None

    def process(
        self,
        element: tuple[str, Feed],
        timestamp: Any = beam.DoFn.TimestampParam,
        feed_state: Any = beam.DoFn.StateParam(FEED_STATE),
    ) -> Iterator[Any]:
        _, feed = element
        now = time.time() if self.clock is PollClock.WALL else float(timestamp)
        state: FeedState = feed_state.read() or FeedState(feed.validators)
        if now < state.next_due:
            yield from emitted([Tally("feeds.not_due")])
            return
        yield from emitted(guarded(
            FETCH_FEEDS, feed, lambda: self._poll(feed, state, now, feed_state)))

    def _poll(self, feed: Feed, state: FeedState, now: float, feed_state: Any) -> Iterator[Any]:
        assert self._resources is not None
        polls: list[FeedPoll] = []

        def work(gate: HostGate) -> None:
            gate.wait_turn()
            polls.append(poll_feed(feed, state.validators, self._get))

        # Waited for here: the answer updates this feed's state, which only this call holds.
        self._resources.lanes.submit(host_key(feed.url), work).result()
        (poll,) = polls
        feed_state.write(after_poll(state, poll, now, feed.poll_interval or self.poll_interval,
                                    leeway=self.tick / 2))
        yield Tally("feeds.configured")
        yield from feed_outputs(feed, poll)

    def _get(self, url: str, **kwargs: Any) -> Response:
        assert self._resources is not None
        return self._resources.client.get(url, max_bytes=self.max_bytes, **kwargs)


@dataclasses.dataclass(eq=False)
class PollFeeds(Composite):
    """Ticks -> FetchedFeeds: on each tick, every feed that is due is fetched (conditionally,
    with the validators its last full answer gave); a feed not due is counted as such. The
    `feeds.configured` tally counts the feeds polled."""

    feeds: tuple[Feed, ...]
    settings: HttpSettings
    poll_interval: float
    politeness: Politeness = DEFAULT_POLITENESS
    max_bytes: int = 5 * MiB
    clock: PollClock = PollClock.WALL

    def expand(self, ticks: beam.PCollection) -> FetchedFeeds:
        tick = tick_interval(self.feeds, self.poll_interval)
        every = (
            ticks
            | "EveryFeed" >> beam.ParDo(_EveryFeedFn(self.feeds, tick, self.clock))
            .with_output_types(tuple[str, Feed]).with_outputs(TALLIES, main="feeds")
        )
        polled = (
            every.feeds
            | "Poll" >> beam.ParDo(_PollFeedFn(
                self.settings, self.politeness, self.poll_interval, self.max_bytes, tick,
                self.clock,
            )).with_outputs(DEAD_LETTERS, VALIDATORS, TALLIES, main="feeds")
        )
        tallies = (every.tallies, polled.tallies) | "Tallies" >> beam.Flatten()
        return FetchedFeeds(polled.feeds, polled.validators, polled.dead_letters, tallies)


def tick_interval(feeds: tuple[Feed, ...], poll_interval: float) -> float:
    """The impulse's interval: the shortest poll interval, of the feeds or the default one,
    so that on every tick each feed that is due is polled."""
    return min([feed.poll_interval for feed in feeds if feed.poll_interval] + [poll_interval])
