"""FetchFeeds: feed bytes over newsbeam's HTTP client, conditionally when validators are known."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, NamedTuple

import apache_beam as beam

from transforms.core import (
    DEAD_LETTERS,
    FETCH_FEEDS,
    POLL_IN_LANE,
    POLLS,
    TALLIES,
    Abandoned,
    Composite,
    Feed,
    Place,
    PollObservation,
    Tally,
    count,
    dead_letter,
    per_process,
)
from transforms.feeds.request import FeedPoll, poll_in_lane
from transforms.fetch import (
    DEFAULT_POLITENESS,
    HostDone,
    HostGate,
    HttpSettings,
    LaneProcesses,
    LaneProcessLost,
    MiB,
    Outcome,
    PoliteFetchFn,
    Politeness,
    fetch_grouped_by_host,
    wait_tallies,
)

# The tag of FetchFeeds' output of (feed URL, Validators) pairs, from feeds fetched in full.
VALIDATORS = "validators"

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


def polled_outputs(feed: Feed, waited: float, poll: FeedPoll) -> Iterator[Any]:
    """A batch run's poll's outputs: its politeness wait's tallies, then feed_outputs."""
    yield from wait_tallies(feed.url, waited)
    yield from feed_outputs(feed, poll)


@dataclasses.dataclass(eq=False)
class _FetchFeedFn(PoliteFetchFn):
    stage = FETCH_FEEDS
    processes: int = 0  # lane processes to poll in; 0: this process's own lanes
    # The process's, acquired in setup() and let go of in teardown(); never pickled.
    _lane_processes: LaneProcesses | None = dataclasses.field(
        default=None, init=False, repr=False)

    def setup(self) -> None:
        super().setup()
        if self.processes:
            settings, politeness, processes = self.settings, self.politeness, self.processes
            self._lane_processes = per_process(
                ("lane processes", settings, politeness, processes),
                lambda: LaneProcesses(settings, politeness, processes, (POLL_IN_LANE,)))
            self._lane_processes.warm_up()  # while the bundle reads its groups of feeds

    def teardown(self) -> None:
        super().teardown()
        self._lane_processes = None  # others may still use them: released, not stopped

    def fetch_item(self, feed: Feed, gate: HostGate) -> Iterator[Any]:
        yield from polled_outputs(
            feed, *poll_in_lane(feed, gate, self.resources().client, self.max_bytes))

    def submit_group(self, host: str, feeds: list[Feed], place: Place) -> Future[None]:
        """The host's feeds polled in its lane process, if there are lane processes: each
        feed's outputs delivered as it comes back (a poll that raised there is the feed's
        dead letter, as here). Those that do not come back (the process died first, or the
        answer would not pickle) are polled in this process's lanes, spaced from the host's
        last poll there (from the moment the process was found gone, if it died). Done when
        all are delivered."""
        in_own_lanes = super().submit_group
        if self._lane_processes is None:
            return in_own_lanes(host, feeds, place)
        answered = [False] * len(feeds)  # written and read on the lane process's reader thread

        def on_outcome(index: int, outcome: Outcome) -> None:
            answered[index] = True
            self.deliver(feeds[index], place, _outputs_of(feeds[index], outcome))

        polled = self._lane_processes.submit_all(host, POLL_IN_LANE, feeds, on_outcome,
                                                 self.max_bytes)
        delivered: Future[None] = Future()

        def on_polled(done: Future[HostDone]) -> None:
            try:
                try:
                    last_start = done.result().last_start
                except LaneProcessLost:
                    # It may have started requests after the last that came back: spaced
                    # from now, the moment it is known gone, none of them is too close.
                    last_start = time.monotonic()
                self.resources().lanes.note_start(host, last_start)
                rest = [feed for feed, came in zip(feeds, answered, strict=True) if not came]
                if rest:
                    again = in_own_lanes(host, rest, place)
                    again.add_done_callback(lambda ran: _settle(delivered, ran))
                    return
            except Abandoned:  # torn down meanwhile: what is left is dropped, as in the lanes
                delivered.set_result(None)
            except BaseException as error:  # a bug: the bundle fails with it
                delivered.set_exception(error)
            else:
                delivered.set_result(None)

        polled.add_done_callback(on_polled)
        return delivered


def _outputs_of(feed: Feed, outcome: Outcome) -> Callable[[], Iterator[Any]]:
    """The outputs of a feed polled in a lane process, to deliver (what poll_in_lane raised
    there is raised in them)."""
    return lambda: polled_outputs(feed, *outcome.result())


def _settle(future: Future[None], ran: Future[None]) -> None:
    error = ran.exception()
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(None)


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

    Feeds are grouped by host, so a host that serves many feeds gets its politeness limits too,
    in the worker's own lanes or, with `processes`, in one of its lane processes.
    Feeds carrying validators are fetched conditionally; a 304 is counted, not output.
    """

    settings: HttpSettings
    politeness: Politeness = DEFAULT_POLITENESS
    max_bytes: int = 5 * MiB
    # Poll in this many lane processes per worker process (hosts spread over them, each
    # host's limits kept in one), so polls use the machine's cores; 0: in the worker's own.
    processes: int = 0

    def expand(self, feeds: beam.PCollection) -> FetchedFeeds:
        fn = _FetchFeedFn(self.settings, self.max_bytes, self.politeness, self.processes)
        fetched = fetch_grouped_by_host(feeds, _feed_url, fn, DEAD_LETTERS, VALIDATORS,
                                        TALLIES, POLLS, main="feeds")
        # Counted on the way in, apart from the fetch, whatever becomes of each feed.
        configured = (feeds | "CountConfigured" >> beam.combiners.Count.Globally()
                      | "ConfiguredTally" >> beam.Map(_configured))
        tallies = (configured, fetched.tallies) | "Tallies" >> beam.Flatten()
        return FetchedFeeds(fetched.feeds, fetched.validators, fetched.dead_letters, tallies,
                            fetched.polls)
