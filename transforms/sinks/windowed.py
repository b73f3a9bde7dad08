"""A stream's files: JSON Lines and Parquet through Beam's fileio, one set of files per fixed
window of ingestion time, named by the window (Beam's WriteToParquet misbehaves on windowed
streaming input, so Parquet goes through fileio too, with a pyarrow writer), and a summary per
window beside them."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, BinaryIO

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.transforms import window
from apache_beam.transforms.window import BoundedWindow, TimestampedValue
from apache_beam.utils.timestamp import Duration

from transforms.core import Composite, json_line, plain_values, summary_line
from transforms.sinks.schema import arrow_schema

# The logger a stream's per-window summaries go to (the CLI shows it at INFO for streams).
log = logging.getLogger("newsbeam.summary")

FileNaming = Callable[..., str]


def window_span(span: BoundedWindow) -> str:
    """"20261129T134000Z-20261129T135000Z" for a window of ten minutes ("all" for the global
    one)."""
    try:
        start = datetime.fromtimestamp(float(span.start), UTC)
        end = datetime.fromtimestamp(float(span.end), UTC)
    except (AttributeError, OverflowError, OSError, ValueError):
        return "all"
    return f"{start:%Y%m%dT%H%M%SZ}-{end:%Y%m%dT%H%M%SZ}"


def window_file_naming(prefix: str, suffix: str) -> FileNaming:
    """fileio's file naming: PREFIX-WINDOW[-lateN]-SSSSS-of-NNNNN.SUFFIX; a late pane (records
    that reached a window after it closed) gets files of its own beside the window's."""

    def name(span: BoundedWindow, pane: Any, shard_index: int, total_shards: int,
             compression: str, destination: Any) -> str:
        index = getattr(pane, "index", 0) if pane is not None else 0
        late = f"-late{index}" if index else ""
        return (f"{prefix}-{window_span(span)}{late}-{shard_index:05d}-of-"
                f"{total_shards:05d}{suffix}")

    return name


class JsonLinesSink(fileio.FileSink):
    """Records or dead letters as JSON lines."""

    def open(self, fh: BinaryIO) -> None:
        self._fh = fh

    def write(self, element: Any) -> None:
        self._fh.write(json_line(element).encode("utf-8") + b"\n")

    def flush(self) -> None:
        self._fh.flush()


class ParquetSink(fileio.FileSink):
    """Records or dead letters as one Parquet table per file, with the Arrow schema derived
    from their definition (fileio flushes a sink only when it closes its file)."""

    def __init__(self, element: type) -> None:
        self._schema = arrow_schema(element)

    def open(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._rows: list[dict[str, Any]] = []

    def write(self, element: Any) -> None:
        self._rows.append(plain_values(element))

    def flush(self) -> None:
        pq.write_table(pa.Table.from_pylist(self._rows, schema=self._schema), self._fh)
        self._rows = []


class JsonSink(fileio.FileSink):
    """One JSON document per element (a window's summary)."""

    def open(self, fh: BinaryIO) -> None:
        self._fh = fh

    def write(self, document: Any) -> None:
        self._fh.write(json.dumps(document, indent=2).encode("utf-8") + b"\n")

    def flush(self) -> None:
        self._fh.flush()


def _logged(summary: dict[str, Any]) -> dict[str, Any]:
    log.info("%s", summary_line(summary))
    return summary


@dataclasses.dataclass(eq=False)
class WriteSummaries(Composite):
    """A stream's summaries (one per window) to PREFIX-WINDOW-....json files in `directory`,
    each also logged as one line."""

    directory: str
    prefix: str

    def expand(self, summaries: beam.PCollection) -> Any:
        return (
            summaries
            | "Log" >> beam.Map(_logged)
            | "Write" >> fileio.WriteToFiles(
                self.directory, file_naming=window_file_naming(self.prefix, ".json"),
                sink=lambda _: JsonSink())
        )


def _stamped(element: Any, field: str) -> TimestampedValue:
    return TimestampedValue(element, getattr(element, field).timestamp())


@dataclasses.dataclass(eq=False)
class IntoWindows(Composite):
    """Elements into fixed windows of `size` seconds, by the time in their `time_field` (when an
    article was fetched, when a failure happened) or, without one, by their own timestamps.
    Windows close as the stream's clock passes them; an element that comes later still gets
    written (allowed lateness `lateness` seconds), in a late pane of its own: news items are
    never dropped for being old or late."""

    size: float
    time_field: str | None = None
    lateness: float = 86400.0

    def expand(self, elements: beam.PCollection) -> beam.PCollection:
        if self.time_field is not None:
            elements = elements | "Stamp" >> beam.Map(_stamped, self.time_field)
        return elements | "Window" >> beam.WindowInto(
            window.FixedWindows(self.size), allowed_lateness=Duration(seconds=self.lateness))
