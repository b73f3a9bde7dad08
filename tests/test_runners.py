"""Runs on a cluster: paths the workers cannot see are refused up front, and per-process
resources are made once per process, however many DoFn instances a runner creates."""

from __future__ import annotations

import copy
import gc
import inspect
import os
import pickle
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.coders import VarIntCoder
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import userstate
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec, TimerSpec, on_timer

from pipeline import demo
from pipeline.cli import main
from pipeline.job.dofn_specs import keep_dofn_specs
from pipeline.job.options import NewsbeamOptions, ViewedOnce
from pipeline.job.runners import (
    Placement,
    PlacementError,
    check_detachable,
    check_paths,
    extraction_processes,
    placement,
    runner_name,
)
from pipeline.job.setup import new_pipeline
from transforms.core import Entry, IsolationSettings, Page, article_id, canonical_url, isolation
from transforms.extract import ExtractArticles, extract_articles
from transforms.sinks import parse_sink


@pytest.mark.parametrize(("spelling", "name"), [
    ("dataflow", "DataflowRunner"),
    ("DataflowRunner", "DataflowRunner"),
    ("DATAFLOWRUNNER", "DataflowRunner"),
    ("apache_beam.runners.dataflow.dataflow_runner.DataflowRunner", "DataflowRunner"),
    ("flink", "FlinkRunner"),
    ("portable", "PortableRunner"),
    ("fnapirunner", "FnApiRunner"),
    ("my.company.CustomRunner", "CustomRunner"),
])
def test_runner_names_as_beam_accepts_them(spelling: str, name: str) -> None:
    assert runner_name(spelling) == name


@pytest.mark.parametrize(("flags", "on_this_machine", "processes"), [
    (["--runner=FnApiRunner"], True, 1),
    (["--runner=DirectRunner", "--direct_num_workers=4",
      "--direct_running_mode=multi_threading"], True, 1),
    (["--runner=FnApiRunner", "--direct_num_workers=2",
      "--direct_running_mode=multi_processing"], True, 2),
    (["--runner=PortableRunner", "--environment_type=LOOPBACK"], True, 1),
    (["--runner=PortableRunner", "--environment_type=EXTERNAL"], False, 0),
    (["--runner=portable"], False, 0),
    (["--runner=dataflow"], False, 0),
    (["--runner=SparkRunner"], False, 0),
])
def test_placement(flags: list[str], on_this_machine: bool, processes: int) -> None:
    where = placement(PipelineOptions(flags))
    assert (where.on_this_machine, where.worker_processes) == (on_this_machine, processes)


def test_extraction_processes_are_sized_per_machine() -> None:
    cores = os.cpu_count() or 1
    assert extraction_processes(Placement("FnApiRunner", True, 1), 0) == cores
    assert extraction_processes(Placement("FnApiRunner", True, cores), 0) == 1
    assert extraction_processes(Placement("DataflowRunner", False, 0), 0) == 1
    assert extraction_processes(Placement("DataflowRunner", False, 0), 3) == 3


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        status = main(list(argv))
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("newsbeam: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return status, lines[0]


@pytest.mark.parametrize(("flags", "refused", "fix"), [
    (["--runner=dataflow", "--state=none"], "--out {tmp}/out is a folder on this machine",
     "gs://"),
    (["--runner=DataflowRunner", "--state=none", "--out=gs://bucket/news",
      "--sink=jsonl:{tmp}/records"], "sink jsonl:{tmp}/records is a folder on this machine",
     "--shared-filesystem"),
    (["--runner=apache_beam.runners.portability.flink_runner.FlinkRunner", "--state=none",
      "--out=gs://bucket/news", "--dead-letters=parquet:{tmp}/letters"],
     "sink parquet:{tmp}/letters is a folder on this machine", "gs://"),
    (["--runner=PortableRunner", "--environment_type=EXTERNAL", "--state=none"],
     "--out {tmp}/out is a folder on this machine, which PortableRunner workers", "gs://"),
    (["--runner=SparkRunner", "--shared-filesystem", "--state=sqlite:{tmp}/state.db"],
     "--state sqlite:{tmp}/state.db is a file on this machine", "postgresql://"),
])
def test_remote_runners_refuse_local_paths_before_any_fetch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], refused: str,
    fix: str,
) -> None:
    site = demo.sample_server()
    try:
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(f"feeds: [{site.url('/feeds/world.rss')}]\n")
        argv = ["run", "--feeds", str(feeds), "--out", str(tmp_path / "out"),
                "--allow-private-networks", *(f.format(tmp=tmp_path) for f in flags)]
        status, line = _run(capsys, *argv)
    finally:
        site.stop()
    assert status == 2
    assert refused.format(tmp=tmp_path) in line and fix in line
    assert sum(site.requests.values()) == 0


class _Probe:
    """What a run's DoFn instances and extraction pools did, in this process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.extract_fns: set[int] = set()
        self.pools = 0
        self.worker_pids: set[int] = set()


def _page(n: int) -> Page:
    article = demo.sample_articles()[n % 6]
    url = f"http://127.0.0.1:8000{article['path']}?n={n}"
    entry = Entry(feed_url="http://127.0.0.1:8000/feed", feed_title=None, feed_tags=(),
                  feed_index=0, position=n, guid=None, link=url,
                  canonical_url=canonical_url(url), article_id=article_id(canonical_url(url)),
                  title=None, authors=(), published_at=None, updated_at=None, categories=(),
                  summary=None)
    return Page(entry, url, 200, "text/html; charset=utf-8",
                demo.render_page(article, "http://127.0.0.1:8000"), datetime.now(UTC))


@pytest.mark.slow
def test_one_extraction_pool_per_process_however_many_dofn_instances(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    probe = _Probe()
    original_setup = extract_articles._ExtractFn.setup
    original_pool = isolation.ProcessPool.__init__
    original_worker = isolation._Worker.__init__

    def setup(fn: extract_articles._ExtractFn) -> None:
        with probe.lock:
            probe.extract_fns.add(id(fn))
        original_setup(fn)

    def pool(self: isolation.ProcessPool, *args: object, **kwargs: object) -> None:
        with probe.lock:
            probe.pools += 1
        original_pool(self, *args, **kwargs)  # type: ignore[arg-type]

    def worker(self: isolation._Worker, targets: tuple[str, ...]) -> None:
        original_worker(self, targets)
        with probe.lock:
            probe.worker_pids.add(self.pid or 0)

    monkeypatch.setattr(extract_articles._ExtractFn, "setup", setup)
    monkeypatch.setattr(isolation.ProcessPool, "__init__", pool)
    monkeypatch.setattr(isolation._Worker, "__init__", worker)
    # Four worker threads in this process: the runner makes a DoFn instance for each.
    options = PipelineOptions(["--runner=FnApiRunner", "--direct_num_workers=4",
                               "--direct_running_mode=multi_threading"])
    with beam.Pipeline(options=options) as p:
        extracted = (p | beam.Create(range(48)) | beam.Reshuffle() | beam.Map(_page)
                     | ExtractArticles(IsolationSettings(processes=2)))
        extracted.articles | beam.combiners.Count.Globally()
    assert len(probe.extract_fns) > 1  # several DoFn instances...
    assert probe.pools == 1  # ... one pool
    assert len(probe.worker_pids) == 2  # the configured number of processes, not a multiple



def _views_made(monkeypatch: pytest.MonkeyPatch) -> list[type]:
    """The class of every PipelineOptions view made from now on (each parses every flag)."""
    made: list[type] = []
    make = PipelineOptions.__init__

    def counted(self: PipelineOptions, *args: object, **kwargs: object) -> None:
        made.append(type(self))
        make(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(PipelineOptions, "__init__", counted)
    return made


def _forty_steps(pipeline: beam.Pipeline) -> beam.PCollection:
    numbers = pipeline | beam.Create([0])
    for step in range(40):
        numbers = numbers | f"Add{step}" >> beam.Map(lambda n: n + 1)
    return numbers


def test_beam_makes_a_view_of_a_pipelines_options_for_every_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What ViewedOnce works around (Beam 2.77): if a new Beam stops making a view per step
    applied, ViewedOnce can go."""
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    made = _views_made(monkeypatch)
    _forty_steps(pipeline)
    assert len(made) >= 40


def test_a_jobs_pipeline_makes_each_view_of_its_options_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = new_pipeline(PipelineOptions(["--runner=FnApiRunner", "--state=none",
                                             "--http-user-agent=probe/1"]))
    made = _views_made(monkeypatch)
    with pipeline:
        assert_that(_forty_steps(pipeline), equal_to([40]))
    assert len(made) <= 10  # one per kind of view the runner asks for, not one per step
    # Every view reads and writes the options' one store of values.
    options = pipeline.options
    assert isinstance(options, ViewedOnce)
    assert options.view_as(NewsbeamOptions).http_user_agent == "probe/1"
    options.view_as(StandardOptions).streaming = True
    assert options.get_all_options()["streaming"] is True
    assert PipelineOptions.view_as(options, StandardOptions).streaming is True  # a new view's
    # A copy (Beam deep-copies a pipeline's options) and a pickle carry values, not views.
    for copied in (copy.deepcopy(options), pickle.loads(pickle.dumps(options))):
        assert "_views" not in copied.__dict__
        assert copied.view_as(NewsbeamOptions).http_user_agent == "probe/1"
        assert copied.view_as(StandardOptions).streaming is True


class _Buffered(beam.DoFn):
    """A stateful DoFn: a bag of values and a timer."""

    BAG = BagStateSpec("bag", VarIntCoder())
    FLUSH = TimerSpec("flush", TimeDomain.WATERMARK)

    def process(self, element: tuple[str, int], bag: Any = beam.DoFn.StateParam(BAG),
                flush: Any = beam.DoFn.TimerParam(FLUSH),
                window: Any = beam.DoFn.WindowParam) -> Iterator[int]:
        bag.add(element[1])
        flush.set(window.max_timestamp())
        yield element[1]

    @on_timer(FLUSH)
    def flushed(self, bag: Any = beam.DoFn.StateParam(BAG)) -> Iterator[int]:
        yield from bag.read()


def _beams_get_dofn_specs_counted(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list]:
    """Beam's own get_dofn_specs (unwrapped, if keep_dofn_specs has wrapped it), and the DoFns
    it is asked about from now on in this test."""
    kept = userstate.get_dofn_specs
    beams = getattr(kept, "beams", kept)
    asked: list[object] = []

    def counted(dofn: object) -> Any:
        asked.append(dofn)
        return beams(dofn)

    monkeypatch.setattr(userstate, "get_dofn_specs", counted)
    return beams, asked


def test_beam_works_out_a_dofns_specs_again_each_time_it_is_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What keep_dofn_specs works around (Beam 2.77): if a new Beam asks for a DoFn's specs
    once, or keeps them, it can go."""
    beams, asked = _beams_get_dofn_specs_counted(monkeypatch)
    fn = _Buffered()
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    _ = pipeline | beam.Create([("a", 1)]) | beam.ParDo(fn)
    pipeline.to_runner_api()
    assert sum(dofn is fn for dofn in asked) >= 3  # made, checked, translated

    signatures = []
    signature = inspect.signature
    monkeypatch.setattr(inspect, "signature", lambda *a, **k: signatures.append(a) or
                        signature(*a, **k))
    beams(fn)
    once = len(signatures)
    beams(fn)
    assert len(signatures) == 2 * once and once >= 20  # every method, every time


def test_a_dofns_specs_are_worked_out_once_and_kept_while_it_lives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    beams, worked_out = _beams_get_dofn_specs_counted(monkeypatch)
    keep_dofn_specs()
    kept = userstate.get_dofn_specs
    stateful, stateless = _Buffered(), beam.Map(str).fn
    for fn in (stateful, stateless):
        assert kept(fn) == beams(fn)
        worked_out.clear()
        state, timers = kept(fn)
        assert kept(fn) == (state, timers) and worked_out == []  # kept, not asked again
        state.add("changed by a caller")
        assert "changed by a caller" not in kept(fn)[0]
    assert userstate.is_stateful_dofn(stateful) and not userstate.is_stateful_dofn(stateless)
    assert kept(stateful) == ({_Buffered.BAG}, {_Buffered.FLUSH})
    keep_dofn_specs()
    assert userstate.get_dofn_specs is kept  # wrapped once
    held = len(kept._kept)
    del stateful, fn
    gc.collect()
    assert len(kept._kept) == held - 1  # let go of with its DoFn


def test_a_stateful_dofn_runs_with_its_specs_kept() -> None:
    pipeline = new_pipeline(PipelineOptions(["--runner=FnApiRunner", "--state=none"]))
    with pipeline:
        values = (pipeline | beam.Create([("a", 1), ("a", 2), ("b", 3)])
                  | beam.ParDo(_Buffered()))
        assert_that(values, equal_to([1, 2, 3, 1, 2, 3]))


def test_placement_names_the_runner_and_counts_a_machines_worker_processes() -> None:
    where = placement(PipelineOptions(["--runner=fnapirunner"]))
    assert where == Placement("FnApiRunner", True, 1)
    three = placement(PipelineOptions(["--runner=FnApiRunner", "--direct_num_workers=3",
                                       "--direct_running_mode=multi_processing"]))
    assert three.worker_processes == 3
    every_core = placement(PipelineOptions(["--runner=FnApiRunner", "--direct_num_workers=0",
                                            "--direct_running_mode=multi_processing"]))
    assert every_core.worker_processes == (os.cpu_count() or 1)  # 0 workers: one per core


def test_extraction_processes_are_whole_numbers() -> None:
    counts = [extraction_processes(Placement("FnApiRunner", True, n), 0) for n in (1, 2, 3)]
    assert all(type(count) is int and count >= 1 for count in counts)


REMOTE = Placement("DataflowRunner", False, 0)
FIX = ("use a bucket path (gs://..., s3://...), or --shared-filesystem when every worker"
       " sees this path (an NFS mount, or workers on this machine)")


@pytest.mark.parametrize(("out", "sinks", "state", "shared", "message"), [
    ("/data/out", (), None, False,
     f"--out /data/out is a folder on this machine, which DataflowRunner workers do not see:"
     f" {FIX}"),
    ("gs://b/out", ("jsonl:/data/records",), None, False,
     f"sink jsonl:/data/records is a folder on this machine, which DataflowRunner workers do"
     f" not see: {FIX}"),
    ("gs://b/out", ("parquet:/data/records",), None, False,
     f"sink parquet:/data/records is a folder on this machine, which DataflowRunner workers do"
     f" not see: {FIX}"),
    ("gs://b/out", (), "sqlite:/data/state.db", True,
     "--state sqlite:/data/state.db is a file on this machine, which DataflowRunner workers"
     " cannot share: use --state postgresql://USER@HOST:PORT/DB (or --state none)"),
    ("file:///data/out", (), None, False,
     f"--out file:///data/out is a folder on this machine, which DataflowRunner workers do not"
     f" see: {FIX}"),
    ("/nfs/out", ("jsonl:/nfs/records",), None, True, None),  # every worker sees it
    ("gs://b/out", ("parquet:gs://b/records", "postgresql://u@db/news?table=a",
                    "redis://db:6379/0?stream=s"), "postgresql://u@db/news", False, None),
])
def test_what_remote_workers_could_not_use_is_refused_with_the_fix(
    out: str, sinks: tuple[str, ...], state: str | None, shared: bool, message: str | None,
) -> None:
    parsed = tuple(parse_sink(uri, default_table="articles") for uri in sinks)

    def check(where: Placement) -> None:
        check_paths(where, shared_filesystem=shared, out=out, sinks=parsed, state_uri=state)

    check(Placement("FnApiRunner", True, 1))  # on this machine, everything is reachable
    if message is None:
        check(REMOTE)
        return
    with pytest.raises(PlacementError) as refused:
        check(REMOTE)
    assert str(refused.value) == message


def test_a_job_detaches_only_from_a_runner_whose_workers_run_elsewhere() -> None:
    check_detachable(REMOTE, "run")
    with pytest.raises(PlacementError) as refused:
        check_detachable(Placement("PrismRunner", True, 1), "stream")
    assert str(refused.value) == (
        "stream: --detach needs a runner whose workers run elsewhere; PrismRunner runs the job"
        " in this process, which would end it on exit")
