"""Staging a batch run's state changes, and committing them once its outputs are written.

A run writes the ids of the articles it is done with (written, or failed for good) and the
validators of the feeds it fetched in full as files in a staging folder beside its outputs.
Its last step, CommitStagedState, waits for every sink to have all of its output and for the
staged files (it takes each as a side input, which a runner computes in full first), then
commits them to the state store in one transaction. It runs in the pipeline, not in the program
that launched it, so a run handed to a remote runner and left to itself (--detach, a Dataflow
Flex Template) commits its state too. A run that dies before that commits nothing, and the next
run redoes its work.
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
    is_unfinished_parse,
    mask_userinfo,
    matching_paths,
    read_lines,
)
from transforms.state.stores import StateStore, open_state

STAGING_FOLDER = ".newsbeam-staging"
STAGED_IDS = "ids"
STAGED_VALIDATORS = "validators"


def staging_dir(out: str, run_id: str) -> str:
    """Where run `run_id` stages its state changes (a folder or bucket path under `out`)."""
    return FileSystems.join(out, STAGING_FOLDER, run_id)


def _failed_for_good(letter: DeadLetter) -> bool:
    return bool(letter.article_id) and is_permanent(letter)


def _parsed(item: tuple[str, Validators], unparsed: dict[str, bool]) -> bool:
    # Dead letters name a feed without its credentials.
    return mask_userinfo(item[0]) not in unparsed


def _validators_line(item: tuple[str, Validators]) -> str:
    feed_url, validators = item
    return json.dumps({"feed_url": feed_url, **dataclasses.asdict(validators)},
                      ensure_ascii=False)


@dataclasses.dataclass(eq=False)
class StageStateUpdates(Composite):
    """(records, dead letters, (feed URL, Validators) pairs) -> files in `staging_dir`, to be
    committed once the run's outputs are written; returns the two files' PCollections, each
    complete once its file is."""

    staging_dir: str

    def expand(
        self, inputs: tuple[beam.PCollection, beam.PCollection, beam.PCollection]
    ) -> tuple[beam.PCollection, beam.PCollection]:
        records, dead_letters, validators = inputs
        failed_for_good = (
            dead_letters
            | "PermanentFailures" >> beam.Filter(_failed_for_good)
            | "FailedIds" >> beam.Map(lambda letter: letter.article_id)
        )
        ids = (
            (records | "RecordIds" >> beam.Map(lambda record: record.id), failed_for_good)
            | "AllIds" >> beam.Flatten()
            | "WriteIds" >> beam.io.WriteToText(FileSystems.join(self.staging_dir, STAGED_IDS))
        )
        # A feed whose parsing did not finish keeps its old validators (none, or those of its
        # last parsed version): the next run asks for it in full.
        unparsed = (
            dead_letters
            | "UnfinishedParses" >> beam.Filter(is_unfinished_parse)
            | "UnparsedFeeds" >> beam.Map(lambda letter: (letter.feed_url, True))
        )
        feeds = (
            validators
            | "OfParsedFeeds" >> beam.Filter(_parsed, beam.pvalue.AsDict(unparsed))
            | "ValidatorsToJson" >> beam.Map(_validators_line)
            | "WriteValidators" >> beam.io.WriteToText(
                FileSystems.join(self.staging_dir, STAGED_VALIDATORS))
        )
        return ids, feeds


@dataclasses.dataclass(eq=False)
class _CommitFn(beam.DoFn):
    state_uri: str
    staging_dir: str

    def process(self, run_id: str, written: int) -> Iterator[int]:
        store = open_state(self.state_uri)
        try:
            yield commit_staged(store, run_id, self.staging_dir)
        finally:
            store.close()


@dataclasses.dataclass(eq=False)
class CommitStagedState(Composite):
    """(a PCollection per output, each complete once its output is written) -> the run's
    staged state committed to the store after all of them, as the run's last step."""

    state_uri: str
    run_id: str
    staging_dir: str

    def expand(self, written: tuple[beam.PCollection, ...]) -> beam.PCollection:
        # A side input is computed in full before the step that reads it starts: waiting on
        # the count of everything written is waiting for every output (one count for all of
        # them: each step added costs every run Beam's time to build and translate it).
        done = (written | "AllWritten" >> beam.Flatten()
                | "Written" >> beam.combiners.Count.Globally())
        return (
            written[0].pipeline
            | "RunId" >> beam.Create([self.run_id])
            | "Commit" >> beam.ParDo(_CommitFn(self.state_uri, self.staging_dir),
                                     beam.pvalue.AsSingleton(done))
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
    if FileSystems.exists(staging):  # a retried commit finds it gone
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
