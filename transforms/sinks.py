"""WriteRecords and WriteDeadLetters: where the pipeline's outputs land.

JSON Lines files are the default sink: one JSON object per line, UTF-8, field names as in the
README's schema.
"""

from __future__ import annotations

import json
import os
from typing import Any

import apache_beam as beam

RECORDS_PREFIX = "articles"
DEAD_LETTERS_PREFIX = "dead-letters"
JSONL_SUFFIX = ".jsonl"


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

    def __init__(self, directory: str) -> None:
        super().__init__()
        self.directory = directory

    def expand(self, records: beam.PCollection) -> beam.pvalue.PDone:
        return records | "JsonLines" >> WriteJsonLines(self.directory, RECORDS_PREFIX)


class WriteDeadLetters(beam.PTransform):
    """Dead letters from every stage to DIR as JSON Lines."""

    def __init__(self, directory: str) -> None:
        super().__init__()
        self.directory = directory

    def expand(self, letters: beam.PCollection) -> beam.pvalue.PDone:
        return letters | "JsonLines" >> WriteJsonLines(self.directory, DEAD_LETTERS_PREFIX)
