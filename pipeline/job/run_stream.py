"""Run a stream: options checked, feeds polled on an impulse until stopped, totals out."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.transforms.periodicsequence import PeriodicImpulse
from apache_beam.utils.timestamp import MAX_TIMESTAMP

from pipeline.graph.stream import StreamConfig, build_stream
from pipeline.job import incremental
from pipeline.job.options import StreamOptions
from pipeline.job.runners import Placement, PlacementError
from pipeline.job.setup import (
    launched,
    new_pipeline,
    run_to_the_end,
    save_json,
    set_up,
    submitted,
)
from transforms.core import (
    ConfigError,
    Feed,
    format_duration,
    matching_paths,
    parse_summaries,
    summarize,
)
from transforms.feeds import tick_interval
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
    options.view_as(StandardOptions).streaming = True
    stream = options.view_as(StreamOptions)

    def check(where: Placement, state_uri: str | None) -> None:
        if where.runner in TRIAL_RUNNERS and stream.stop_after is None:
            raise PlacementError(
                f"stream: on {where.runner} a stream needs --stop-after (it writes its windows"
                " when it stops); for a stream that runs until stopped use a streaming runner"
                " (--runner DataflowRunner, FlinkRunner or PrismRunner), or, on one machine,"
                " newsbeam run --every")
        # --retry-after matters where a store remembers outcomes while the stream runs.
        if (state_uri and where.runner not in TRIAL_RUNNERS
                and stream.retry_after <= stream.window):
            raise ConfigError(
                f"stream: --retry-after ({format_duration(stream.retry_after)}) must be longer"
                f" than --window ({format_duration(stream.window)}): what a window wrote is"
                " committed to the state store when it closes")

    job = set_up(options, "stream", taxonomy, out, check)
    trial = job.where.runner in TRIAL_RUNNERS
    # Held while the stream runs (while it is launched, with --detach).
    with launched(job):
        try:
            stream_id = incremental.stream_identity(stream.stream_id, out, job.state_uri)
        except ValueError as exc:
            raise ConfigError(f"stream: {exc}") from None
        launch = incremental.new_run_id()
        if job.state_uri and not job.force:
            store = open_state(job.state_uri)
            try:
                incremental.recover_stream_windows(stream_id, job.record_sinks,
                                                   job.dead_letter_sink, store)
                feeds = incremental.with_validators(feeds, store)
            finally:
                store.close()
        config = StreamConfig(
            out=out, core=job.core, stream_id=stream_id, launch=launch,
            sinks=job.record_sinks, dead_letter_sink=job.dead_letter_sink,
            feed_health_sink=job.feed_health_sink, alerts_sink=job.alerts_sink,
            poll_interval=stream.poll_interval, window=stream.window,
            dedup_ttl=stream.dedup_ttl,
            # A trial stream writes its windows, and commits their ids, only when it ends: it
            # retries failed pages at its next run, not while it runs.
            retry_after=stream.dedup_ttl if trial else stream.retry_after,
            state_uri=None if job.force else job.state_uri,
            expire_by_timer=not trial, poll_shards=stream.poll_shards,
        )
        started = time.time()
        stop = started + stream.stop_after if stream.stop_after else MAX_TIMESTAMP
        pipeline = new_pipeline(options)
        ticks = pipeline | "Ticks" >> PeriodicImpulse(
            start_timestamp=started, stop_timestamp=stop,
            fire_interval=tick_interval(feeds, stream.poll_interval))
        build_stream(ticks, feeds, config)
        details = job.details(
            stream_id=stream_id, launch=launch,
            poll_interval_seconds=stream.poll_interval, poll_shards=stream.poll_shards,
            window_seconds=stream.window, dedup_ttl_seconds=stream.dedup_ttl,
            retry_after_seconds=config.retry_after,
        )
        details_file = f"{stream_id}-{launch}.json"
        if job.detach:
            return submitted(job, pipeline, details, details_file)
        run_to_the_end(pipeline, lambda: last_window_end(out, stream_id, launch))
        totals = stream_totals(out, stream_id, launch)
        totals.update(details, duration_seconds=round(time.time() - started, 2))
        save_json(out, details_file, totals)
        return totals


def last_window_end(out: str, stream_id: str, launch: str) -> float | None:
    """When the last window of this launch whose summary is written ended (epoch seconds), by
    the summaries' names (summary-<stream id>-<start>-<end>-<launch>-...)."""
    ends = []
    for path in matching_paths(FileSystems.join(out, f"summary-{stream_id}-*-{launch}-*.json")):
        name = path.rsplit("/", 1)[-1].removeprefix(f"summary-{stream_id}-")
        try:
            end = datetime.strptime(name.split("-")[1], "%Y%m%dT%H%M%SZ")
        except (IndexError, ValueError):
            continue
        ends.append(end.replace(tzinfo=UTC).timestamp())
    return max(ends, default=None)


def stream_totals(out: str, stream_id: str, launch: str) -> dict[str, Any]:
    """The summary of one launch of a stream, from its windows' summaries in `out` (named
    summary-<stream id>-<window>-<launch>-...; earlier launches' are left out)."""
    counts: Counter[str] = Counter()
    windows = 0
    classes: tuple[str, dict[str, int]] = ("", {})  # the last window's feeds by class
    pattern = f"summary-{stream_id}-*-{launch}-*.json"
    for path in matching_paths(FileSystems.join(out, pattern)):
        with FileSystems.open(path) as handle:
            text = handle.read().decode("utf-8")
        for summary in parse_summaries(text):  # a window's file holds a summary per pane
            # Feeds are classed anew in every window: their classes are a state, not events,
            # and the launch's are those of its last window.
            health = {n: v for n, v in summary["counts"].items() if n.startswith("health.")}
            end = summary.get("window", {}).get("end", "")
            if health and end >= classes[0]:
                classes = (end, health)
            counts.update({n: v for n, v in summary["counts"].items() if n not in health})
            windows += 1
    counts.update(classes[1])
    totals = summarize(counts)
    totals["windows"] = windows
    return totals
