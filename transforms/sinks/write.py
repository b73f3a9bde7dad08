"""WriteRecords and WriteDeadLetters: every configured sink, fed from the same PCollection, and
`prepare_sinks`, which checks every sink before the run fetches anything."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any, ClassVar

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from transforms.core import Alert, Composite, DeadLetter, FeedHealthRow, Record, count
from transforms.sinks.bigquery import WriteToBigQuery, check_connectors
from transforms.sinks.files import (
    ALERTS_PREFIX,
    DEAD_LETTERS_PREFIX,
    FEED_HEALTH_PREFIX,
    RECORDS_PREFIX,
    WriteJsonLines,
    WriteParquet,
    run_prefix,
)
from transforms.sinks.postgres import WriteToPostgres, prepare_table, present_in_table
from transforms.sinks.redis_stream import WriteToRedisStream, check_stream, present_in_stream
from transforms.sinks.uris import Sink, SinkError
from transforms.sinks.windowed import JsonLinesSink, ParquetSink, WriteWindowFiles


def prepare_sinks(sinks: tuple[Sink, ...], element: type) -> None:
    """Check every sink now, so a bad one fails the run before any feed is fetched: tables are
    created or their layout checked, servers pinged, folders made where they are local."""
    for sink in sinks:
        if sink.family == "postgresql":
            prepare_table(sink, element)
        elif sink.family == "redis":
            check_stream(sink)
        elif sink.family == "bigquery":
            check_connectors(sink)
        elif FileSystems.get_scheme(sink.target) in (None, "file"):
            try:
                os.makedirs(sink.target, exist_ok=True)
            except OSError as exc:
                raise SinkError(f"sink {sink.shown}: cannot create the folder:"
                                f" {exc.strerror}") from None


def present_in_sink(sink: Sink, ids: Sequence[str]) -> set[str] | None:
    """Which of these record ids a database sink holds (None for a sink that cannot tell
    cheaply: files, whose windows are checked by name, and BigQuery)."""
    if sink.family == "postgresql":
        return present_in_table(sink, ids)
    if sink.family == "redis":
        return present_in_stream(sink, ids)
    return None


def _counted(element: Any, name: str) -> Any:
    count(name)
    return element


def _label(sink: Sink, index: int) -> str:
    # Stable per position and family: Dataflow's update and monitoring key on labels.
    return f"{sink.family.capitalize()}{index if index else ''}"


@dataclasses.dataclass(frozen=True)
class Cut:
    """How a job's output is cut: per run (a batch run's file set), or per window (a stream's
    elements, already in their windows: a file set per window; databases are written in
    batches as bundles end)."""

    windowed: bool = False
    launch: str = ""  # a stream's launch (a run id): its files are named by window and launch


PER_RUN = Cut()


@dataclasses.dataclass(eq=False)
class _SinkWrite(Composite):
    """One sink's writer for records or dead letters (`element`)."""

    sink: Sink
    prefix: str
    element: type
    cut: Cut = PER_RUN
    metric: str = ""  # names the sink in its counter: its family and position, e.g. jsonl

    def expand(self, elements: beam.PCollection) -> beam.PCollection:
        """-> a PCollection that is complete once every element is durably written (file
        names, batch sizes or load jobs: something a later step can wait on)."""
        if self.metric:  # the counter `written.<sink>`, for monitoring
            elements = elements | "Count" >> beam.Map(_counted, f"written.{self.metric}")
        family = self.sink.family
        if self.cut.windowed and family in ("jsonl", "parquet"):
            suffix = ".jsonl" if family == "jsonl" else ".parquet"
            element = self.element

            def sink() -> fileio.FileSink:
                return JsonLinesSink() if family == "jsonl" else ParquetSink(element)

            return elements | WriteWindowFiles(self.sink.target, self.prefix, suffix, sink,
                                               self.cut.launch)
        if family == "jsonl":
            return elements | WriteJsonLines(self.sink.target, self.prefix)
        if family == "parquet":
            return elements | WriteParquet(self.sink.target, self.prefix, self.element)
        if family == "postgresql":
            return elements | WriteToPostgres(self.sink, self.element)
        if family == "redis":
            return elements | WriteToRedisStream(self.sink)
        if family == "bigquery":
            return elements | WriteToBigQuery(self.sink, streaming=self.cut.windowed,
                                              element=self.element)
        raise SinkError(f"sink {self.sink.shown}: no writer for {family}")


@dataclasses.dataclass(eq=False)
class WriteRecords(Composite):
    """Records to every configured sink, named by `run_id` (a batch run's, or a stream's)."""

    sinks: tuple[Sink, ...]
    run_id: str | None = None
    cut: Cut = PER_RUN

    def expand(self, records: beam.PCollection) -> tuple[beam.PCollection, ...]:
        """-> one PCollection per sink, complete once the sink has every record."""
        prefix = run_prefix(RECORDS_PREFIX, self.run_id)
        return tuple(
            records | _label(sink, index) >> _SinkWrite(sink, prefix, Record, self.cut,
                                                        _label(sink, index).lower())
            for index, sink in enumerate(self.sinks)
        )


@dataclasses.dataclass(eq=False)
class _WriteToItsSink(Composite):
    """One kind of element (ELEMENT) to its one sink, named PREFIX-<run id> where it is files."""

    PREFIX: ClassVar[str]
    ELEMENT: ClassVar[type]
    sink: Sink
    run_id: str | None = None
    cut: Cut = PER_RUN

    def expand(self, elements: beam.PCollection) -> beam.PCollection:
        """-> a PCollection complete once the sink has every element."""
        prefix = run_prefix(self.PREFIX, self.run_id)
        return elements | _label(self.sink, 0) >> _SinkWrite(self.sink, prefix, self.ELEMENT,
                                                              self.cut)


@dataclasses.dataclass(eq=False)
class WriteDeadLetters(_WriteToItsSink):
    """Dead letters from every stage to the dead-letter sink."""

    PREFIX = DEAD_LETTERS_PREFIX
    ELEMENT = DeadLetter


@dataclasses.dataclass(eq=False)
class WriteFeedHealth(_WriteToItsSink):
    """Each polled feed's health row to the `--feed-health` sink (a database keeps one row per
    feed, replaced; files get a file set per run or window)."""

    PREFIX = FEED_HEALTH_PREFIX
    ELEMENT = FeedHealthRow


@dataclasses.dataclass(eq=False)
class WriteAlerts(_WriteToItsSink):
    """Alerts to the `--alerts` sink (by default JSON Lines in --out)."""

    PREFIX = ALERTS_PREFIX
    ELEMENT = Alert
