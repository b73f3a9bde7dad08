"""A stream's files: JSON Lines and Parquet records and dead letters, and a summary per window,
each written as one set of files per firing of a fixed window of ingestion time.

Beam 2.77's fileio.WriteToFiles does not do for a stream: its per-bundle writer passes no pane
to the file naming (so a late pane is named like the on-time one and renamed over its files)
and leaves a file per bundle per window. WriteWindowFiles groups a window's elements into a
bounded number of shards and writes each shard of each pane to one file whose name is decided
by the window, the pane and the shard alone, so a retried bundle rewrites the same file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms import window
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Duration

from transforms.core import (
    Composite,
    firing_label,
    json_line,
    matching_paths,
    plain_values,
    read_lines,
    summary_line,
)
from transforms.sinks.schema import arrow_schema

# The logger a stream's per-window summaries go to (the CLI shows it at INFO for streams).
log = logging.getLogger("newsbeam.summary")


def window_file_name(prefix: str, label: str, shard: int, shards: int, suffix: str) -> str:
    """PREFIX-LABEL-SSSSS-of-NNNNN.SUFFIX, LABEL naming the firing (core's firing_label):
    a late firing of a window, or another launch's, gets files of its own."""
    return f"{prefix}-{label}-{shard:05d}-of-{shards:05d}{suffix}"


_FIRING = r"\d{8}T\d{6}Z-\d{8}T\d{6}Z(?:-late\d+)?-\d{8}T\d{9}Z"


@dataclasses.dataclass(frozen=True)
class FiringFiles:
    """The files one firing of a window left in a folder, and whether all its shards are
    there (a stream killed while writing them leaves some)."""

    paths: tuple[str, ...]
    complete: bool


def firing_files(directory: str, prefix: str, suffix: str) -> dict[str, FiringFiles]:
    """The window files named PREFIX-LABEL-SSSSS-of-NNNNN.SUFFIX in `directory`, by LABEL."""
    pattern = re.compile(rf"^{re.escape(prefix)}-(?P<label>{_FIRING})"
                         rf"-(?P<shard>\d{{5}})-of-(?P<shards>\d{{5}}){re.escape(suffix)}$")
    found: dict[str, list[tuple[int, int, str]]] = {}
    for path in matching_paths(FileSystems.join(directory, f"{prefix}-*{suffix}")):
        match = pattern.match(path.rsplit("/", 1)[-1])
        if match:
            found.setdefault(match["label"], []).append(
                (int(match["shard"]), int(match["shards"]), path))
    return {
        label: FiringFiles(tuple(sorted(path for _, _, path in files)),
                           {shard for shard, _, _ in files} == set(range(files[0][1])))
        for label, files in found.items()
    }


def leftover_temporaries(directory: str, prefix: str) -> list[str]:
    """The temporary files of window files named PREFIX-... that a killed stream left behind
    (those of a running stream are in use: call this before a stream starts)."""
    return matching_paths(FileSystems.join(directory, f".{prefix}-*.tmp"))


def read_rows(path: str) -> list[dict[str, Any]]:
    """The rows of a JSON Lines or Parquet file a sink wrote."""
    if path.endswith(".parquet"):
        with FileSystems.open(path) as handle:
            rows: list[dict[str, Any]] = pq.read_table(handle).to_pylist()
        return rows
    return [json.loads(line) for line in read_lines(path)]


def _shard_of(element: Any, shards: int) -> int:
    # By the element's id where it has one, so a retry puts each element in the same shard.
    key = str(getattr(element, "id", "")).encode("utf-8")
    return zlib.crc32(key) % shards if shards > 1 else 0


@dataclasses.dataclass(eq=False)
class _WritePaneFn(beam.DoFn):
    """(shard, elements of one pane of one window) -> the path of the file they were written
    to, written under a temporary name and renamed into place."""

    directory: str
    prefix: str
    suffix: str
    sink: Callable[[], fileio.FileSink]
    launch: str
    shards: int

    def process(self, element: tuple[int, Iterable[Any]], span: Any = beam.DoFn.WindowParam,
                pane: Any = beam.DoFn.PaneInfoParam) -> Iterator[str]:
        shard, elements = element
        label = firing_label(span, pane, self.launch)
        name = window_file_name(self.prefix, label, shard, self.shards, self.suffix)
        final = FileSystems.join(self.directory, name)
        temporary = FileSystems.join(self.directory, f".{name}.{uuid.uuid4().hex}.tmp")
        handle = FileSystems.create(temporary)
        try:
            sink = self.sink()
            sink.open(handle)
            for value in elements:
                sink.write(value)
            sink.flush()
        finally:
            handle.close()
        FileSystems.rename([temporary], [final])
        yield final


@dataclasses.dataclass(eq=False)
class WriteWindowFiles(Composite):
    """Elements in windows -> for each firing of each window, `shards` files (at most) in
    `directory` named by window_file_name (`launch`: the stream's launch, a run id); -> the
    paths written, once each file is in place."""

    directory: str
    prefix: str
    suffix: str
    sink: Callable[[], fileio.FileSink]
    launch: str
    shards: int = 1

    def expand(self, elements: beam.PCollection) -> beam.PCollection:
        shards = self.shards
        return (
            elements
            | "Shard" >> beam.Map(lambda value: (_shard_of(value, shards), value))
            | "GroupPane" >> beam.GroupByKey()
            | "WriteFile" >> beam.ParDo(_WritePaneFn(
                self.directory, self.prefix, self.suffix, self.sink, self.launch, shards))
        )


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
    launch: str

    def expand(self, summaries: beam.PCollection) -> Any:
        return (
            summaries
            | "Log" >> beam.Map(_logged)
            | "Write" >> WriteWindowFiles(self.directory, self.prefix, ".json", JsonSink,
                                          self.launch)
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
