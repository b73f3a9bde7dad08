"""Run the batch job once: state in, pipeline, state committed, summary out."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions, StandardOptions

from pipeline import incremental
from pipeline.batch import BatchConfig, build_batch, summary_path
from pipeline.lease import holding_lease
from pipeline.options import (
    DEFAULT_RUNNER,
    NewsbeamOptions,
    http_settings,
    isolation,
    politeness,
    sinks,
)
from pipeline.runners import check_detachable, check_paths, placement
from transforms.core import DeadLetter, Feed, Record, format_utc, redact
from transforms.sinks import prepare_sinks
from transforms.state import discard_stale_staging, open_state, staging_dir
from transforms.topics import Taxonomy

SUMMARY_FILE = "run.json"


class RunFailedError(Exception):
    """The pipeline failed (a sink or the state store went away, a worker died): nothing of
    the run is committed, and the next run redoes its work."""


def run_batch(
    options: PipelineOptions, feeds: tuple[Feed, ...], taxonomy: Taxonomy, out: str
) -> dict[str, Any]:
    """Run one batch pass over `feeds` (which commits its state as its last step), wait for
    it, and return (and save) the run summary; with `--detach`, return (and save) the run's
    details once the runner has it, with `job_id`. `--state none` runs without state:
    everything is fetched and kept."""
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = DEFAULT_RUNNER
    newsbeam = options.view_as(NewsbeamOptions)
    state_uri = None if newsbeam.state == "none" else newsbeam.state
    record_sinks, dead_letter_sink = sinks(options, out)
    where = placement(options)
    # Before anything is fetched: what the workers could not use, or a sink that cannot take
    # records, fails the run now.
    check_paths(where, shared_filesystem=newsbeam.shared_filesystem, out=out,
                sinks=(*record_sinks, dead_letter_sink), state_uri=state_uri)
    if newsbeam.detach:
        check_detachable(where, "run")
    # One run at a time on a state: nothing is prepared or fetched before the lease is held.
    with holding_lease(state_uri, "run", newsbeam.wait):
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
                state_uri=state_uri, force=bool(newsbeam.force), staging_dir=staging,
                spread_extraction=not (where.on_this_machine and where.worker_processes == 1),
            )
            pipeline = beam.Pipeline(options=options)
            build_batch(pipeline, feeds, config)
            details = dict(
                run_id=run_id,
                started_at=format_utc(started),
                runner=where.runner,
                taxonomy_version=taxonomy.version,
                state=redact(state_uri) if state_uri else "none",
                forced=bool(newsbeam.force),
                recovered_runs=recovered,
                sinks=[sink.shown for sink in record_sinks],
                dead_letters_sink=dead_letter_sink.shown,
                out=out,
            )
            if newsbeam.detach:
                details.update(job_id=submit(pipeline), status="submitted",
                               summary=summary_path(out, run_id))
                save_json(out, SUMMARY_FILE, details)
                return details
            run_to_the_end(pipeline)
        finally:
            if store:
                store.close()
        summary = read_summary(summary_path(out, run_id))
        summary.update(details, duration_seconds=round(time.monotonic() - clock, 2))
        save_json(out, SUMMARY_FILE, summary)
        return summary


def save_json(out: str, name: str, content: dict[str, Any]) -> None:
    """Write `content` to `out`/`name`, a local folder or a bucket (through Beam's
    FileSystems)."""
    with FileSystems.create(FileSystems.join(out, name)) as handle:
        handle.write((json.dumps(content, indent=2) + "\n").encode("utf-8"))


# Beam 2.77's PortableRunner (Prism, Flink, Spark, a job service) opens the streams it waits on
# for the job's state and messages with --job_server_timeout (300 s by default) as their
# deadline: a job waited for longer than that fails with DEADLINE_EXCEEDED while it still runs
# (pinned by tests/test_runner_facts.py). Waiting for a job, we give those streams ten years.
WAIT_DEADLINE = 10 * 365 * 86400


JOB_SERVICE_ANSWERS_WITHIN = 60.0


def lift_wait_deadline(options: PipelineOptions) -> None:
    """Give the job service's streams WAIT_DEADLINE, unless --job_server_timeout was given (a
    value other than Beam's default). The same timeout bounds the connection to a job service
    at --job_endpoint: that one is checked first, so a wrong endpoint still fails in a minute
    (RunFailedError)."""
    if "job_server_timeout" in options.get_all_options(drop_default=True):
        return
    portable = options.view_as(PortableOptions)
    if portable.job_endpoint and portable.job_endpoint != "embed":
        import grpc

        channel = grpc.insecure_channel(portable.job_endpoint)
        try:
            grpc.channel_ready_future(channel).result(timeout=JOB_SERVICE_ANSWERS_WITHIN)
        except grpc.FutureTimeoutError:
            raise RunFailedError(
                f"the job service at {portable.job_endpoint} did not answer within"
                f" {JOB_SERVICE_ANSWERS_WITHIN:g} s") from None
        finally:
            channel.close()
    portable.job_server_timeout = WAIT_DEADLINE


def run_to_the_end(pipeline: beam.Pipeline) -> None:
    """Run the pipeline and wait for it; RunFailedError with one line if it fails."""
    lift_wait_deadline(pipeline.options)
    try:
        result = pipeline.run()
        result.wait_until_finish()
    except Exception as error:  # whatever the runner raises, the user gets one line
        message = f"the run failed, nothing was committed: {root_cause(error)}"
        raise RunFailedError(message) from error


def submit(pipeline: beam.Pipeline) -> str:
    """Hand the pipeline to its runner without waiting for it; the runner's id for the job
    (RunFailedError with one line if the runner refuses it)."""
    try:
        result = pipeline.run()
    except Exception as error:  # whatever the runner raises, the user gets one line
        raise RunFailedError(f"the job was not started: {root_cause(error)}") from error
    # Dataflow's result has job_id(); the portable runner's (Flink, Spark, job services) keeps
    # the id its job service assigned in _job_id.
    job_id = getattr(result, "job_id", None)
    return str(job_id() if callable(job_id) else getattr(result, "_job_id", "unknown"))


def root_cause(error: BaseException) -> str:
    """The first line of the innermost error, which says what went wrong (runners wrap a
    worker's exception in their own, with the worker's traceback in the message)."""
    while error.__cause__ is not None:
        error = error.__cause__
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    # A worker traceback quoted in the message ends with the worker's own error line.
    if any(line.startswith("Traceback") for line in lines):
        lines = [lines[-1]]
    return (lines[0] if lines else type(error).__name__)[:300]


def read_summary(path: str) -> dict[str, Any]:
    """The summary the pipeline wrote (local or in a bucket)."""
    with FileSystems.open(path) as handle:
        summary: dict[str, Any] = json.loads(handle.read().decode("utf-8"))
    return summary
