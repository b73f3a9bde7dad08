"""A batch run polls its feeds in lane processes: what comes back is what polling in the worker
gives, each host's limits hold, and a lane process that dies costs time, never a feed."""

from __future__ import annotations

import itertools
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipeline.demo.loopback import LoopbackServer, Route
from tests.helpers import ARRIVAL_JITTER, LOOPBACK_HTTP, eventually, test_pipeline
from tests.servers import ConcurrencyMeter, delayed
from transforms.core import POLL_IN_LANE, Feed, FetchedFeed, Validators
from transforms.feeds import FetchFeeds
from transforms.feeds.fetch import _FetchFeedFn
from transforms.fetch import (
    FetchError,
    HostDone,
    HostGate,
    HttpClient,
    LaneProcesses,
    LaneProcessLost,
    MiB,
    Outcome,
    PoliteFetchFn,
    Politeness,
)
from transforms.fetch.lane_processes import RESTARTS

RSS = Route(b"<rss version='2.0'><channel><title>t</title><item><link>http://127.0.0.1/a"
            b"</link></item></channel></rss>",
            headers={"Content-Type": "application/rss+xml", "ETag": '"v1"'})
NOT_MODIFIED = Route(b"", status=304)
HOSTS = ("127.0.0.2", "127.0.0.4")  # one for each of two lane processes (the least busy)
# A test's own work for lane processes, by name, as the lane processes resolve it.
DIE = "tests.test_lane_processes:die_in_lane"
SLEEP = "tests.test_lane_processes:sleep_in_lane"
UNPICKLABLE = "tests.test_lane_processes:unpicklable_in_lane"
CONNECT = "tests.test_lane_processes:connect_in_lane"
OSERROR = "tests.test_lane_processes:oserror_in_lane"


def die_in_lane(item: object, gate: HostGate, client: HttpClient, context: object) -> None:
    os._exit(3)  # a lane process killed (out of memory, a native crash) mid-work


def sleep_in_lane(item: float, gate: HostGate, client: HttpClient,
                  context: object) -> tuple[int, float, float]:
    """Its turn taken, `item` seconds of work: the process, and when the work began and
    ended (time.monotonic, the machine's)."""
    gate.wait_turn()
    began = time.monotonic()
    time.sleep(item)
    return os.getpid(), began, time.monotonic()


class _RefusesToPickle:
    def __reduce__(self) -> tuple:
        raise OSError("not this one")  # an OSError that is not the pipe's


def oserror_in_lane(item: object, gate: HostGate, client: HttpClient,
                    context: object) -> object:
    return _RefusesToPickle()


def connect_in_lane(item: object, gate: HostGate, client: HttpClient, context: object) -> str:
    """What a socket's connect is in the lane process (not called: nothing leaves loopback)."""
    return socket.socket.connect.__qualname__


def unpicklable_in_lane(item: object, gate: HostGate, client: HttpClient,
                        context: object) -> object:
    return threading.Lock()  # an answer that cannot go back through the pipe


class Ran:
    """A host's work given to lane processes: its outcomes as they come back, by index."""

    def __init__(self, lanes: LaneProcesses, host: str, target: str, items: list) -> None:
        self.outcomes: dict[int, Outcome] = {}
        self.future = lanes.submit_all(host, target, items, self.outcomes.__setitem__)

    def done(self) -> HostDone:
        return self.future.result(timeout=60)

    def values(self) -> list:
        self.done()
        return [self.outcomes[index].result() for index in sorted(self.outcomes)]

    def pid(self) -> int:
        return self.values()[0][0]


@pytest.fixture
def two_hosts() -> Iterator[list[tuple[LoopbackServer, ConcurrencyMeter]]]:
    running = []
    for host in HOSTS:
        meter = ConcurrencyMeter()
        server = LoopbackServer({}, host=host).start()
        for n in range(6):
            server.routes[f"/feed{n}.xml"] = delayed(RSS, 0.1, meter)
        server.routes["/known.xml"] = delayed(NOT_MODIFIED, 0.1, meter)
        server.routes["/text.xml"] = Route(b"<html></html>",
                                           headers={"Content-Type": "image/png"})
        running.append((server, meter))
    yield running
    for server, _ in running:
        server.stop()


def _feeds(sites: list[tuple[LoopbackServer, ConcurrencyMeter]]) -> list[Feed]:
    feeds = []
    for server, _ in sites:
        feeds += [Feed(server.url(f"/feed{n}.xml")) for n in range(6)]
        feeds += [Feed(server.url("/known.xml"), validators=Validators('"v1"', None)),
                  Feed(server.url("/gone.xml")), Feed(server.url("/text.xml"))]
    return [Feed(feed.url, index=n, validators=feed.validators) for n, feed in enumerate(feeds)]


def _polled(feeds: list[Feed], processes: int) -> None:
    """FetchFeeds' outputs, checked against what each kind of feed should give."""
    fetched_urls = [feed.url for feed in feeds if "/feed" in feed.url]
    with test_pipeline() as pipeline:
        fetched = pipeline | beam.Create(feeds) | FetchFeeds(
            LOOPBACK_HTTP, Politeness(per_host=2), processes=processes)
        assert_that(fetched.feeds | beam.Map(lambda f: (f.feed.url, f.status, f.body)),
                    equal_to([(url, 200, RSS.body) for url in fetched_urls]), label="Feeds")
        assert_that(fetched.validators,
                    equal_to([(url, Validators('"v1"', None)) for url in fetched_urls]),
                    label="Validators")
        letters = fetched.dead_letters | beam.Map(lambda d: (d.url, d.reason, d.error_type))
        assert_that(letters, equal_to(
            [(feed.url, "http_status", "HTTP 404") for feed in feeds if "gone" in feed.url]
            + [(feed.url, "bad_content_type", "HTTP 200") for feed in feeds
               if "text" in feed.url]), label="Letters")
        counts = fetched.tallies | beam.Map(lambda t: (t.name, t.n)) | beam.CombinePerKey(sum)
        assert_that(counts, equal_to([("feeds.configured", len(feeds)),
                                      ("feeds.not_modified", len(HOSTS))]), label="Tallies")
        polls = fetched.polls | beam.Map(lambda o: (o.feed_url, o.outcome, o.status))
        assert_that(polls, equal_to(
            [(feed.url, "not_modified", 304) for feed in feeds if "known" in feed.url]
            + [(feed.url, "failed", 404) for feed in feeds if "gone" in feed.url]
            + [(feed.url, "failed", 200) for feed in feeds if "text" in feed.url]),
            label="Polls")


@pytest.mark.slow  # starts lane processes
@pytest.mark.parametrize("processes", [0, 2])
def test_feeds_polled_in_lane_processes_give_what_polls_in_the_worker_give(
    two_hosts, processes: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    handed: list[str] = []
    submit_all = LaneProcesses.submit_all

    def spied(self: LaneProcesses, host: str, *args: object) -> Future:
        handed.append(host)
        return submit_all(self, host, *args)  # type: ignore[arg-type]

    done_here: list[str] = []
    lane_work = PoliteFetchFn.lane_work

    def counted(self: PoliteFetchFn, item: Feed, place: object) -> object:
        done_here.append(item.url)
        return lane_work(self, item, place)  # type: ignore[arg-type]

    monkeypatch.setattr(LaneProcesses, "submit_all", spied)
    monkeypatch.setattr(PoliteFetchFn, "lane_work", counted)
    feeds = _feeds(two_hosts)
    _polled(feeds, processes)
    assert sorted(handed) == (sorted(HOSTS) if processes else [])
    assert len(done_here) == (0 if processes else len(feeds))  # none fell back
    for server, meter in two_hosts:
        assert meter.peak == 2  # each host's limit reached, never passed
        assert sum(server.requests.values()) == 9  # each feed asked for once


@pytest.mark.slow  # starts lane processes
def test_a_lost_lane_process_leaves_its_hosts_feeds_to_the_worker(
    two_hosts, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def lost(self: LaneProcesses, host: str, *args: object) -> Future:
        future: Future = Future()
        future.set_exception(LaneProcessLost("killed"))
        return future

    monkeypatch.setattr(LaneProcesses, "submit_all", lost)
    _polled(_feeds(two_hosts), processes=2)
    for _, meter in two_hosts:
        assert meter.peak == 2


@pytest.mark.slow  # starts lane processes
def test_a_lane_process_that_dies_fails_its_work_and_the_next_work_gets_a_fresh_one() -> None:
    lanes = LaneProcesses(LOOPBACK_HTTP, Politeness(per_host=2), 1, (DIE, SLEEP))
    try:
        first = Ran(lanes, "127.0.0.2", SLEEP, [0.0]).pid()
        with pytest.raises(LaneProcessLost, match="exited"):
            Ran(lanes, "127.0.0.2", DIE, [None]).done()
        second = Ran(lanes, "127.0.0.2", SLEEP, [0.0]).pid()
        assert first != second  # a new process
        assert lanes.pids() == [second]
    finally:
        lanes.close()


@pytest.mark.slow  # starts lane processes
def test_a_hosts_work_goes_to_one_lane_process_within_its_limits() -> None:
    lanes = LaneProcesses(LOOPBACK_HTTP, Politeness(per_host=2), 2, (SLEEP,))
    try:
        answer = Ran(lanes, "127.0.0.2", SLEEP, [0.2] * 5)
        ran = answer.values()
        other = Ran(lanes, "127.0.0.4", SLEEP, [0.0]).pid()
    finally:
        lanes.close()
    assert len({pid for pid, _, _ in ran}) == 1  # one process
    assert other != ran[0][0]  # another host, the other process
    moments = sorted([(began, 1) for _, began, _ in ran] + [(ended, -1) for *_, ended in ran])
    at_once = [sum(step for _, step in moments[:n + 1]) for n in range(len(moments))]
    assert max(at_once) == 2  # two at a time, never three
    assert answer.done() == HostDone(None)  # unspaced: nothing for the caller to space from


@pytest.mark.slow  # starts lane processes
def test_each_outcome_comes_back_as_it_is_there_not_with_its_hosts_last() -> None:
    lanes = LaneProcesses(LOOPBACK_HTTP, Politeness(per_host=1), 1, (SLEEP,))
    try:
        answer = Ran(lanes, "127.0.0.2", SLEEP, [0.0, 2.0])
        assert eventually(lambda: 0 in answer.outcomes, timeout=1.5)
        assert 1 not in answer.outcomes and not answer.future.done()
        assert len(answer.values()) == 2
    finally:
        lanes.close()


@pytest.mark.slow  # starts lane processes
def test_a_new_host_goes_to_the_lane_process_with_least_work_and_stays_there() -> None:
    lanes = LaneProcesses(LOOPBACK_HTTP, Politeness(per_host=2), 2, (SLEEP,))
    try:
        busy = Ran(lanes, "127.0.0.2", SLEEP, [0.5] * 4)
        idle = Ran(lanes, "127.0.0.4", SLEEP, [0.0]).pid()
        # 127.0.0.3 hashes (crc32) to 127.0.0.2's process: it goes to the idle one.
        new = Ran(lanes, "127.0.0.3", SLEEP, [0.0]).pid()
        again = Ran(lanes, "127.0.0.2", SLEEP, [0.0]).pid()
        first = busy.pid()
        # Nothing outstanding now: the next new host goes where fewer hosts are.
        later = Ran(lanes, "127.0.0.5", SLEEP, [0.0]).pid()
    finally:
        lanes.close()
    assert new == idle != first
    assert again == first  # a host's work stays where its limits are kept
    assert later == first


@pytest.mark.slow  # starts lane processes
def test_a_spaced_hosts_last_start_comes_back_for_the_workers_own_lanes() -> None:
    lanes = LaneProcesses(LOOPBACK_HTTP, Politeness(per_host=1, min_interval=0.3), 1,
                          (SLEEP,))
    try:
        before = time.monotonic()
        answer = Ran(lanes, "127.0.0.2", SLEEP, [0.0, 0.0]).done()
    finally:
        lanes.close()
    assert answer.last_start is not None and answer.last_start >= before + 0.3
    here = HostGate(0.3)
    here.note_start(answer.last_start)
    waited = here.wait_turn()
    assert time.monotonic() >= answer.last_start + 0.3 and waited > 0


def test_an_error_in_a_lane_process_comes_back_whole() -> None:
    error = FetchError("http_status", "HTTP 503", url="http://127.0.0.2/f", status=503,
                       retry_after=30.0)
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), str(again), again.reason, again.url, again.status,
            again.retry_after) == (FetchError, "HTTP 503", "http_status",
                                   "http://127.0.0.2/f", 503, 30.0)


def test_lane_processes_starting_the_fork_server_have_it_import_what_workers_run() -> None:
    # Whichever kind of process starts it, the fork server imports what both kinds run: it
    # starts once, and a worker process would otherwise import the extraction stack itself.
    program = ("from tests.helpers import LOOPBACK_HTTP\n"
               "from transforms.core import POLL_IN_LANE, isolation, workers\n"
               "from transforms.fetch import LaneProcesses, Politeness\n"
               "LaneProcesses(LOOPBACK_HTTP, Politeness(), 1, (POLL_IN_LANE,))\n"
               "print(set(workers.FORK_SERVER_IMPORTS) <= set(isolation._PRELOADED))\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert (done.returncode, done.stdout.strip()) == (0, "True"), done.stderr


@pytest.mark.slow  # starts lane processes
def test_lane_processes_run_with_the_suites_loopback_guard() -> None:
    lanes = LaneProcesses(LOOPBACK_HTTP, Politeness(), 1, (CONNECT,))
    try:
        assert Ran(lanes, "127.0.0.2", CONNECT, [None]).values() == [
            "install.<locals>.connect"]  # tests/loopback_guard.py's
    finally:
        lanes.close()


@pytest.mark.slow  # starts lane processes
def test_only_named_work_runs_in_lane_processes() -> None:
    lanes = LaneProcesses(LOOPBACK_HTTP, Politeness(), 1, (POLL_IN_LANE,))
    with pytest.raises(ValueError, match="not one of"):
        Ran(lanes, "127.0.0.2", SLEEP, [0.0])
    lanes.close()


@pytest.mark.slow  # starts lane processes
def test_the_workers_own_lanes_space_a_host_from_its_last_poll_in_a_lane_process(
    two_hosts,
) -> None:
    # Its pages come next, from the worker's lanes: spaced from the host's last poll.
    server, _ = two_hosts[0]
    fn = _FetchFeedFn(LOOPBACK_HTTP, MiB, Politeness(min_interval=0.2), processes=1)
    fn.setup()
    try:
        fn.start_bundle()
        before = time.monotonic()
        outputs = [*fn.process((HOSTS[0], [Feed(server.url("/feed0.xml"))]), window=None,
                               timestamp=0), *fn.finish_bundle()]
        last = fn.resources().lanes.last_start(HOSTS[0])
    finally:
        fn.teardown()
    assert any(getattr(output, "value", None) is not None for output in outputs)
    assert last is not None and last >= before


@pytest.mark.slow  # starts lane processes
def test_lane_processes_that_keep_dying_leave_the_work_to_the_caller() -> None:
    lanes = LaneProcesses(LOOPBACK_HTTP, Politeness(), 1, (DIE, SLEEP))
    try:
        for _ in range(RESTARTS + 1):  # the first process, and each started again
            with pytest.raises(LaneProcessLost, match="exited"):
                Ran(lanes, "127.0.0.2", DIE, [None]).done()
        with pytest.raises(LaneProcessLost, match="were lost"):  # none started again
            Ran(lanes, "127.0.0.2", SLEEP, [0.0]).done()
        assert lanes.pids() == []
    finally:
        lanes.close()


@pytest.mark.slow  # starts lane processes
def test_work_that_cannot_come_back_is_the_callers_not_a_wait_forever() -> None:
    lanes = LaneProcesses(LOOPBACK_HTTP, Politeness(), 1, (UNPICKLABLE, OSERROR, SLEEP))
    try:
        unpicklable = Ran(lanes, "127.0.0.2", UNPICKLABLE, [None, None])
        assert unpicklable.done().unsent == (0, 1) and not unpicklable.outcomes
        refused = Ran(lanes, "127.0.0.2", OSERROR, [None])
        assert refused.done().unsent == (0,)
        assert Ran(lanes, "127.0.0.2", SLEEP, [0.0]).values()  # still there
    finally:
        lanes.close()


def _polled_with_the_lane_process_killed(
    server: LoopbackServer, feeds: list[Feed], politeness: Politeness,
    killed_when: Callable[[], bool],
) -> list[str]:
    """The URLs of the feeds FetchFeeds' DoFn polled in full, its one lane process killed
    once `killed_when()` (the rest polled by the worker)."""
    fn = _FetchFeedFn(LOOPBACK_HTTP, MiB, politeness, processes=1)
    fn.setup()
    try:
        fn.start_bundle()
        outputs = list(fn.process((HOSTS[0], feeds), window=None, timestamp=0))
        assert eventually(killed_when)
        lanes = fn._lane_processes
        assert lanes is not None
        for pid in lanes.pids():
            os.kill(pid, signal.SIGKILL)
        outputs += fn.finish_bundle()
    finally:
        fn.teardown()
    return [output.value.feed.url for output in outputs
            if isinstance(getattr(output, "value", None), FetchedFeed)]


@pytest.mark.slow  # starts lane processes
def test_a_lane_process_killed_mid_host_costs_time_not_a_feed(two_hosts) -> None:
    server, _ = two_hosts[0]
    feeds = [Feed(server.url(f"/feed{n}.xml"), index=n) for n in range(6)]
    # Killed with the fourth feed's poll begun: the first two (at least) came back.
    polled = _polled_with_the_lane_process_killed(
        server, feeds, Politeness(per_host=1), lambda: sum(server.requests.values()) >= 4)
    assert sorted(polled) == sorted(feed.url for feed in feeds)  # each once, none lost
    # Asked for again: only those whose answers had not come back.
    assert sum(server.requests.values()) <= len(feeds) + 2


@pytest.mark.slow  # starts lane processes
def test_after_a_lost_lane_process_the_worker_keeps_the_hosts_spacing(two_hosts) -> None:
    server, meter = two_hosts[0]
    feeds = [Feed(server.url(f"/feed{n}.xml"), index=n) for n in range(6)]
    # Killed with its third request in flight: the worker polls the rest.
    polled = _polled_with_the_lane_process_killed(
        server, feeds, Politeness(per_host=1, min_interval=0.3),
        lambda: len(meter.starts) >= 3)
    assert sorted(polled) == sorted(feed.url for feed in feeds)
    gaps = [later - earlier for earlier, later in itertools.pairwise(sorted(meter.starts))]
    assert min(gaps) >= 0.3 - ARRIVAL_JITTER  # spaced across the hand-over too


_FORK_SERVER_PROBE = """
import os, sys
from apache_beam.options.pipeline_options import PipelineOptions
from pipeline.job.setup import launched, set_up
from transforms.topics import load_taxonomy
job = set_up(PipelineOptions(["--state=none", *sys.argv[2:]]), "run", load_taxonomy(), sys.argv[1])
with launched(job):
    children = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            command = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if int(stat[1]) == os.getpid() and b"multiprocessing.forkserver" in command:
            children.append(pid)
    print(len(children))
"""


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize(("flags", "started"), [
    ([], 1),  # the in-process runner: its workers fork from this process's fork server
    (["--direct_running_mode=multi_processing", "--direct_num_workers=2"], 0),  # their own
])
def test_a_job_whose_workers_run_in_its_process_starts_their_fork_server_at_launch(
    tmp_path: Path, flags: list[str], started: int,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FORK_SERVER_PROBE, str(tmp_path), "--runner=FnApiRunner",
         *flags], capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).resolve().parents[1])
    assert (done.returncode, done.stdout.strip()) == (0, str(started)), done.stderr
