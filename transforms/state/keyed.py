"""RememberEntries: a stream's dedup, in Beam keyed state.

Each article id is remembered (keyed by the id) when its entry first passes, with the time it
did; the same id within `ttl` seconds is a duplicate, after that it is new again. Expiry is
decided by comparing event times (the polls' ticks), so it is exact on every runner; an
event-time timer set to the expiry forgets the id when the stream's watermark passes it, which
is when no later poll can find the id still fresh, so the state stays bounded however long the
stream runs. The timer decides by its own time, never by the wall clock: on Prism (Beam 2.77)
a PeriodicImpulse holds the watermark up to one tick ahead of the wall clock, so timers fire
before the wall clock reaches their time (a check against the wall clock kept every id forever).

Beam 2.77's FnApiRunner, the in-process runner of trial streams, fires an event-time timer at
the end of the bundle that set it, whatever its time (both facts are pinned by
tests/test_runner_facts.py): there `expire_by_timer` is off, no timer is set, and a trial
stream, bounded by --stop-after, keeps its ids until it ends.

RememberLostEntries does the same for the entries a stream cannot use at all (no link): such
an entry stays in its feed and is parsed again on every poll that returns the feed, and is a
dead letter once per `ttl`, a duplicate in between.

An id is remembered when its entry is first passed on, whatever becomes of its page: a page
that failed for a passing reason is asked for again only once the id expires. A stream with a
state store therefore keeps ids here only until their outcomes are committed to the store
(pipeline.stream), which then remembers the articles done for good.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.coders import FloatCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from transforms.core import TALLIES, Composite, DeadLetter, Entry, Tally, count, emitted
from transforms.state.dedup import Deduplicated, SkipSeen
from transforms.state.stores import LOOKUP_BATCH

FIRST_SEEN = ReadModifyWriteStateSpec("first_seen", FloatCoder())
FORGET = TimerSpec("forget", TimeDomain.WATERMARK)


@dataclasses.dataclass(eq=False)
class _RememberFn(beam.DoFn):
    """(id, entry or dead letter) -> the value, the first time its id is seen within `ttl`."""

    ttl: float
    expire_by_timer: bool = True  # off where timers fire early (see the module's docstring)

    def process(
        self,
        element: tuple[str, Any],
        timestamp: Any = beam.DoFn.TimestampParam,
        first_seen: Any = beam.DoFn.StateParam(FIRST_SEEN),
        forget: Any = beam.DoFn.TimerParam(FORGET),
    ) -> Iterator[Any]:
        _, value = element
        now = float(timestamp)
        seen = first_seen.read()
        if seen is not None and now < seen + self.ttl:
            yield from emitted([Tally("entries.duplicate")])
            return
        if seen is not None:  # expired, its timer not fired yet: replaced (with its timer)
            yield from emitted([Tally("state.forgotten")])
        first_seen.write(now)
        if self.expire_by_timer:
            forget.set(Timestamp.of(now + self.ttl))
        yield from emitted([Tally("state.remembered")])
        yield value

    @on_timer(FORGET)
    def forget_id(
        self,
        fired_for: Any = beam.DoFn.TimestampParam,
        first_seen: Any = beam.DoFn.StateParam(FIRST_SEEN),
    ) -> Iterator[Any]:
        seen = first_seen.read()
        if seen is None or float(fired_for) < seen + self.ttl:
            return  # already forgotten, or remembered again since this timer was set
        first_seen.clear()
        yield from emitted([Tally("state.forgotten")])


class _DropRepeatsInBundleFn(beam.DoFn):
    """Entry -> the entry, unless its id already passed in this bundle at the same time.

    Such a repeat is a duplicate by _RememberFn's rule whatever its keyed state holds (both
    came in with one poll), so it is counted as one here and spared a round trip through the
    runner's keyed state: feeds of one site often list the same article."""

    def start_bundle(self) -> None:
        self._passed: set[tuple[str, float]] = set()

    def process(self, entry: Entry, timestamp: Any = beam.DoFn.TimestampParam
                ) -> Iterator[Any]:
        key = (entry.article_id, float(timestamp))
        if key in self._passed:
            yield from emitted([Tally("entries.duplicate")])
            return
        self._passed.add(key)
        yield entry


def _with_time(entry: Entry, timestamp: Any = beam.DoFn.TimestampParam) -> tuple[Entry, Any]:
    return entry, timestamp


@dataclasses.dataclass(eq=False)
class _SkipSeenKeepingTime(SkipSeen):
    """SkipSeen for a stream: batches of (entry, time) in, each entry out again with the time
    of the poll that brought it in (a batch itself carries the end of its window)."""

    def process(self, batch: list[tuple[Entry, Any]]) -> Iterator[Any]:  # type: ignore[override]
        seen = self.store().seen([entry.article_id for entry, _ in batch])
        for entry, timestamp in batch:
            if entry.article_id in seen:
                count("entries.seen_before")
                yield beam.pvalue.TaggedOutput(
                    TALLIES, TimestampedValue(Tally("entries.seen_before"), timestamp))
            else:
                yield TimestampedValue(entry, timestamp)


@dataclasses.dataclass(eq=False)
class RememberEntries(Composite):
    """Entry -> one entry per article id within `ttl` seconds, remembered in keyed state; with
    `state_uri`, also none an earlier run or stream wrote (looked up in the state store)."""

    ttl: float
    state_uri: str | None = None
    expire_by_timer: bool = True

    def expand(self, entries: beam.PCollection) -> Deduplicated:
        once_per_bundle = entries | "DropRepeatsInBundle" >> beam.ParDo(
            _DropRepeatsInBundleFn()).with_outputs(TALLIES, main="entries")
        remembered = (
            once_per_bundle.entries
            | "KeyByArticleId" >> beam.Map(lambda entry: (entry.article_id, entry))
            .with_output_types(tuple[str, Entry])
            | "Remember" >> beam.ParDo(_RememberFn(self.ttl, self.expire_by_timer))
            .with_outputs(TALLIES, main="entries")
        )
        counted = (once_per_bundle.tallies, remembered.tallies)
        if self.state_uri is None:
            tallies = counted | "Tallies" >> beam.Flatten()
            return Deduplicated(remembered.entries, tallies)
        new = (
            remembered.entries
            | "WithTime" >> beam.Map(_with_time)
            | "Batch" >> beam.BatchElements(max_batch_size=LOOKUP_BATCH)
            | "SkipSeen" >> beam.ParDo(_SkipSeenKeepingTime(self.state_uri)).with_outputs(
                TALLIES, main="entries")
        )
        tallies = (*counted, new.tallies) | "Tallies" >> beam.Flatten()
        return Deduplicated(new.entries, tallies)


class LostEntries(NamedTuple):
    """What RememberLostEntries outputs: the dead letters, and the duplicates it counted."""

    letters: beam.PCollection
    tallies: beam.PCollection


_REPORTED_ONCE = "reported_once"


def _route(letter: DeadLetter) -> Iterator[Any]:
    if letter.reason == "entry_without_link":
        yield beam.pvalue.TaggedOutput(_REPORTED_ONCE, letter)
    else:
        yield letter


@dataclasses.dataclass(eq=False)
class RememberLostEntries(Composite):
    """Every stage's dead letters (a tuple of PCollections) -> one PCollection of them, in which
    an entry without a link is a dead letter once per `ttl` seconds and a duplicate (tallied)
    when a later poll parses it again. Other dead letters pass: each is an event of its own."""

    ttl: float
    expire_by_timer: bool = True

    def expand(self, stages: tuple[beam.PCollection, ...]) -> LostEntries:
        routed = (
            stages
            | "Flatten" >> beam.Flatten()
            | "Route" >> beam.ParDo(_route).with_outputs(_REPORTED_ONCE, main="others")
        )
        once = (
            routed[_REPORTED_ONCE]
            | "KeyById" >> beam.Map(lambda letter: (letter.id, letter))
            .with_output_types(tuple[str, DeadLetter])
            | "Remember" >> beam.ParDo(_RememberFn(self.ttl, self.expire_by_timer))
            .with_outputs(TALLIES, main="letters")
        )
        letters = (routed.others, once.letters) | "Letters" >> beam.Flatten()
        return LostEntries(letters, once.tallies)
