"""The batch graph: one pass over every configured feed, read top to bottom like the data flow
(the stages it shares with a stream are in pipeline/graph/core.py)."""

from __future__ import annotations

import dataclasses

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline.graph.core import CoreConfig, feed_bytes_to_records
from transforms.alerts import WatchTopics, alert_tally
from transforms.core import CollectDeadLetters, CreateMany, Feed, Summarize
from transforms.feeds import FetchFeeds
from transforms.health import TrackFeedHealth
from transforms.sinks import (
    Sink,
    WriteAlerts,
    WriteDeadLetters,
    WriteFeedHealth,
    WriteRecords,
)
from transforms.state import CommitStagedState, DedupEntries, StageStateUpdates


@dataclasses.dataclass(frozen=True)
class BatchConfig:
    """Everything one batch run needs besides its feeds."""

    out: str  # folder (or bucket path) for the run summary and staged state
    core: CoreConfig  # the settings of the stages a run shares with a stream
    sinks: tuple[Sink, ...] = ()  # where records go; none: JSON Lines in `out`
    dead_letter_sink: Sink | None = None  # none: JSON Lines in `out`
    run_id: str | None = None  # names this run's output files; None: plain "articles-..."
    state_uri: str | None = None  # skip articles earlier runs wrote, and tell later ones
    force: bool = False  # skip nothing (the state is still updated)
    staging_dir: str | None = None  # where the run stages its state changes for commit
    feed_health_sink: Sink | None = None  # where each polled feed's health row goes, if anywhere
    alerts_sink: Sink | None = None  # where alerts go; none: JSON Lines in `out`


@dataclasses.dataclass(frozen=True)
class BatchOutputs:
    """What every run produces, for sinks and for tests to assert on."""

    records: beam.PCollection
    dead_letters: beam.PCollection
    summary: beam.PCollection  # one dict: the run summary, also written to summary_path()


def summary_path(out: str, run_id: str | None) -> str:
    """Where the pipeline writes its run's summary: summary-<run id>.json in `out`."""
    return FileSystems.join(out, f"summary-{run_id}.json" if run_id else "summary.json")


def build_batch(
    pipeline: beam.Pipeline, feeds: tuple[Feed, ...], config: BatchConfig
) -> BatchOutputs:
    """Add the batch job to `pipeline`: feeds put into the graph (CreateMany), "seen before" in
    the state store, outputs cut per run."""
    # Not reshuffled: FetchFeeds groups the feeds by host, which spreads them over workers.
    feeds_in = pipeline | "Feeds" >> CreateMany(feeds, Feed)
    # Polls in lane processes, one per core the worker processes' work may use: a poll that
    # finds nothing new is mostly Python, which one process runs on one core at a time.
    processes = config.core.isolation.process_count
    fetched = feeds_in | "FetchFeeds" >> FetchFeeds(
        config.core.http, config.core.politeness, processes=processes if processes > 1 else 0)
    dedup = DedupEntries(None if config.force else config.state_uri)
    core = feed_bytes_to_records(fetched.feeds, dedup, config.core)
    dead_letters = (fetched.dead_letters, *core.dead_letters) | "DeadLetters" >> (
        CollectDeadLetters())
    default = Sink("jsonl", f"jsonl:{config.out}", config.out)
    written = core.records | "WriteRecords" >> WriteRecords(
        config.sinks or (default,), config.run_id)
    letters_written = dead_letters.letters | "WriteDeadLetters" >> WriteDeadLetters(
        config.dead_letter_sink or default, config.run_id
    )
    committed: tuple[beam.PCollection, ...] = ()
    if config.state_uri is not None and config.staging_dir is not None:
        staged = (core.records, dead_letters.letters, fetched.validators) | "StageState" >> (
            StageStateUpdates(config.staging_dir))
        # Last: the state says what the run did only once all of it is written.
        committed = ((*written, letters_written, *staged) | "CommitState" >> CommitStagedState(
            config.state_uri, config.run_id or "", config.staging_dir),)
    # Each polled feed's health, kept once the run is committed (so a run that failed, whose
    # records its re-run writes again, does not count them twice).
    health = (fetched.polls, core.parsed_polls, core.records, *committed) | "FeedHealth" >> (
        TrackFeedHealth(config.state_uri, run_id=config.run_id,
                        rows=config.feed_health_sink is not None))
    if config.feed_health_sink is not None:
        health.rows | "WriteFeedHealth" >> WriteFeedHealth(config.feed_health_sink,
                                                           config.run_id)
    alert_tallies = []
    if config.state_uri is not None:  # a topic's usual level is in the state
        alerts = (core.records, *committed) | "Alerts" >> WatchTopics(
            config.state_uri, tuple(topic.name for topic in config.core.taxonomy.topics),
            run_id=config.run_id)
        alerts | "WriteAlerts" >> WriteAlerts(config.alerts_sink or default, config.run_id)
        alert_tallies.append(alerts | "AlertTallies" >> beam.Map(alert_tally))
    summary = (fetched.tallies, *core.tallies, dead_letters.tallies, health.tallies,
               *alert_tallies) | "Summarize" >> Summarize(summary_path(config.out,
                                                                       config.run_id))
    return BatchOutputs(records=core.records, dead_letters=dead_letters.letters,
                        summary=summary)
