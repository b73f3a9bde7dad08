"""File sinks: JSON Lines and Parquet, one file set per run, named with the run id.

Paths go through Beam's FileSystems, so a folder may be local or a bucket (gs://...).
"""

from __future__ import annotations

import dataclasses
import json
import re

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms.core import Composite, json_line, matching_paths, plain_values, read_lines
from transforms.sinks.schema import arrow_schema

RECORDS_PREFIX = "articles"
DEAD_LETTERS_PREFIX = "dead-letters"
FEED_HEALTH_PREFIX = "feed-health"
ALERTS_PREFIX = "alerts"
JSONL_SUFFIX = ".jsonl"
PARQUET_SUFFIX = ".parquet"
_RUN_ID = r"\d{8}T\d{9}Z"
_RECORDS_FILE = re.compile(
    rf"^{RECORDS_PREFIX}-(?P<run_id>{_RUN_ID})-\d+-of-\d+{re.escape(JSONL_SUFFIX)}$"
)


def run_prefix(prefix: str, run_id: str | None) -> str:
    """File prefix of one run's outputs: articles-<run_id>-00000-of-00001.jsonl and so on, so
    scheduled runs into one folder add files instead of replacing the last run's."""
    return f"{prefix}-{run_id}" if run_id else prefix


def record_files_by_run(directory: str) -> dict[str, list[str]]:
    """The JSON Lines record files in `directory`, by the run id in their names."""
    found: dict[str, list[str]] = {}
    for path in matching_paths(FileSystems.join(directory, f"{RECORDS_PREFIX}-*{JSONL_SUFFIX}")):
        match = _RECORDS_FILE.match(path.rsplit("/", 1)[-1])
        if match:
            found.setdefault(match["run_id"], []).append(path)
    return found


def record_ids(paths: list[str]) -> list[str]:
    """The ids of the records in these JSON Lines files."""
    return [json.loads(line)["id"] for path in paths for line in read_lines(path)]


@dataclasses.dataclass(eq=False)
class WriteJsonLines(Composite):
    """Write records or dead letters to DIR/PREFIX-SSSSS-of-NNNNN.jsonl."""

    directory: str
    prefix: str

    def expand(self, elements: beam.PCollection) -> beam.pvalue.PDone:
        return (
            elements
            | "ToJson" >> beam.Map(json_line)
            | "Write" >> beam.io.WriteToText(
                FileSystems.join(self.directory, self.prefix), file_name_suffix=JSONL_SUFFIX
            )
        )


@dataclasses.dataclass(eq=False)
class WriteParquet(Composite):
    """Write records or dead letters to DIR/PREFIX-SSSSS-of-NNNNN.parquet, with the Arrow
    schema derived from their definition."""

    directory: str
    prefix: str
    element: type

    def expand(self, elements: beam.PCollection) -> beam.pvalue.PDone:
        return (
            elements
            | "ToRows" >> beam.Map(plain_values)
            | "Write" >> beam.io.WriteToParquet(
                FileSystems.join(self.directory, self.prefix), arrow_schema(self.element),
                file_name_suffix=PARQUET_SUFFIX,
            )
        )
