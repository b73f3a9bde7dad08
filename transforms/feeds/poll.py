"""PollFeeds: a stream's polls. On every tick of its impulse each feed is fetched if it is due;
what the stream remembers about a feed (its validators, when it is due next, how often it has
failed in a row) lives in Beam keyed state.

Feeds are polled in shards: a host's feeds all fall in one shard (by a hash of the host), and a
shard's feed states are one keyed state value, read and written once per tick. On each tick one
small element per shard reaches the stateful step, which sends the shard's due feeds through
the process's per-host lanes at once (the same lanes that fetch article pages, so one host's
limits hold for its feeds and pages together in a worker process) and waits for them all; the
answers update the shard's state. So a tick costs a state read and write per shard, not per
feed, and a shard's polls overlap up to the lanes' limits instead of running one at a time.

Polls are due by the wall clock, not by the ticks' event time: after a stall or a slow start an
impulse releases the ticks it owes at once, and a feed polled on the first of them is not due
on the others (nor are Retry-After and max-age counted from a lagging time). Ticks overtaken by
a later one are dropped before they are spread over the shards, bar one per half interval.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import as_completed
from typing import Any

import apache_beam as beam
from apache_beam.coders import Coder
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

from transforms.core import (
    DEAD_LETTERS,
    FETCH_FEEDS,
    POLLS,
    TALLIES,
    Abandoned,
    Composite,
    Feed,
    Tally,
    Validators,
    emitted,
    guarded,
    per_process,
)
from transforms.feeds.fetch import VALIDATORS, FetchedFeeds, feed_outputs
from transforms.feeds.request import FeedPoll, poll_feed
from transforms.feeds.schedule import poll_time, poll_wait, rss_ttl
from transforms.fetch import (
    DEFAULT_POLITENESS,
    FetchResources,
    HostGate,
    HttpSettings,
    MiB,
    Politeness,
    Response,
    host_key,
    wait_tallies,
)


@dataclasses.dataclass(frozen=True)
class FeedState:
    """What a stream remembers about one feed between polls."""

    validators: Validators = Validators()
    next_due: float = 0.0  # when the feed is due again, seconds since the epoch
    failures: int = 0  # failed polls in a row
    # What set next_due (schedule.poll_wait), for the feed's health; not kept in keyed state.
    wait_reason: str = "config"


def after_poll(state: FeedState, poll: FeedPoll, now: float, interval: float) -> FeedState:
    """The feed's state after a poll made at `now` (seconds since the epoch; a stream's
    poll_time)."""
    if poll.error is not None:
        failures = state.failures + 1
        wait, reason = poll_wait(interval, failures=failures, hints=(poll.error.retry_after,))
        return FeedState(state.validators, now + wait, failures, reason)
    if poll.fetched is not None:  # a full answer: its validators replace the old ones
        validators = poll.validators
        ttl = rss_ttl(poll.fetched.body)
    else:  # not modified: the old ones still hold
        validators, ttl = state.validators, None
    wait, reason = poll_wait(interval, hints=(poll.max_age, ttl))
    return FeedState(validators, now + wait, 0, reason)


class FeedStatesCoder(Coder):
    """A shard's feed states, {feed URL: FeedState}, as JSON: an explicit encoding (no pickled
    class names), so a running stream can be updated after the code around it moves. Pinned
    by tests/test_schedule.py."""

    def encode(self, states: dict[str, FeedState]) -> bytes:
        return json.dumps(
            {url: [s.validators.etag, s.validators.last_modified, s.next_due, s.failures]
             for url, s in sorted(states.items())}, separators=(",", ":")).encode("utf-8")

    def decode(self, encoded: bytes) -> dict[str, FeedState]:
        return {url: FeedState(Validators(etag, last_modified), next_due, failures)
                for url, (etag, last_modified, next_due, failures)
                in json.loads(encoded).items()}

    def is_deterministic(self) -> bool:
        return True


def poll_shard(url: str, shards: int) -> int:
    """The shard a feed is polled in: by its host, so a host's feeds share one."""
    return zlib.crc32(host_key(url).encode("utf-8")) % shards


class PollClock(enum.Enum):
    """What a stream's polls take for the time now."""

    WALL = "wall"  # the wall clock (every real stream)
    # Each tick's own time, for a scripted impulse (a TestStream) that plays hours of polls in
    # seconds; no tick is ever stale.
    TICKS = "ticks"


def stale_tick(tick: float, now: float, interval: float, last_let_through: float | None) -> bool:
    """Whether a tick can be dropped: a later tick is already due at `now` (the impulse is
    releasing ticks it owes), and a tick was let through less than half an interval ago (so
    an impulse that lags steadily by a tick or more still has every tick polled)."""
    return (now >= tick + interval and last_let_through is not None
            and now - last_let_through < interval / 2)


@dataclasses.dataclass(eq=False)
class _EveryShardFn(beam.DoFn):
    """A tick -> (key, shard) for every shard; a stale tick -> a tally (see stale_tick)."""

    shards: int
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
        for shard in range(self.shards):
            yield str(shard), shard


@dataclasses.dataclass(eq=False)
class _PollShardFn(beam.DoFn):
    FEED_STATES = ReadModifyWriteStateSpec("feeds", FeedStatesCoder())

    feeds: tuple[Feed, ...]
    settings: HttpSettings
    politeness: Politeness
    poll_interval: float  # the default, for feeds that do not set their own
    max_bytes: int
    tick: float  # the impulse's interval
    clock: PollClock
    shards: int
    _resources: FetchResources | None = dataclasses.field(default=None, init=False, repr=False)
    _by_shard: dict[int, tuple[Feed, ...]] = dataclasses.field(
        default_factory=dict, init=False, repr=False)
    _waited: list[Tally] = dataclasses.field(default_factory=list, init=False, repr=False)

    def setup(self) -> None:
        settings, politeness = self.settings, self.politeness
        self._resources = per_process(("fetch", settings, politeness),
                                      lambda: FetchResources(settings, politeness))
        by_shard: dict[int, list[Feed]] = {}
        for feed in self.feeds:
            by_shard.setdefault(poll_shard(feed.url, self.shards), []).append(feed)
        self._by_shard = {shard: tuple(feeds) for shard, feeds in by_shard.items()}

    def teardown(self) -> None:
        self._resources = None

    def process(
        self,
        element: tuple[str, int],
        timestamp: Any = beam.DoFn.TimestampParam,
        feed_states: Any = beam.DoFn.StateParam(FEED_STATES),
    ) -> Iterator[Any]:
        feeds = self._by_shard.get(element[1], ())
        now = self._now(timestamp)
        polled_at = (poll_time(float(timestamp), now, self.tick)
                     if self.clock is PollClock.WALL else now)
        known: dict[str, FeedState] = feed_states.read() or {}
        due, counts = [], Counter[str]()
        for feed in feeds:
            state = known.get(feed.url) or FeedState(feed.validators)
            if now < state.next_due:
                counts["feeds.not_due"] += 1
            else:
                due.append((feed, state))
        # The state of feeds no longer configured is dropped with them.
        states = {feed.url: known[feed.url] for feed in feeds if feed.url in known}
        for feed, state, poll in self._poll_all(due):
            counts["feeds.configured"] += 1

            def outputs(feed: Feed = feed, state: FeedState = state,
                        poll: FeedPoll | BaseException = poll) -> Iterator[Any]:
                if isinstance(poll, BaseException):
                    raise poll  # raised on a lane thread; a dead letter like any other stage's
                interval = feed.poll_interval or self.poll_interval
                after = states[feed.url] = after_poll(state, poll, polled_at, interval)
                # yield from, not return: Beam 2.77 warns of any `return` in a process
                # method's source that yields (apache/beam#22969), nested functions included.
                yield from feed_outputs(feed, poll, after.next_due - polled_at,
                                        after.wait_reason)

            for output in guarded(FETCH_FEEDS, feed, outputs):
                if isinstance(output, Tally):
                    counts[output.name] += output.n
                else:
                    yield output
        feed_states.write({feed.url: states[feed.url] for feed in feeds if feed.url in states})
        for waited in self._waited:
            counts[waited.name] += waited.n
        self._waited = []
        yield from emitted([Tally(name, n) for name, n in sorted(counts.items())])

    def _now(self, timestamp: Any) -> float:
        return time.time() if self.clock is PollClock.WALL else float(timestamp)

    def _poll_all(self, due: list[tuple[Feed, FeedState]]
                  ) -> Iterator[tuple[Feed, FeedState, FeedPoll | BaseException]]:
        """Every due feed polled through the per-host lanes at once: (feed, its state before,
        its poll or the exception it raised), each as soon as it is done, so the stages fused
        after this one parse a feed while the others are still being fetched."""
        if self._resources is None:
            raise RuntimeError("PollFeeds used before setup()")
        lanes = self._resources.lanes
        polls: dict[str, FeedPoll] = {}  # each lane thread writes its own feed's
        waits: dict[str, float] = {}

        def work(feed: Feed, state: FeedState) -> Any:
            def run(gate: HostGate) -> None:
                waits[feed.url] = gate.wait_turn()
                polls[feed.url] = poll_feed(feed, state.validators, self._get)
            return run

        started = {lanes.submit(host_key(feed.url), work(feed, state)): (feed, state)
                   for feed, state in due}
        for future in as_completed(started):
            feed, state = started[future]
            error = future.exception()
            self._waited += wait_tallies(feed.url, waits.get(feed.url, 0.0))
            yield feed, state, error if error is not None else polls[feed.url]

    def _get(self, url: str, **kwargs: Any) -> Response:
        resources = self._resources
        if resources is None:  # torn down (its bundle failed) while polls were queued
            raise Abandoned("PollFeeds was torn down")
        return resources.client.get(url, max_bytes=self.max_bytes, **kwargs)


@dataclasses.dataclass(eq=False)
class PollFeeds(Composite):
    """Ticks -> FetchedFeeds: on each tick, every feed that is due is fetched (conditionally,
    with the validators its last full answer gave), its shard's due feeds at once; a feed not
    due is counted as such. The `feeds.configured` tally counts the feeds polled."""

    feeds: tuple[Feed, ...]
    settings: HttpSettings
    poll_interval: float
    politeness: Politeness = DEFAULT_POLITENESS
    max_bytes: int = 5 * MiB
    clock: PollClock = PollClock.WALL
    # A shard's feeds are polled by one worker at a time; more shards spread the polls over
    # more workers, fewer keep more of a tick's polls overlapping in one.
    shards: int = 1

    def expand(self, ticks: beam.PCollection) -> FetchedFeeds:
        tick = tick_interval(self.feeds, self.poll_interval)
        every = (
            ticks
            | "EveryShard" >> beam.ParDo(_EveryShardFn(self.shards, tick, self.clock))
            .with_output_types(tuple[str, int]).with_outputs(TALLIES, main="shards")
        )
        polled = (
            every.shards
            | "Poll" >> beam.ParDo(_PollShardFn(
                self.feeds, self.settings, self.politeness, self.poll_interval,
                self.max_bytes, tick, self.clock, self.shards,
            )).with_outputs(DEAD_LETTERS, VALIDATORS, TALLIES, POLLS, main="feeds")
        )
        tallies = (every.tallies, polled.tallies) | "Tallies" >> beam.Flatten()
        return FetchedFeeds(polled.feeds, polled.validators, polled.dead_letters, tallies,
                            polled.polls)


def tick_interval(feeds: tuple[Feed, ...], poll_interval: float) -> float:
    """The impulse's interval: the shortest poll interval, of the feeds or the default one,
    so that on every tick each feed that is due is polled."""
    return min([feed.poll_interval for feed in feeds if feed.poll_interval] + [poll_interval])
