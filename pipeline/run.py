"""Run the batch job once: state in, pipeline, state committed, summary out."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from pipeline import incremental
from pipeline.batch import BatchConfig, build_batch
from pipeline.options import (
    DEFAULT_RUNNER,
    NewsbeamOptions,
    http_settings,
    isolation,
    politeness,
    sinks,
)
from pipeline.summary import build_summary, read_counters
from transforms.core import DeadLetter, Feed, Record, format_utc, redact
from transforms.sinks import prepare_sinks
from transforms.state import (
    StateError,
    commit_staged,
    discard_stale_staging,
    is_local,
    open_state,
    staging_dir,
)
from transforms.topics import Taxonomy

SUMMARY_FILE = "run.json"
# Runners whose workers run on other machines, where a local SQLite state file is not there.
REMOTE_RUNNERS = ("DataflowRunner", "FlinkRunner", "SparkRunner")


def run_batch(
    options: PipelineOptions, feeds: tuple[Feed, ...], taxonomy: Taxonomy, out: str
) -> dict[str, Any]:
    """Run one batch pass over `feeds`, wait for it, commit its state, and return (and save)
    the run summary. `--state none` runs without state: everything is fetched and kept."""
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = DEFAULT_RUNNER
    newsbeam = options.view_as(NewsbeamOptions)
    state_uri = None if newsbeam.state == "none" else newsbeam.state
    if state_uri and is_local(state_uri) and str(standard.runner).endswith(REMOTE_RUNNERS):
        raise StateError(
            f"--state {state_uri} is a file on this machine, which {standard.runner} workers"
            " cannot read: use --state postgresql://... (or --state none)"
        )
    record_sinks, dead_letter_sink = sinks(options, out)
    # Before anything is fetched: a sink that cannot take records fails the run now.
    prepare_sinks(record_sinks, Record)
    prepare_sinks((dead_letter_sink,), DeadLetter)
    started = datetime.now(UTC)
    clock = time.monotonic()
    run_id = incremental.new_run_id(started)
    store = open_state(state_uri) if state_uri else None
    try:
        recovered = [
            run for sink in record_sinks if sink.family == "jsonl"
            for run in incremental.recover_unfinished_runs(sink.target, store)
        ] if store else []
        discard_stale_staging(out)
        if store and not newsbeam.force:
            feeds = incremental.with_validators(feeds, store)
        staging = staging_dir(out, run_id) if store else None
        config = BatchConfig(
            out=out, taxonomy=taxonomy, http=http_settings(options), sinks=record_sinks,
            dead_letter_sink=dead_letter_sink,
            politeness=politeness(options), isolation=isolation(options), run_id=run_id,
            state_uri=None if newsbeam.force else state_uri, staging_dir=staging,
        )
        pipeline = beam.Pipeline(options=options)
        build_batch(pipeline, feeds, config)
        result = pipeline.run()
        result.wait_until_finish()
        # Only now, with every output written, does the run's state become permanent.
        if store and staging:
            commit_staged(store, run_id, staging)
    finally:
        if store:
            store.close()
    summary = build_summary(read_counters(result), feeds_configured=len(feeds))
    summary.update(
        run_id=run_id,
        started_at=format_utc(started),
        duration_seconds=round(time.monotonic() - clock, 2),
        runner=str(standard.runner),
        taxonomy_version=taxonomy.version,
        state=redact(state_uri) if state_uri else "none",
        forced=bool(newsbeam.force),
        recovered_runs=recovered,
        sinks=[sink.shown for sink in record_sinks],
        dead_letters_sink=dead_letter_sink.shown,
        out=out,
    )
    # Through Beam's FileSystems, so --out may be a bucket (gs://...) as well as a local folder.
    with FileSystems.create(FileSystems.join(out, SUMMARY_FILE)) as handle:
        handle.write((json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    return summary
