"""TrackFeedHealth: a run's (or a stream window's) polls, what parsing found and the records
written, folded into each polled feed's health; kept in the state store, output as rows."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.transforms import window
from apache_beam.transforms.window import IntervalWindow, TimestampedValue
from apache_beam.utils.timestamp import Duration

from transforms.core import (
    Composite,
    GatherOnce,
    PollObservation,
    Record,
    Tally,
)
from transforms.health.rules import FeedHealth, as_row, decode, encode, updated
from transforms.state import StateStore, StateStoreFn

# The tag of TrackFeedHealth's FeedHealthRow per feed, when asked for.
ROWS = "rows"


def fold_health(
    elements: Iterable[PollObservation | str | None], store: StateStore | None,
    now: float, period: str = "",
) -> list[FeedHealth]:
    """The health of each feed this run or window polled or wrote records of, from its last
    kept health (in `store`, if any) and what was seen: its polls and the feed URL of each
    record written. The new health is kept in `store`."""
    polls: dict[str, list[PollObservation]] = defaultdict(list)
    new_articles: dict[str, int] = defaultdict(int)
    for element in elements:
        if element is None:  # what the step waited for
            continue
        if isinstance(element, PollObservation):
            polls[element.feed_url].append(element)
        else:
            new_articles[element] += 1
    # A stream's records fall in the window of their page's fetch, which may be a later one
    # than their feed's poll: a feed may have new articles and no poll in a window.
    urls = sorted(set(polls) | set(new_articles))
    kept = store.feed_health(urls) if store is not None and urls else {}
    healths, encoded = [], {}
    for url in urls:
        previous = decode(kept[url]) if url in kept else None
        health = updated(previous, url, polls[url], new_articles[url], now, period)
        encoded[url] = encode(health)
        healths.append(health)
    if store is not None and encoded:
        store.save_feed_health(encoded)
    return healths


def health_tallies(healths: Iterable[FeedHealth]) -> list[Tally]:
    """The feeds of each class, counted in the run's (or window's) summary:
    `health.<class>`."""
    classes = Counter(health.health_class for health in healths)
    return [Tally(f"health.{name}", n) for name, n in sorted(classes.items())]


def period_key(run_id: str | None, window: Any, pane: Any) -> str:
    """What names one firing of a run's (or a stream window's) step: the run id, or the
    window and the pane's index (a late pane is new data for the same window)."""
    if isinstance(window, IntervalWindow):
        return f"{window.start.micros}-{window.end.micros}#{pane.index}"
    return run_id or ""


@dataclasses.dataclass(eq=False)
class _HealthFn(StateStoreFn):
    clock: Callable[[], float] = time.time
    run_id: str | None = None
    rows: bool = False  # output a FeedHealthRow per feed too (for a --feed-health sink)

    def process(self, grouped: tuple[str, Iterable[Any]], window: Any = beam.DoFn.WindowParam,
                pane: Any = beam.DoFn.PaneInfoParam) -> Iterator[Any]:
        healths = fold_health(grouped[1], self.store_if_any(), self.clock(),
                              period_key(self.run_id, window, pane))
        if self.rows:
            for health in healths:
                yield beam.pvalue.TaggedOutput(ROWS, as_row(health))
        yield from health_tallies(healths)


def _stamped_at(element: PollObservation) -> TimestampedValue:
    return TimestampedValue(element, element.polled_at)


def _feed_of(record: Record) -> str:
    return record.feed_url


class FeedHealthOutputs(NamedTuple):
    """What TrackFeedHealth outputs, per run (or per stream window)."""

    tallies: beam.PCollection  # Tally: the feeds of each class (`health.<class>`)
    rows: beam.PCollection | None  # FeedHealthRow per feed, with rows=True


@dataclasses.dataclass(eq=False)
class TrackFeedHealth(Composite):
    """(polls, records) -> the feeds of each health class, and with `rows` a FeedHealthRow
    per polled feed, once per run (or per stream window: `window` seconds, the records
    already in those windows). With a state URI, each feed's health carries over from the
    last run or window, and is kept for the next."""

    state_uri: str | None
    window: float | None = None
    lateness: float = 86400.0  # as the stream's other windows (transforms.sinks.IntoWindows)
    clock: Callable[[], float] = time.time
    run_id: str | None = None  # a batch run's: a retried step does not fold it in twice
    rows: bool = False  # only a --feed-health sink needs them

    def expand(self, inputs: tuple[beam.PCollection, ...]) -> FeedHealthOutputs:
        """inputs: the fetch stage's polls, the parse stage's, the records, and any outputs to
        wait for (a batch run's commit): the health is kept once they are complete."""
        fetched, parsed, records, *after = inputs
        feeds = records | "FeedOfRecord" >> beam.Map(_feed_of)
        # One group for the run (or window): the kept rows are read and written at once.
        if self.window is None:
            gathered = (fetched, parsed, feeds, *after) | "Gather" >> GatherOnce(gathered=3)
        else:  # the polls are put in windows of their time first
            seen = ((fetched, parsed) | "Polls" >> beam.Flatten()
                    | "StampPolls" >> beam.Map(_stamped_at)
                    | "PollWindows" >> beam.WindowInto(
                        window.FixedWindows(self.window),
                        allowed_lateness=Duration(seconds=self.lateness)))
            gathered = (((seen, feeds) | "Together" >> beam.Flatten(), *after)
                        | "Gather" >> GatherOnce())
        updated = gathered | "Update" >> beam.ParDo(
            _HealthFn(self.state_uri, self.clock, self.run_id, self.rows)
        ).with_outputs(ROWS, main="tallies")
        return FeedHealthOutputs(updated.tallies, updated.rows if self.rows else None)
