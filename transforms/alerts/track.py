"""WatchTopics: each run's (or stream window's) count of records about each topic, measured
against the topic's usual level in the state store, kept there, and an Alert per surge."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam

from transforms.alerts.rules import HISTORY, surge
from transforms.core import Alert, Composite, Record, Tally
from transforms.state import StateStore, open_state


def topic_alerts(records: Iterable[Record], topics: Iterable[str], store: StateStore,
                 period: str, period_seconds: float | None, end: datetime) -> list[Alert]:
    """The alerts of one period (a run, or a window ending at `end`): each topic's count of
    records about it, against its counts in the same kind of period in `store`, which then
    keeps this period's counts (every topic's, 0 included)."""
    about: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        for tag in record.topics:
            if tag.relevance == "about":
                about[tag.name].append(record)
    counts = {topic: len(about.get(topic, ())) for topic in sorted(set(topics) | set(about))}
    history = store.topic_counts(period, end - HISTORY)
    alerts = []
    for topic, count in counts.items():
        measured = surge(history.get(topic, []), count)
        if not measured.alert:
            continue
        found = sorted(about[topic], key=lambda record: record.id)
        alerts.append(Alert(
            id=hashlib.sha256(f"{topic}\x1f{period}\x1f{end.isoformat()}".encode()).hexdigest()[
                :32],
            topic=topic, period=period, period_seconds=period_seconds, period_end=end,
            count=count, usual_mean=measured.mean, usual_stdev=measured.stdev,
            threshold=measured.threshold, history_periods=measured.periods,
            article_ids=tuple(r.id for r in found),
            article_titles=tuple(r.title or "" for r in found),
            article_urls=tuple(r.url for r in found),
        ))
    store.save_topic_counts(period, end, counts)
    return alerts


def alert_tally(alert: Alert) -> Tally:
    """An alert, counted in its run's (or window's) summary: `alerts.<topic>`."""
    return Tally(f"alerts.{alert.topic}")


@dataclasses.dataclass(eq=False)
class _AlertsFn(beam.DoFn):
    state_uri: str
    topics: tuple[str, ...]
    period_seconds: float | None
    clock: Callable[[], float]
    _store: StateStore | None = dataclasses.field(default=None, init=False, repr=False)

    def setup(self) -> None:
        self._store = open_state(self.state_uri)

    def teardown(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def process(self, grouped: tuple[str, Iterable[Any]],
                window: Any = beam.DoFn.WindowParam) -> Iterator[Alert]:
        assert self._store is not None
        records = [element for element in grouped[1] if isinstance(element, Record)]
        if self.period_seconds is None:  # a run: it ends now
            end, period = datetime.fromtimestamp(self.clock(), UTC), "run"
        else:
            end, period = window.end.to_utc_datetime(has_tz=True), "window"
        yield from topic_alerts(records, self.topics, self._store, period,
                                self.period_seconds, end)


@dataclasses.dataclass(eq=False)
class WatchTopics(Composite):
    """(records, outputs to wait for) -> Alert per topic far above its usual level, once per
    run (or per stream window of `window` seconds, the records already in those windows).
    Needs a state store: without one there is no usual level, and no alert."""

    state_uri: str
    topics: tuple[str, ...]
    window: float | None = None
    clock: Callable[[], float] = time.time

    def expand(self, inputs: tuple[beam.PCollection, ...]) -> beam.PCollection:
        records, *after = inputs
        waits = [done | f"Wait{index}" >> beam.Map(lambda _: None)
                 for index, done in enumerate(after)]
        return (
            (records, *waits)
            | "Together" >> beam.Flatten()
            | "OneKey" >> beam.WithKeys(lambda _: "")
            | "Gather" >> beam.GroupByKey()
            | "Measure" >> beam.ParDo(_AlertsFn(self.state_uri, self.topics, self.window,
                                                self.clock))
        )
