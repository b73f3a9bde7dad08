"""Run the batch job once: state in, pipeline, state committed, summary out."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.graph.batch import BatchConfig, build_batch, summary_path
from pipeline.job import incremental
from pipeline.job.setup import (
    launched,
    new_pipeline,
    run_to_the_end,
    save_json,
    set_up,
    submitted,
)
from transforms.core import Feed, format_utc
from transforms.state import discard_stale_staging, open_state, staging_dir
from transforms.topics import Taxonomy

SUMMARY_FILE = "run.json"


def run_batch(
    options: PipelineOptions, feeds: tuple[Feed, ...], taxonomy: Taxonomy, out: str
) -> dict[str, Any]:
    """Run one batch pass over `feeds` (which commits its state as its last step), wait for
    it, and return (and save) the run summary; with `--detach`, return (and save) the run's
    details once the runner has it, with `job_id`. `--state none` runs without state:
    everything is fetched and kept."""
    job = set_up(options, "run", taxonomy, out)
    with launched(job):
        started = datetime.now(UTC)
        clock = time.monotonic()
        run_id = incremental.new_run_id(started)
        store = open_state(job.state_uri) if job.state_uri else None
        try:
            recovered = [
                run for sink in job.record_sinks if sink.family == "jsonl"
                for run in incremental.recover_unfinished_runs(sink.target, store)
            ] if store else []
            discard_stale_staging(out)
            if store and not job.force:
                feeds = incremental.with_validators(feeds, store)
            config = BatchConfig(
                out=out, core=job.core, sinks=job.record_sinks,
                dead_letter_sink=job.dead_letter_sink, run_id=run_id, state_uri=job.state_uri,
                force=job.force, staging_dir=staging_dir(out, run_id) if store else None,
                feed_health_sink=job.feed_health_sink, alerts_sink=job.alerts_sink,
            )
            pipeline = new_pipeline(options)
            build_batch(pipeline, feeds, config)
            details = job.details(run_id=run_id, started_at=format_utc(started),
                                  forced=job.force, recovered_runs=recovered)
            if job.detach:
                details["summary"] = summary_path(out, run_id)
                return submitted(job, pipeline, details, SUMMARY_FILE)
            run_to_the_end(pipeline, committed=(
                (lambda: run_id in store.committed_runs()) if store else None))
        finally:
            if store:
                store.close()
        summary = read_summary(summary_path(out, run_id))
        summary.update(details, duration_seconds=round(time.monotonic() - clock, 2))
        save_json(out, SUMMARY_FILE, summary)
        return summary


def read_summary(path: str) -> dict[str, Any]:
    """The summary the pipeline wrote (local or in a bucket)."""
    with FileSystems.open(path) as handle:
        summary: dict[str, Any] = json.loads(handle.read().decode("utf-8"))
    return summary
