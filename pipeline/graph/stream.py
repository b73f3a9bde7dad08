"""The streaming graph: feeds polled on every tick of an impulse, for as long as the job runs,
read top to bottom like the data flow (the stages it shares with a batch run are in
pipeline/graph/core.py).

Its ends differ from a batch run's: polls come from ticks (a PeriodicImpulse; a TestStream in
tests), each feed's schedule and validators and the articles seen live in Beam keyed state, and
outputs are cut per fixed window of ingestion time.
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam

from pipeline.graph.core import CoreConfig, feed_bytes_to_records
from transforms.alerts import WatchTopics, alert_tally
from transforms.core import CollectDeadLetters, Feed, Summarize
from transforms.feeds import PollClock, PollFeeds
from transforms.fetch import Grouping
from transforms.health import TrackFeedHealth
from transforms.sinks import (
    Cut,
    IntoWindows,
    Sink,
    WriteAlerts,
    WriteDeadLetters,
    WriteFeedHealth,
    WriteRecords,
    WriteSummaries,
)
from transforms.state import RememberEntries, RememberLostEntries, RememberOutcomes


@dataclasses.dataclass(frozen=True)
class StreamConfig:
    """Everything a stream needs besides its feeds and its ticks (the defaults of its times
    are those of its command-line options, pipeline.job.options)."""

    out: str  # folder (or bucket path) for per-window summaries (and records, by default)
    core: CoreConfig  # the settings of the stages a stream shares with a batch run
    stream_id: str  # names the stream's files and its run in the state store, every launch
    launch: str  # this launch's start (a run id): files are named by window and launch
    poll_interval: float  # seconds, for feeds that do not set their own
    window: float  # outputs are cut per window of this many seconds
    dedup_ttl: float  # an article id is remembered this many seconds
    # With a state store: an article id is held in keyed state this long only (longer than a
    # window, whose close commits what was done for good to the store), so an article whose
    # page failed for a passing reason is asked for again once its entry is seen after it.
    retry_after: float
    sinks: tuple[Sink, ...] = ()  # where records go; none: JSON Lines in `out`
    dead_letter_sink: Sink | None = None  # none: JSON Lines in `out`
    state_uri: str | None = None  # start where earlier runs left off, and tell later ones
    # Off on Beam 2.77's FnApiRunner, which fires event-time timers early (transforms/state/
    # keyed.py): a trial stream there keeps the ids it saw until it ends.
    expire_by_timer: bool = True
    # What polls take for now: the wall clock, or (a scripted impulse in tests) the ticks' times.
    poll_clock: PollClock = PollClock.WALL
    poll_shards: int = 1  # feeds are polled in this many shards by host
    feed_health_sink: Sink | None = None  # where each polled feed's health row goes, per window
    alerts_sink: Sink | None = None  # where alerts go; none: JSON Lines in `out`


@dataclasses.dataclass(frozen=True)
class StreamOutputs:
    """What a stream produces, for sinks and for tests to assert on."""

    records: beam.PCollection  # in windows of ingestion time
    dead_letters: beam.PCollection  # likewise
    summaries: beam.PCollection  # one per window


def build_stream(
    ticks: beam.PCollection, feeds: tuple[Feed, ...], config: StreamConfig
) -> StreamOutputs:
    """Add the stream to the pipeline of `ticks`, a PCollection with one element per poll."""
    fetched = ticks | "PollFeeds" >> PollFeeds(
        feeds, config.core.http, config.poll_interval, config.core.politeness,
        clock=config.poll_clock, shards=config.poll_shards,
    )
    # Without a store, keyed state is all the stream remembers. With one, the store remembers
    # what was written or failed for good, and keyed state holds ids only while their outcome
    # may not be committed yet: a page that failed for a passing reason is retried after that.
    memory = (config.dedup_ttl if config.state_uri is None
              else min(config.retry_after, config.dedup_ttl))
    dedup = RememberEntries(memory, config.state_uri, config.expire_by_timer)
    core = feed_bytes_to_records(fetched.feeds, dedup, dataclasses.replace(
        config.core, grouping=Grouping(streaming=True)))
    # An entry without a link stays in its feed: a dead letter once, not on every poll.
    lost = core.dead_letters | "LostEntriesOnce" >> RememberLostEntries(
        config.dedup_ttl, config.expire_by_timer)
    dead_letters = (fetched.dead_letters, lost.letters) | "DeadLetters" >> (
        CollectDeadLetters())
    cut = Cut(windowed=True, launch=config.launch)
    default = Sink("jsonl", f"jsonl:{config.out}", config.out)
    records = core.records | "ByIngestionTime" >> IntoWindows(config.window, "fetched_at")
    written = records | "WriteRecords" >> WriteRecords(
        config.sinks or (default,), config.stream_id, cut)
    letters = dead_letters.letters | "LettersByTime" >> IntoWindows(config.window, "at")
    letters_written = letters | "WriteDeadLetters" >> WriteDeadLetters(
        config.dead_letter_sink or default, config.stream_id, cut
    )
    if config.state_uri is not None:
        # After the sinks: the store says a window is done only once all of it is written.
        (records, letters, *written, letters_written) | "RememberOutcomes" >> RememberOutcomes(
            config.state_uri, config.stream_id, config.launch)
    # Each feed's health, per window: its polls (by when they were made) and its records.
    health = (fetched.polls, core.parsed_polls, records) | "FeedHealth" >> TrackFeedHealth(
        config.state_uri, window=config.window, rows=config.feed_health_sink is not None)
    if config.feed_health_sink is not None:
        health.rows | "WriteFeedHealth" >> WriteFeedHealth(config.feed_health_sink,
                                                           config.stream_id, cut)
    alert_tallies = []
    if config.state_uri is not None:  # a topic's usual level is in the state
        # Every window that polled (its health tallies) is measured, with no records too.
        alerts = (records, health.tallies) | "Alerts" >> WatchTopics(
            config.state_uri, tuple(topic.name for topic in config.core.taxonomy.topics),
            window=config.window, run_id=config.stream_id)
        alerts | "WriteAlerts" >> WriteAlerts(config.alerts_sink or default, config.stream_id,
                                              cut)
        alert_tallies.append(alerts | "AlertTallies" >> beam.Map(alert_tally))
    tallies = (fetched.tallies, *core.tallies, lost.tallies, dead_letters.tallies,
               health.tallies, *alert_tallies)
    summaries = tallies | "Summarize" >> Summarize(window=config.window)
    summaries | "WriteSummaries" >> WriteSummaries(
        config.out, f"summary-{config.stream_id}", config.launch)
    return StreamOutputs(records=records, dead_letters=letters, summaries=summaries)
