"""Staging a batch run's state changes, and committing them once the run has succeeded.

A run writes the ids of the articles it is done with (written, or failed for good) and the
validators of the feeds it fetched in full as files in a staging folder beside its outputs.
Only once the pipeline has finished, and so every output is durably written, does the driver
`commit_staged` them into the state store in one transaction. A run that dies before that
commits nothing, and the next run redoes its work.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms.core import (
    Composite,
    DeadLetter,
    Validators,
    is_permanent,
    matching_paths,
    read_lines,
)
from transforms.state.stores import StateStore

STAGING_FOLDER = ".newsbeam-staging"
STAGED_IDS = "ids"
STAGED_VALIDATORS = "validators"


def staging_dir(out: str, run_id: str) -> str:
    """Where run `run_id` stages its state changes (a folder or bucket path under `out`)."""
    return FileSystems.join(out, STAGING_FOLDER, run_id)


def _failed_for_good(letter: DeadLetter) -> bool:
    return bool(letter.article_id) and is_permanent(letter)


def _validators_line(item: tuple[str, Validators]) -> str:
    feed_url, validators = item
    return json.dumps({"feed_url": feed_url, **dataclasses.asdict(validators)},
                      ensure_ascii=False)


@dataclasses.dataclass(eq=False)
class StageStateUpdates(Composite):
    """(records, dead letters, (feed URL, Validators) pairs) -> files in `staging_dir` for the
    driver to commit once the run succeeds."""

    staging_dir: str

    def expand(
        self, inputs: tuple[beam.PCollection, beam.PCollection, beam.PCollection]
    ) -> None:
        records, dead_letters, validators = inputs
        failed_for_good = (
            dead_letters
            | "PermanentFailures" >> beam.Filter(_failed_for_good)
            | "FailedIds" >> beam.Map(lambda letter: letter.article_id)
        )
        (
            (records | "RecordIds" >> beam.Map(lambda record: record.id), failed_for_good)
            | "AllIds" >> beam.Flatten()
            | "WriteIds" >> beam.io.WriteToText(FileSystems.join(self.staging_dir, STAGED_IDS))
        )
        (
            validators
            | "ValidatorsToJson" >> beam.Map(_validators_line)
            | "WriteValidators" >> beam.io.WriteToText(
                FileSystems.join(self.staging_dir, STAGED_VALIDATORS))
        )


def commit_staged(store: StateStore, run_id: str, staging: str) -> int:
    """Commit what the finished run staged, then drop the staging folder; returns how many
    article ids were committed."""
    ids = list(_lines(FileSystems.join(staging, STAGED_IDS) + "*"))
    validators = {}
    for line in _lines(FileSystems.join(staging, STAGED_VALIDATORS) + "*"):
        item = json.loads(line)
        validators[item["feed_url"]] = Validators(item["etag"], item["last_modified"])
    store.commit(run_id, validators, ids)
    FileSystems.delete([staging])
    return len(ids)


def discard_stale_staging(out: str) -> None:
    """Staged changes of runs that never finished: their work is redone, so drop them."""
    stale = FileSystems.join(out, STAGING_FOLDER)
    if FileSystems.exists(stale):
        FileSystems.delete([stale])


def _lines(pattern: str) -> Iterator[str]:
    for path in matching_paths(pattern):
        yield from read_lines(path)
