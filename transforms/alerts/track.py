"""WatchTopics: each run's (or stream window's) count of records about each topic, measured
against the topic's usual level in the state store, kept there, and an Alert per surge."""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import apache_beam as beam

from transforms.alerts.rules import HISTORY, surge
from transforms.core import Alert, Composite, GatherOnce, Record, Tally
from transforms.state import StateStore, StateStoreFn


def topic_alerts(records: Iterable[Record], topics: Iterable[str], store: StateStore,
                 period: str, period_seconds: float | None, end: datetime,
                 pane: int = 0) -> list[Alert]:
    """The alerts of one period (a run, or a stream window ending at `end`; `pane`, a late
    pane's records of it): each topic's count of records about it, kept in `store` (every
    topic's, 0 included; saving the same pane again, as a retried step does, replaces it),
    then the period's total against the topic's totals in earlier periods of the same kind.
    A topic alerts once per period: not again when a late pane adds to a count that was
    already an alert."""
    about: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        for tag in record.topics:
            if tag.relevance == "about":
                about[tag.name].append(record)
    counts = {topic: len(about.get(topic, ())) for topic in sorted(set(topics) | set(about))}
    store.save_topic_counts(period, end, counts, pane)
    instant = timedelta(microseconds=1)
    totals = {topic: sums[0] for topic, sums in
              store.topic_counts(period, end - instant, end + instant).items()}
    history = store.topic_counts(period, end - HISTORY, end)
    alerts = []
    for topic, count in counts.items():
        total = totals.get(topic, count)
        measured = surge(history.get(topic, []), total)
        if not measured.alert or surge(history.get(topic, []), total - count).alert:
            continue
        found = sorted(about[topic], key=lambda record: record.id)
        alerts.append(Alert(
            id=hashlib.sha256(f"{topic}\x1f{period}\x1f{end.isoformat()}".encode()).hexdigest()[
                :32],
            topic=topic, period=period.split(":", 1)[0], period_seconds=period_seconds,
            period_end=end, count=total, usual_mean=measured.mean, usual_stdev=measured.stdev,
            threshold=measured.threshold, history_periods=measured.periods,
            article_ids=tuple(r.id for r in found),
            article_titles=tuple(r.title or "" for r in found),
            article_urls=tuple(r.url for r in found),
        ))
    return alerts


def alert_tally(alert: Alert) -> Tally:
    """An alert, counted in its run's (or window's) summary: `alerts.<topic>`."""
    return Tally(f"alerts.{alert.topic}")


@dataclasses.dataclass(eq=False)
class _AlertsFn(StateStoreFn):
    topics: tuple[str, ...] = ()
    period: str = "run"  # what kind of period the counts are kept under
    period_seconds: float | None = None
    run_id: str | None = None

    def process(self, grouped: tuple[str, Iterable[Any]], window: Any = beam.DoFn.WindowParam,
                pane: Any = beam.DoFn.PaneInfoParam) -> Iterator[Alert]:
        records = [element for element in grouped[1] if isinstance(element, Record)]
        if self.period_seconds is None:  # a run: it ends when its id says it started
            end, index = run_time(self.run_id), 0
        else:
            end, index = window.end.to_utc_datetime(has_tz=True), pane.index
        yield from topic_alerts(records, self.topics, self.store(), self.period,
                                self.period_seconds, end, index)


def run_time(run_id: str | None) -> datetime:
    """When a run started, from its id (20261207T084832544Z): the same on a retry."""
    if not run_id:
        return datetime.now(UTC)
    return datetime.strptime(run_id[:15], "%Y%m%dT%H%M%S").replace(
        tzinfo=UTC) + timedelta(milliseconds=int(run_id[15:18]))


@dataclasses.dataclass(eq=False)
class WatchTopics(Composite):
    """(records, outputs to wait for) -> Alert per topic far above its usual level, once per
    run (or per stream window of `window` seconds, the records already in those windows).
    Needs a state store: without one there is no usual level, and no alert."""

    state_uri: str
    topics: tuple[str, ...]
    window: float | None = None
    # A batch run's id (its time is the period's end), or the stream's (its windows' counts
    # are kept apart from other streams' and other window sizes').
    run_id: str | None = None

    def expand(self, inputs: tuple[beam.PCollection, ...]) -> beam.PCollection:
        return (
            inputs
            | "Gather" >> GatherOnce()
            | "Measure" >> beam.ParDo(_AlertsFn(
                self.state_uri, self.topics,
                "run" if self.window is None else f"window:{self.run_id}:{self.window:g}",
                self.window, self.run_id if self.window is None else None))
        )
