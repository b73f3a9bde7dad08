"""Where a run's workers are: in this process, in processes on this machine, or on others.

Two decisions follow from it. Which paths a run may use: a worker on another machine does not
see this machine's files, so a local output folder, local file sinks and the run's staged
state would land on worker disks and vanish (unless every worker sees the same path). And how
many worker processes (parsing feeds, extracting pages) each Beam worker process starts, so
that a machine runs about one per core however many Beam worker processes share it.
"""

from __future__ import annotations

import dataclasses
import os

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import (
    DirectOptions,
    PipelineOptions,
    PortableOptions,
    StandardOptions,
)

from transforms.sinks import Sink
from transforms.state import is_local

# Runners whose workers run on this machine: Beam's in-process and local runners. The
# PortableRunner is local only with a LOOPBACK environment (its workers are then this process);
# with EXTERNAL, DOCKER or PROCESS environments it is how Flink, Spark and job services on
# other machines are reached.
LOCAL_RUNNERS = frozenset({
    "DirectRunner", "SwitchingDirectRunner", "BundleBasedDirectRunner", "FnApiRunner",
    "TestDirectRunner", "PrismRunner",
})
_KNOWN = {path.rsplit(".", 1)[-1].lower(): path.rsplit(".", 1)[-1]
          for path in StandardOptions.ALL_KNOWN_RUNNERS}


class PlacementError(Exception):
    """A path or state the run's workers could not use; the message says what to use."""


def runner_name(runner: str) -> str:
    """Beam's class name for a --runner value, spelled any way Beam accepts: any case, with or
    without "Runner", or as a dotted path ("dataflow" -> "DataflowRunner")."""
    name = runner.rsplit(".", 1)[-1]
    return _KNOWN.get(name.lower()) or _KNOWN.get(name.lower() + "runner") or name


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where the workers of a run are."""

    runner: str  # Beam's class name
    on_this_machine: bool
    worker_processes: int  # Beam worker processes sharing this machine; 0 on other machines


def placement(options: PipelineOptions) -> Placement:
    """Where the workers of a pipeline with these options run."""
    name = runner_name(str(options.view_as(StandardOptions).runner))
    environment = (options.view_as(PortableOptions).environment_type or "").upper()
    on_this_machine = name in LOCAL_RUNNERS or (
        name == "PortableRunner" and environment == "LOOPBACK")
    if not on_this_machine:
        return Placement(name, False, 0)
    direct = options.view_as(DirectOptions)
    processes = 1
    if direct.direct_running_mode == "multi_processing":
        processes = direct.direct_num_workers or os.cpu_count() or 1
    return Placement(name, True, processes)


def check_detachable(where: Placement, command: str) -> None:
    """PlacementError unless a job on this runner outlives the program that launched it."""
    if where.on_this_machine:
        raise PlacementError(
            f"{command}: --detach needs a runner whose workers run elsewhere; {where.runner}"
            " runs the job in this process, which would end it on exit")


def extraction_processes(where: Placement, requested: int) -> int:
    """Extraction processes per Beam worker process: as requested, or (0) about one per core of
    the machine. On this machine the cores are shared among its Beam worker processes; on
    other machines each worker process gets one, as Dataflow runs one worker process per core
    (on Flink or Spark, where one worker process serves many slots, ask for more)."""
    if requested:
        return requested
    if not where.on_this_machine:
        return 1
    return max(1, (os.cpu_count() or 1) // where.worker_processes)


def check_paths(
    where: Placement, *, shared_filesystem: bool, out: str, sinks: tuple[Sink, ...],
    state_uri: str | None,
) -> None:
    """Refuse, before anything is fetched, what a run's workers could not use: an SQLite state
    anywhere but this machine, and, unless every worker sees the same files, a local output
    folder or local file sinks."""
    if where.on_this_machine:
        return
    if state_uri and is_local(state_uri):
        raise PlacementError(
            f"--state {state_uri} is a file on this machine, which {where.runner} workers"
            " cannot share: use --state postgresql://USER@HOST:PORT/DB (or --state none)")
    if shared_filesystem:
        return
    fix = ("use a bucket path (gs://..., s3://...), or --shared-filesystem when every worker"
           " sees this path (an NFS mount, or workers on this machine)")
    if _is_local(out):
        raise PlacementError(
            f"--out {out} is a folder on this machine, which {where.runner} workers do not"
            f" see: {fix}")
    for sink in sinks:
        if sink.family in ("jsonl", "parquet") and _is_local(sink.target):
            raise PlacementError(
                f"sink {sink.shown} is a folder on this machine, which {where.runner} workers"
                f" do not see: {fix}")


def _is_local(path: str) -> bool:
    return FileSystems.get_scheme(path) in (None, "file")
