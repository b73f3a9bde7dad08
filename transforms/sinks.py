"""WriteRecords and WriteDeadLetters: where the pipeline's outputs land.

JSON Lines files are the default sink: one JSON object per line, UTF-8, field names as in the
README's schema.
"""

from __future__ import annotations

import json
import os
from typing import Any

import apache_beam as beam

from transforms.dead_letters import is_permanent

RECORDS_PREFIX = "articles"
DEAD_LETTERS_PREFIX = "dead-letters"
JSONL_SUFFIX = ".jsonl"
STAGED_IDS = "ids"
STAGED_VALIDATORS = "validators"


def run_prefix(prefix: str, run_id: str | None) -> str:
    """File prefix of one run's outputs: articles-<run_id>-00000-of-00001.jsonl and so on, so
    scheduled runs into one folder add files instead of replacing the last run's."""
    return f"{prefix}-{run_id}" if run_id else prefix


def to_json_line(element: Any) -> str:
    """One record or dead letter as a compact JSON line (non-ASCII kept as is)."""
    return json.dumps(element.to_dict(), ensure_ascii=False, separators=(",", ":"))


class WriteJsonLines(beam.PTransform):
    """Write elements with a `to_dict()` to DIR/PREFIX-SSSSS-of-NNNNN.jsonl."""

    def __init__(self, directory: str, prefix: str) -> None:
        super().__init__()
        self.directory = directory
        self.prefix = prefix

    def expand(self, elements: beam.PCollection) -> beam.pvalue.PDone:
        return (
            elements
            | "ToJson" >> beam.Map(to_json_line)
            | "Write" >> beam.io.WriteToText(
                os.path.join(self.directory, self.prefix), file_name_suffix=JSONL_SUFFIX
            )
        )


class WriteRecords(beam.PTransform):
    """Records to every configured sink (JSON Lines in DIR for now)."""

    def __init__(self, directory: str, run_id: str | None = None) -> None:
        super().__init__()
        self.directory = directory
        self.run_id = run_id

    def expand(self, records: beam.PCollection) -> beam.pvalue.PDone:
        prefix = run_prefix(RECORDS_PREFIX, self.run_id)
        return records | "JsonLines" >> WriteJsonLines(self.directory, prefix)


class WriteDeadLetters(beam.PTransform):
    """Dead letters from every stage to DIR as JSON Lines."""

    def __init__(self, directory: str, run_id: str | None = None) -> None:
        super().__init__()
        self.directory = directory
        self.run_id = run_id

    def expand(self, letters: beam.PCollection) -> beam.pvalue.PDone:
        prefix = run_prefix(DEAD_LETTERS_PREFIX, self.run_id)
        return letters | "JsonLines" >> WriteJsonLines(self.directory, prefix)


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
