"""WriteRecords and WriteDeadLetters: every configured sink, fed from the same PCollection.

File sinks (JSON Lines, Parquet) write one file set per run, named with the run id. The other
families have writers of their own (`sink_postgres`, `sink_redis`); BigQuery goes through
Beam's WriteToBigQuery. `prepare_sinks` checks every sink before the run fetches anything.
"""

from __future__ import annotations

import os
from typing import Any

import apache_beam as beam

from transforms.dead_letters import is_permanent
from transforms.records import DeadLetter, Record, json_line
from transforms.schema import arrow_schema, bigquery_schema, record_row
from transforms.sink_postgres import WriteToPostgres, prepare_table
from transforms.sink_redis import WriteToRedisStream, check_stream
from transforms.sink_uris import Sink, SinkError

RECORDS_PREFIX = "articles"
DEAD_LETTERS_PREFIX = "dead-letters"
JSONL_SUFFIX = ".jsonl"
PARQUET_SUFFIX = ".parquet"
STAGED_IDS = "ids"
STAGED_VALIDATORS = "validators"
DEFAULT_RECORDS_TABLE = "newsbeam_articles"
DEFAULT_DEAD_LETTERS_TABLE = "newsbeam_dead_letters"


def run_prefix(prefix: str, run_id: str | None) -> str:
    """File prefix of one run's outputs: articles-<run_id>-00000-of-00001.jsonl and so on, so
    scheduled runs into one folder add files instead of replacing the last run's."""
    return f"{prefix}-{run_id}" if run_id else prefix


def prepare_sinks(sinks: tuple[Sink, ...], element: type) -> None:
    """Check every sink now, so a bad one fails the run before any feed is fetched: tables are
    created or their layout checked, servers pinged, folders made where they are local."""
    for sink in sinks:
        if sink.family == "postgresql":
            prepare_table(sink, element)
        elif sink.family == "redis":
            check_stream(sink)
        elif sink.family in ("jsonl", "parquet") and "://" not in sink.target:
            try:
                os.makedirs(sink.target, exist_ok=True)
            except OSError as exc:
                raise SinkError(f"sink {sink.shown}: cannot create the folder:"
                                f" {exc.strerror}") from None
        elif sink.family == "bigquery":
            try:
                import google.cloud.bigquery  # noqa: F401
                from apache_beam.io.gcp import bigquery  # noqa: F401
            except ImportError:
                raise SinkError(
                    f"sink {sink.shown}: BigQuery needs Beam's Google Cloud connectors:"
                    " pip install 'newsbeam[gcp]' (or -e '.[gcp]' in a clone)") from None


class WriteJsonLines(beam.PTransform):
    """Write elements with a `to_dict()` to DIR/PREFIX-SSSSS-of-NNNNN.jsonl."""

    def __init__(self, directory: str, prefix: str) -> None:
        super().__init__()
        self.directory = directory
        self.prefix = prefix

    def expand(self, elements: beam.PCollection) -> beam.pvalue.PDone:
        return (
            elements
            | "ToJson" >> beam.Map(json_line)
            | "Write" >> beam.io.WriteToText(
                os.path.join(self.directory, self.prefix), file_name_suffix=JSONL_SUFFIX
            )
        )


class WriteParquet(beam.PTransform):
    """Write records or dead letters to DIR/PREFIX-SSSSS-of-NNNNN.parquet, with the Arrow
    schema derived from their definition."""

    def __init__(self, directory: str, prefix: str, element: type) -> None:
        super().__init__()
        self.directory = directory
        self.prefix = prefix
        self.element = element

    def expand(self, elements: beam.PCollection) -> beam.pvalue.PDone:
        return (
            elements
            | "ToRows" >> beam.Map(record_row)
            | "Write" >> beam.io.WriteToParquet(
                os.path.join(self.directory, self.prefix), arrow_schema(self.element),
                file_name_suffix=PARQUET_SUFFIX,
            )
        )


def _bigquery_row(element: Any) -> dict[str, Any]:
    row = record_row(element)
    for name, value in row.items():
        if hasattr(value, "isoformat"):
            row[name] = value.isoformat()
    return row


def _write(elements: beam.PCollection, sink: Sink, prefix: str, element: type) -> Any:
    if sink.family == "jsonl":
        return elements | WriteJsonLines(sink.target, prefix)
    if sink.family == "parquet":
        return elements | WriteParquet(sink.target, prefix, element)
    if sink.family == "postgresql":
        return elements | WriteToPostgres(sink, element)
    if sink.family == "redis":
        return elements | WriteToRedisStream(sink)
    if sink.family == "bigquery":
        return (
            elements
            | "ToRows" >> beam.Map(_bigquery_row)
            | "Write" >> beam.io.WriteToBigQuery(
                sink.table, schema=bigquery_schema(),
                create_disposition=beam.io.BigQueryDisposition.CREATE_IF_NEEDED,
                write_disposition=beam.io.BigQueryDisposition.WRITE_APPEND,
            )
        )
    raise SinkError(f"sink {sink.shown}: no writer for {sink.family}")


def _label(sink: Sink, index: int) -> str:
    # Stable per position and family: Dataflow's update and monitoring key on labels.
    return f"{sink.family.capitalize()}{index if index else ''}"


class WriteRecords(beam.PTransform):
    """Records to every configured sink."""

    def __init__(self, sinks: tuple[Sink, ...], run_id: str | None = None) -> None:
        super().__init__()
        self.sinks = sinks
        self.run_id = run_id

    def expand(self, records: beam.PCollection) -> None:
        prefix = run_prefix(RECORDS_PREFIX, self.run_id)
        for index, sink in enumerate(self.sinks):
            records | _label(sink, index) >> _SinkWrite(sink, prefix, Record)


class WriteDeadLetters(beam.PTransform):
    """Dead letters from every stage to the dead-letter sink."""

    def __init__(self, sink: Sink, run_id: str | None = None) -> None:
        super().__init__()
        self.sink = sink
        self.run_id = run_id

    def expand(self, letters: beam.PCollection) -> None:
        prefix = run_prefix(DEAD_LETTERS_PREFIX, self.run_id)
        letters | _label(self.sink, 0) >> _SinkWrite(self.sink, prefix, DeadLetter)


class _SinkWrite(beam.PTransform):
    def __init__(self, sink: Sink, prefix: str, element: type) -> None:
        super().__init__()
        self.sink = sink
        self.prefix = prefix
        self.element = element

    def expand(self, elements: beam.PCollection) -> Any:
        return _write(elements, self.sink, self.prefix, self.element)


class StageStateUpdates(beam.PTransform):
    """The run's state changes, staged as files for the driver to commit once the run succeeds:
    the ids of the articles done with (written, or failed for good), and the validators of the
    feeds fetched in full."""

    def __init__(self, staging_dir: str) -> None:
        super().__init__()
        self.staging_dir = staging_dir

    def expand(
        self, inputs: tuple[beam.PCollection, beam.PCollection, beam.PCollection]
    ) -> None:
        records, dead_letters, validators = inputs
        failed_for_good = (
            dead_letters
            | "PermanentFailures" >> beam.Filter(lambda d: d.article_id and is_permanent(d))
            | "FailedIds" >> beam.Map(lambda letter: letter.article_id)
        )
        (
            (records | "RecordIds" >> beam.Map(lambda record: record.id), failed_for_good)
            | "AllIds" >> beam.Flatten()
            | "WriteIds" >> beam.io.WriteToText(os.path.join(self.staging_dir, STAGED_IDS))
        )
        validators | "WriteValidators" >> WriteJsonLines(self.staging_dir, STAGED_VALIDATORS)
