"""What a batch run and a stream share around their graphs: the runner and where its workers
are, the state, the sinks (checked, then prepared), the settings of the stages they share, the
lease on the state, the job's details, and handing the pipeline to its runner, to wait for it
or to let it run detached."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    PortableOptions,
    StandardOptions,
)

from pipeline.graph.core import CoreConfig
from pipeline.job.dofn_specs import keep_dofn_specs
from pipeline.job.exposition import RunnerCollector, metrics_collector
from pipeline.job.lease import holding_lease
from pipeline.job.options import (
    DEFAULT_RUNNER,
    NewsbeamOptions,
    ViewedOnce,
    alerts_sink,
    feed_health_sink,
    http_settings,
    isolation,
    politeness,
    sinks,
)
from pipeline.job.runners import Placement, check_detachable, check_paths, placement
from transforms.core import (
    Alert,
    ConfigError,
    DeadLetter,
    FeedHealthRow,
    Record,
    redact,
    start_fork_server,
)
from transforms.sinks import Sink, prepare_sinks
from transforms.topics import Taxonomy


class RunFailedError(Exception):
    """The pipeline failed (a sink or the state store went away, a worker died): nothing of
    the run is committed, and the next run redoes its work."""


@dataclasses.dataclass(frozen=True)
class Job:
    """A run or a stream, as its options set it up: everything both decide the same way."""

    command: str  # "run" or "stream": names the lease's holder and the job's errors
    out: str
    where: Placement
    state_uri: str | None  # None: --state none
    record_sinks: tuple[Sink, ...]
    dead_letter_sink: Sink
    feed_health_sink: Sink | None  # --feed-health
    alerts_sink: Sink  # --alerts
    core: CoreConfig  # the settings of the stages both modes share
    detach: bool
    force: bool
    wait: float | None  # how long to wait for another holder of the state

    def details(self, **more: Any) -> dict[str, Any]:
        """What the job's details file says of it, `more` first."""
        return dict(
            **more,
            runner=self.where.runner,
            taxonomy_version=self.core.taxonomy.version,
            state=redact(self.state_uri) if self.state_uri else "none",
            sinks=[sink.shown for sink in self.record_sinks],
            dead_letters_sink=self.dead_letter_sink.shown,
            **({"feed_health_sink": self.feed_health_sink.shown}
               if self.feed_health_sink else {}),
            out=self.out,
        )


def set_up(options: PipelineOptions, command: str, taxonomy: Taxonomy, out: str,
           check: Callable[[Placement, str | None], None] | None = None) -> Job:
    """The job these options ask for (the default runner filled in), refused before anything
    is fetched where its workers could not use a path or the state, or a sink is bad; `check`
    (given where the workers are and the state URI) refuses what else the command cannot do,
    before the sinks and paths are looked at."""
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = DEFAULT_RUNNER
    exporter(options)  # a metrics port that cannot be had fails the job before it starts
    newsbeam = options.view_as(NewsbeamOptions)
    where = placement(options)
    if newsbeam.detach:
        check_detachable(where, command)
    state_uri = None if newsbeam.state == "none" else newsbeam.state
    if check is not None:
        check(where, None if newsbeam.force else state_uri)
    record_sinks, dead_letter_sink = sinks(options, out)
    health_sink, alert_sink = feed_health_sink(options), alerts_sink(options, out)
    check_paths(where, shared_filesystem=newsbeam.shared_filesystem, out=out,
                sinks=(*record_sinks, dead_letter_sink, alert_sink,
                       *([health_sink] if health_sink else [])),
                state_uri=state_uri)
    core = CoreConfig(
        taxonomy, http_settings(options), politeness(options), isolation(options, where),
        # Worth it only where there is more than one worker process to spread pages over.
        spread_extraction=not (where.on_this_machine and where.worker_processes == 1),
    )
    return Job(command=command, out=out, where=where, state_uri=state_uri,
               record_sinks=record_sinks, dead_letter_sink=dead_letter_sink,
               feed_health_sink=health_sink, alerts_sink=alert_sink, core=core,
               detach=bool(newsbeam.detach), force=bool(newsbeam.force), wait=newsbeam.wait)


def new_pipeline(options: PipelineOptions) -> beam.Pipeline:
    """A pipeline for the job's graph, on `options` (whose views it makes once: ViewedOnce),
    with each of its DoFns' specs worked out once (keep_dofn_specs)."""
    keep_dofn_specs()
    return beam.Pipeline(options=options.view_as(ViewedOnce))


@contextlib.contextmanager
def launched(job: Job) -> Iterator[None]:
    """Hold the lease on the job's state (one run or stream at a time on a state: nothing is
    prepared or fetched before it is held), start the fork server where the workers run in
    this process, and prepare its sinks."""
    with holding_lease(job.state_uri, job.command, job.wait):
        if job.where.on_this_machine and job.where.worker_processes == 1:
            # The workers run in this process: the fork server of their worker and lane
            # processes imports what those run while Beam sets the job up.
            start_fork_server()
        prepare_sinks(job.record_sinks, Record)
        prepare_sinks((job.dead_letter_sink,), DeadLetter)
        if job.feed_health_sink is not None:
            prepare_sinks((job.feed_health_sink,), FeedHealthRow)
        if job.state_uri is not None:  # alerts need the state's history
            prepare_sinks((job.alerts_sink,), Alert)
        yield


def submitted(job: Job, pipeline: beam.Pipeline, details: dict[str, Any],
              details_file: str) -> dict[str, Any]:
    """Hand a detached job's pipeline to its runner; its details, with the runner's job id
    (or, launched by a Dataflow Flex Template, where the job's graph was written), saved to
    `details_file` in the job's `out` and returned."""
    submitted_as = submit(pipeline)
    if submitted_as is None:
        # --template_location: Beam wrote the job's graph there, for the Flex Template's
        # launcher to start the job from; there is no job yet.
        template = pipeline.options.view_as(GoogleCloudOptions).template_location
        details.update(status="template_written", template=template)
    else:
        details.update(job_id=submitted_as, status="submitted")
    save_json(job.out, details_file, details)
    return details


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


def run_to_the_end(pipeline: beam.Pipeline,
                   windows: Callable[[], float | None] | None = None,
                   committed: Callable[[], bool] | None = None) -> None:
    """Run the pipeline and wait for it; RunFailedError with one line if it fails, which says
    whether the run's state was committed (`committed`, asked after a failure: a batch run
    keeps feed health and alerts after its commit). With --metrics-port, its metrics are served
    while it runs (and `windows` tells when a stream's last window closed)."""
    lift_wait_deadline(pipeline.options)
    collector = exporter(pipeline.options)
    if collector is not None:
        collector.windows = windows
    result = None
    try:
        result = pipeline.run()
        if collector is not None:
            collector.watch(result)
        result.wait_until_finish()
    except Exception as error:  # whatever the runner raises, the user gets one line
        if committed is not None and _asked(committed):
            # Its records are written and its state says so: a re-run would find nothing new,
            # so its counts are kept where the runner still has them (an in-process runner
            # that raised from run() has none to give).
            if collector is not None and result is not None:
                collector.finished(result)
            elif collector is not None:
                collector.abandoned()
            message = ("the run failed after committing its state (its records are written;"
                       f" its feed health and alerts were not kept): {root_cause(error)}")
            raise RunFailedError(message) from error
        if collector is not None:  # nothing of it was committed: its counts are not kept
            collector.abandoned()
        message = f"the run failed, nothing was committed: {root_cause(error)}"
        raise RunFailedError(message) from error
    if collector is not None:
        collector.finished(result)


def _asked(committed: Callable[[], bool]) -> bool:
    """Whether the failed run committed, as far as can be told (a store that cannot be asked
    either: not committed, the message of the more common case)."""
    try:
        return committed()
    except Exception:  # noqa: BLE001  (the run's own failure is the one to report)
        return False


def exporter(options: PipelineOptions) -> RunnerCollector | None:
    """The metrics server --metrics-port asks for (ConfigError, one line, if it cannot
    listen), started once per process; None without the option."""
    view = options.view_as(NewsbeamOptions)
    if view.metrics_port is None:
        return None
    try:
        return metrics_collector(view.metrics_host, view.metrics_port)
    except OSError as error:
        raise ConfigError(f"--metrics-port {view.metrics_port}: cannot listen on"
                          f" {view.metrics_host}:{view.metrics_port}: {error.strerror}") from None


def submit(pipeline: beam.Pipeline) -> str | None:
    """Hand the pipeline to its runner without waiting for it; the runner's id for the job,
    None where the runner made no job (RunFailedError with one line if it refuses it)."""
    try:
        result = pipeline.run()
    except Exception as error:  # whatever the runner raises, the user gets one line
        raise RunFailedError(f"the job was not started: {root_cause(error)}") from error
    return job_id(result)


def job_id(result: Any) -> str | None:
    """The runner's id for a submitted job; None for a Dataflow result without a job (Beam
    2.77's DataflowRunner with --template_location writes the job's graph and makes no job:
    `has_job` is false and job_id() raises). Beam 2.77's PortableRunner result (Flink, Spark,
    a job service) has no public accessor, and keeps the id its job service assigned in
    `_job_id` (apache_beam/runners/portability/portable_runner.py, PipelineResult.__init__;
    no upstream issue asks for an accessor as of Beam 2.77)."""
    if getattr(result, "has_job", True) is False:
        return None
    public = getattr(result, "job_id", None)
    if callable(public):
        return str(public())
    return str(getattr(result, "_job_id", "unknown"))


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
