"""The BigQuery sink, for Dataflow users: Beam's WriteToBigQuery with the derived schema."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import apache_beam as beam

from transforms.core import Composite, Record, plain_values
from transforms.sinks.schema import bigquery_schema
from transforms.sinks.uris import Sink, SinkError


def check_connectors(sink: Sink) -> None:
    """Fail fast, with one line, when Beam's Google Cloud connectors are not installed."""
    try:
        import google.cloud.bigquery  # noqa: F401
        from apache_beam.io.gcp import bigquery  # noqa: F401
    except ImportError:
        raise SinkError(
            f"sink {sink.shown}: BigQuery needs Beam's Google Cloud connectors:"
            " pip install 'newsbeam[gcp]' (or -e '.[gcp]' in a clone)") from None


def bigquery_row(element: Any) -> dict[str, Any]:
    """A record as a BigQuery row: times as ISO 8601 strings, which BigQuery reads as UTC."""
    return {name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in plain_values(element).items()}


@dataclasses.dataclass(eq=False)
class WriteToBigQuery(Composite):
    """Append records to the sink's table, created with the derived schema if needed: by load
    jobs in a batch run, by streaming inserts in a stream."""

    sink: Sink
    streaming: bool = False
    element: type = Record  # what is written: records, dead letters or feed health rows

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        """-> in a batch run, the table's load (and copy) jobs, each emitted once it has
        finished; in a stream, the rows BigQuery refused (none: inserts are retried)."""
        method = (beam.io.WriteToBigQuery.Method.STREAMING_INSERTS if self.streaming
                  else beam.io.WriteToBigQuery.Method.FILE_LOADS)
        result = (
            records
            | "ToRows" >> beam.Map(bigquery_row)
            | "Write" >> beam.io.WriteToBigQuery(
                self.sink.table, schema=bigquery_schema(self.element), method=method,
                create_disposition=beam.io.BigQueryDisposition.CREATE_IF_NEEDED,
                write_disposition=beam.io.BigQueryDisposition.WRITE_APPEND,
            )
        )
        if self.streaming:
            return result.failed_rows
        return (result.destination_load_jobid_pairs, result.destination_copy_jobid_pairs) | (
            "Jobs" >> beam.Flatten())
