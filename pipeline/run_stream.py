"""Run a stream: options checked, feeds polled on an impulse until stopped, totals out."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.transforms.periodicsequence import PeriodicImpulse
from apache_beam.utils.timestamp import MAX_TIMESTAMP

from pipeline import incremental
from pipeline.config import ConfigError
from pipeline.durations import format_duration
from pipeline.lease import holding_lease
from pipeline.options import (
    DEFAULT_RUNNER,
    NewsbeamOptions,
    StreamOptions,
    http_settings,
    isolation,
    politeness,
    sinks,
)
from pipeline.run import run_to_the_end, save_json, submit
from pipeline.runners import PlacementError, check_detachable, check_paths, placement
from pipeline.stream import StreamConfig, build_stream
from transforms.core import DeadLetter, Feed, Record, matching_paths, redact, summarize
from transforms.feeds import tick_interval
from transforms.sinks import prepare_sinks
from transforms.state import open_state
from transforms.topics import Taxonomy

# Beam's in-process runner runs a periodic impulse only with an end (and writes the outputs of
# its windows when it ends): a trial stream. Every other runner is a streaming runner.
TRIAL_RUNNERS = frozenset({"FnApiRunner"})


def run_stream(
    options: PipelineOptions, feeds: tuple[Feed, ...], taxonomy: Taxonomy, out: str
) -> dict[str, Any]:
    """Poll `feeds` on an impulse until the stream is stopped (or `--stop-after`), then return
    (and save) the totals of its windows' summaries; with `--detach`, return (and save) the
    stream's details once the runner has accepted it, with `job_id`."""
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = DEFAULT_RUNNER
    standard.streaming = True
    stream = options.view_as(StreamOptions)
    newsbeam = options.view_as(NewsbeamOptions)
    where = placement(options)
    trial = where.runner in TRIAL_RUNNERS
    if trial and stream.stop_after is None:
        raise PlacementError(
            f"stream: on {where.runner} a stream needs --stop-after (it writes its windows when"
            " it stops); for a stream that runs until stopped use a streaming runner"
            " (--runner DataflowRunner, FlinkRunner or PrismRunner), or, on one machine,"
            " newsbeam run --every")
    if newsbeam.detach:
        check_detachable(where, "stream")
    state_uri = None if newsbeam.state == "none" else newsbeam.state
    # --retry-after matters where a store remembers outcomes while the stream runs.
    if state_uri and not newsbeam.force and not trial and stream.retry_after <= stream.window:
        raise ConfigError(
            f"stream: --retry-after ({format_duration(stream.retry_after)}) must be longer than"
            f" --window ({format_duration(stream.window)}): what a window wrote is committed"
            " to the state store when it closes")
    record_sinks, dead_letter_sink = sinks(options, out)
    check_paths(where, shared_filesystem=newsbeam.shared_filesystem, out=out,
                sinks=(*record_sinks, dead_letter_sink), state_uri=state_uri)
    # One run or stream at a time on a state, held while the stream runs (while it is
    # launched, with --detach).
    with holding_lease(state_uri, "stream", newsbeam.wait):
        prepare_sinks(record_sinks, Record)
        prepare_sinks((dead_letter_sink,), DeadLetter)
        try:
            stream_id = incremental.stream_identity(stream.stream_id, out, state_uri)
        except ValueError as exc:
            raise ConfigError(f"stream: {exc}") from None
        launch = incremental.new_run_id()
        if state_uri and not newsbeam.force:
            store = open_state(state_uri)
            try:
                incremental.recover_stream_windows(stream_id, record_sinks, dead_letter_sink, store)
                feeds = incremental.with_validators(feeds, store)
            finally:
                store.close()
        tick = tick_interval(feeds, stream.poll_interval)
        config = StreamConfig(
            out=out, taxonomy=taxonomy, http=http_settings(options), stream_id=stream_id,
            launch=launch,
            sinks=record_sinks, dead_letter_sink=dead_letter_sink, politeness=politeness(options),
            isolation=isolation(options), poll_interval=stream.poll_interval,
            window=stream.window, dedup_ttl=stream.dedup_ttl,
            # A trial stream writes its windows, and commits their ids, only when it ends: it
            # retries failed pages at its next run, not while it runs.
            retry_after=stream.dedup_ttl if trial else stream.retry_after,
            state_uri=None if newsbeam.force else state_uri,
            spread_extraction=not (where.on_this_machine and where.worker_processes == 1),
            expire_by_timer=not trial, poll_shards=stream.poll_shards,
        )
        started = time.time()
        stop = started + stream.stop_after if stream.stop_after else MAX_TIMESTAMP
        pipeline = beam.Pipeline(options=options)
        ticks = pipeline | "Ticks" >> PeriodicImpulse(
            start_timestamp=started, stop_timestamp=stop, fire_interval=tick)
        build_stream(ticks, feeds, config)
        details = dict(
            stream_id=stream_id, launch=launch, runner=where.runner,
            poll_interval_seconds=stream.poll_interval, poll_shards=stream.poll_shards,
            window_seconds=stream.window, dedup_ttl_seconds=stream.dedup_ttl,
            retry_after_seconds=config.retry_after,
            taxonomy_version=taxonomy.version, state=redact(state_uri) if state_uri else "none",
            sinks=[sink.shown for sink in record_sinks], dead_letters_sink=dead_letter_sink.shown,
            out=out,
        )
        if newsbeam.detach:
            details.update(job_id=submit(pipeline), status="submitted")
            save_json(out, f"{stream_id}-{launch}.json", details)
            return details
        run_to_the_end(pipeline)
        totals = stream_totals(out, stream_id, launch)
        totals.update(details, duration_seconds=round(time.time() - started, 2))
        save_json(out, f"{stream_id}-{launch}.json", totals)
        return totals


def stream_totals(out: str, stream_id: str, launch: str) -> dict[str, Any]:
    """The summary of one launch of a stream, from its windows' summaries in `out` (named
    summary-<stream id>-<window>-<launch>-...; earlier launches' are left out)."""
    counts: Counter[str] = Counter()
    windows = 0
    pattern = f"summary-{stream_id}-*-{launch}-*.json"
    for path in matching_paths(FileSystems.join(out, pattern)):
        with FileSystems.open(path) as handle:
            text = handle.read().decode("utf-8")
        decoder = json.JSONDecoder()
        position = 0
        while text[position:].strip():  # a window's file may hold several panes' summaries
            position += len(text[position:]) - len(text[position:].lstrip())
            summary, length = decoder.raw_decode(text, position)
            position = length
            counts.update(summary["counts"])
            windows += 1
    totals = summarize(counts)
    totals["windows"] = windows
    return totals
