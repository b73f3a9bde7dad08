"""Fetching is concurrent across hosts, limited per host, spaced out, and robots-aware."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from pipeline.demo.loopback import LoopbackServer, Route
from tests.helpers import ARRIVAL_JITTER, LOOPBACK_HTTP, entry, test_pipeline
from tests.servers import ConcurrencyMeter, delayed
from transforms.core import Entry, Feed
from transforms.feeds import FetchFeeds
from transforms.fetch import FetchPages, HostGate, Politeness
from transforms.fetch.polite import HostLanes, host_key

PAGE = Route(b"<html><body><p>story</p></body></html>", headers={"Content-Type": "text/html"})
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


@pytest.fixture
def sites() -> Iterator[list[tuple[LoopbackServer, ConcurrencyMeter]]]:
    running = []
    for host in HOSTS:
        meter = ConcurrencyMeter()
        server = LoopbackServer({}, host=host).start()
        for n in range(8):
            server.routes[f"/a{n}.html"] = delayed(PAGE, 0.15, meter)
        server.routes["/robots.txt"] = Route(b"User-agent: *\nDisallow: /private/\n",
                                             headers={"Content-Type": "text/plain"})
        running.append((server, meter))
    yield running
    for server, _ in running:
        server.stop()


def _fetch(entries: list[Entry], politeness: Politeness) -> tuple[list, list]:
    with test_pipeline() as p:
        fetched = p | beam.Create(entries) | FetchPages(LOOPBACK_HTTP, politeness)
        pages = fetched.pages | "Urls" >> beam.Map(lambda page: page.entry.link)
        letters = fetched.dead_letters | "Letters" >> beam.Map(lambda d: (d.reason, d.url))
        expected_pages = [e.link for e in entries if "/private/" not in e.link]
        expected_letters = [("robots_disallowed", e.link) for e in entries
                            if "/private/" in e.link]
        assert_that(pages, equal_to(expected_pages), label="Pages")
        assert_that(letters, equal_to(expected_letters), label="DeadLetters")
    return expected_pages, expected_letters


@pytest.mark.slow
def test_hosts_overlap_but_none_exceeds_its_limit(sites) -> None:
    entries = [entry(server.url(f"/a{n}.html")) for server, _ in sites for n in range(8)]
    _fetch(entries, Politeness(per_host=2, workers=16))
    for _, meter in sites:
        assert meter.peak == 2  # the limit is reached, never passed
    # The hosts were served side by side, not one after another: each host's first request
    # came before every other host's last one (as the servers saw them).
    firsts = [min(meter.starts) for _, meter in sites]
    lasts = [max(meter.starts) for _, meter in sites]
    assert max(firsts) < min(lasts)


@pytest.mark.slow
def test_minimum_interval_between_requests_to_one_host(sites) -> None:
    server, meter = sites[0]
    entries = [entry(server.url(f"/a{n}.html")) for n in range(4)]
    _fetch(entries, Politeness(per_host=2, min_interval=0.3))
    starts = sorted(meter.starts)
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    assert len(starts) == 4 and min(gaps) >= 0.3 - ARRIVAL_JITTER


@pytest.mark.slow
def test_robots_txt_disallowed_pages_are_dead_letters_and_never_requested(sites) -> None:
    server, _ = sites[0]
    server.routes["/private/secret.html"] = PAGE
    entries = [entry(server.url("/a0.html")), entry(server.url("/private/secret.html"))]
    _fetch(entries, Politeness())
    assert server.requests["/private/secret.html"] == 0
    assert server.requests["/robots.txt"] == 1


@pytest.mark.slow
def test_robots_can_be_ignored(sites) -> None:
    server, _ = sites[0]
    server.routes["/private/secret.html"] = PAGE
    with test_pipeline() as p:
        fetched = (p | beam.Create([entry(server.url("/private/secret.html"))])
                   | FetchPages(LOOPBACK_HTTP, Politeness(respect_robots=False)))
        assert_that(fetched.pages | beam.Map(lambda page: page.status), equal_to([200]))
    assert server.requests["/robots.txt"] == 0


@pytest.mark.parametrize(("robots", "allowed"), [
    (Route(b"", status=404), True),  # no robots.txt: everything allowed
    (Route(b"", status=503), False),  # robots.txt failing: nothing allowed for now
])
@pytest.mark.slow
def test_robots_txt_status_decides_as_rfc_9309_says(robots: Route, allowed: bool) -> None:
    with LoopbackServer({"/robots.txt": robots, "/a.html": PAGE}) as server:
        settings = dataclasses.replace(LOOPBACK_HTTP, retries=0)
        with test_pipeline() as p:
            fetched = p | beam.Create([entry(server.url("/a.html"))]) | FetchPages(settings)
            reasons = fetched.dead_letters | beam.Map(lambda d: d.reason)
            assert_that(reasons, equal_to([] if allowed else ["robots_disallowed"]))
        assert server.requests["/a.html"] == (1 if allowed else 0)


def _gate_on_a_fake_clock(interval: float, start: float) -> tuple[HostGate, list, list]:
    """A gate whose clock only moves when it sleeps (or a test moves `now[0]`): the gate, the
    clock's `now` and what it slept."""
    now = [start]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    return HostGate(interval, clock=lambda: now[0], sleep=sleep), now, slept


def test_host_gate_spaces_request_starts() -> None:
    gate, _, slept = _gate_on_a_fake_clock(0.5, start=0.0)
    for _ in range(3):
        gate.wait_turn()
    assert slept == [0.5, 0.5]


def test_a_host_gate_spaces_from_a_start_made_elsewhere() -> None:
    # A lane process's last request to the host, at 10.0; the worker's own gate, at 10.2.
    gate, _, slept = _gate_on_a_fake_clock(0.5, start=10.2)
    assert gate.last_start is None
    gate.note_start(10.0)
    gate.note_start(9.0)  # an older start moves nothing
    assert gate.last_start == 10.0
    gate.wait_turn()
    assert slept == [pytest.approx(0.3)] and gate.last_start == pytest.approx(10.5)


def test_the_lanes_keep_a_start_made_elsewhere_only_for_a_spaced_host() -> None:
    unspaced, spaced = HostLanes(Politeness()), HostLanes(Politeness(min_interval=0.5))
    try:
        for lanes in (unspaced, spaced):
            lanes.note_start("127.0.0.2", 100.0)
            lanes.note_start("127.0.0.3", None)  # nothing to space from
        assert unspaced.last_start("127.0.0.2") is None  # nothing kept for it
        assert spaced.last_start("127.0.0.2") == 100.0
        assert spaced.last_start("127.0.0.3") is None
    finally:
        unspaced.shutdown()
        spaced.shutdown()


@pytest.mark.slow
def test_feeds_on_one_host_share_its_limit() -> None:
    meter = ConcurrencyMeter()
    rss = Route(b"<rss version='2.0'><channel><title>t</title><item><link>http://127.0.0.1/a"
                b"</link></item></channel></rss>", headers={"Content-Type": "application/rss+xml"})
    with LoopbackServer({f"/feed{n}.xml": delayed(rss, 0.1, meter) for n in range(6)}) as server:
        feeds = [Feed(server.url(f"/feed{n}.xml"), index=n) for n in range(6)]
        with test_pipeline() as p:
            fetched = p | beam.Create(feeds) | FetchFeeds(LOOPBACK_HTTP, Politeness(per_host=2))
            assert_that(fetched.feeds | beam.combiners.Count.Globally(), equal_to([6]))
    assert meter.peak == 2


@pytest.mark.slow
def test_per_host_limit_holds_across_worker_processes(sites) -> None:
    entries = [entry(server.url(f"/a{n}.html")) for server, _ in sites for n in range(8)]
    options = PipelineOptions(["--runner=FnApiRunner", "--direct_num_workers=2",
                               "--direct_running_mode=multi_processing"])
    with beam.Pipeline(options=options) as p:
        fetched = p | beam.Create(entries) | FetchPages(LOOPBACK_HTTP, Politeness(per_host=2))
        fetched.pages | beam.combiners.Count.Globally()
    for server, meter in sites:
        assert sum(n for path, n in server.requests.items() if path.startswith("/a")) == 8
        assert meter.peak <= 2


def test_a_hosts_limit_holds_across_everyone_fetching_in_a_process() -> None:
    # Two polls' pages for one host in flight at once: two callers (DoFn instances, bundles)
    # submit to the process's lanes at the same time, and the host still sees at most 2.
    lanes = HostLanes(Politeness(per_host=2, workers=16))
    lock, active, peak = threading.Lock(), [0], [0]

    def work(gate: HostGate) -> None:
        gate.wait_turn()
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1

    def caller() -> list:
        return [lanes.submit("news.example", work) for _ in range(10)]

    try:
        with ThreadPoolExecutor(2) as callers:
            submitted = [future for batch in callers.map(lambda _: caller(), range(2))
                         for future in batch]
        for future in submitted:
            future.result(timeout=10)
    finally:
        lanes.shutdown()
    assert peak[0] == 2


def test_a_crawl_delay_learnt_from_robots_txt_counts_from_the_robots_request() -> None:
    gate, now, slept = _gate_on_a_fake_clock(0.0, start=10.0)
    gate.wait_turn()  # robots.txt, at 10.0
    now[0] += 0.5  # its answer came back
    gate.set_interval(2.0)  # Crawl-delay: 2
    gate.wait_turn()  # the first page: 2 s after robots.txt started
    gate.set_interval(1.0)  # a shorter delay never shortens the spacing
    gate.wait_turn()
    assert slept == [1.5, 2.0]


@pytest.mark.parametrize(("settings", "valid"), [
    ({"per_host": 1, "workers": 1, "min_interval": 0.0}, True),
    ({"per_host": 0}, False), ({"workers": 0}, False), ({"min_interval": -0.1}, False),
])
def test_politeness_settings_are_checked(settings: dict, valid: bool) -> None:
    if valid:
        assert Politeness(**settings).per_host == settings["per_host"]
    else:
        with pytest.raises(ValueError, match=r"invalid politeness settings: Politeness\("):
            Politeness(**settings)


@pytest.mark.parametrize(("url", "host"), [
    ("https://News.Example:8080/a", "news.example"),
    ("http://[::1]:8080/a", "::1"),
    ("/relative/path", ""),
    ("http://[::1/a", ""),  # not a URL at all
])
def test_the_host_a_urls_requests_count_against(url: str, host: str) -> None:
    assert host_key(url) == host


def _meter_work(meter: ConcurrencyMeter, names: list[str], seconds: float = 0.02):  # noqa: ANN202
    def work(gate: HostGate) -> None:
        gate.wait_turn()
        names.append(threading.current_thread().name)
        with meter:
            time.sleep(seconds)
    return work


def test_a_hosts_lanes_come_and_go_without_ever_passing_its_limit() -> None:
    lanes = HostLanes(Politeness(per_host=2, workers=8))
    meter, names = ConcurrencyMeter(), []
    try:
        for _ in range(4):  # rounds: each host's lanes end, and new ones start
            futures = [lanes.submit("news.example", _meter_work(meter, names)) for _ in range(6)]
            for future in futures:
                future.result(timeout=10)
        assert meter.peak == 2 and len(names) == 24
        assert all(name.startswith("newsbeam-fetch") for name in names)
        assert lanes._hosts == {}  # an unspaced host is forgotten once its work is done
    finally:
        lanes.shutdown()


def test_all_hosts_together_get_at_most_the_workers() -> None:
    lanes = HostLanes(Politeness(per_host=2, workers=1))
    meter, names = ConcurrencyMeter(), []
    try:
        futures = [lanes.submit(host, _meter_work(meter, names)) for host in ("a", "b", "c")]
        for future in futures:
            future.result(timeout=10)
    finally:
        lanes.shutdown()
    assert meter.peak == 1


def test_hosts_take_turns_when_their_lanes_outnumber_the_threads() -> None:
    # Two threads, four hosts of three requests each: a host's lane gives its thread up after
    # each request, so no host waits for the first ones to finish all theirs.
    lanes = HostLanes(Politeness(per_host=1, workers=2))
    meter, started = ConcurrencyMeter(), []

    def request(host: str, n: int):  # noqa: ANN202
        def work(gate: HostGate) -> None:
            gate.wait_turn()
            started.append((host, n))
            with meter:
                time.sleep(0.01)
        return work

    hosts = ("a", "b", "c", "d")
    try:
        futures = [lanes.submit_all(host, [request(host, n) for n in range(3)])
                   for host in hosts]
        for future in futures:
            future.result(timeout=10)
    finally:
        lanes.shutdown()
    first = {host: started.index((host, 0)) for host in hosts}
    last = {host: started.index((host, 2)) for host in hosts}
    assert max(first.values()) < min(last.values())
    assert meter.peak == 2 and len(started) == 12
    assert [n for host, n in started if host == "a"] == [0, 1, 2]  # a host's own in order


def test_a_spaced_host_keeps_its_spacing_between_bursts_of_work() -> None:
    lanes = HostLanes(Politeness(per_host=2, min_interval=0.3))
    meter, names = ConcurrencyMeter(), []
    try:
        lanes.submit("news.example", _meter_work(meter, names, 0)).result(timeout=10)
        lanes.submit("news.example", _meter_work(meter, names, 0)).result(timeout=10)
    finally:
        lanes.shutdown()
    assert meter.starts[1] - meter.starts[0] >= 0.3 - 0.01  # the gate's own clock: no network


def test_work_that_fails_reports_its_error_through_its_future() -> None:
    lanes = HostLanes(Politeness())

    def broken(gate: HostGate) -> None:
        raise OSError("disk full")

    try:
        future = lanes.submit("news.example", broken)
        assert isinstance(future.exception(timeout=10), OSError)
        assert str(future.exception()) == "disk full"
        lanes.submit("news.example", lambda gate: None).result(timeout=10)  # the host goes on
    finally:
        lanes.shutdown()


def test_work_submitted_together_is_done_once_all_of_it_ran_within_the_hosts_limit() -> None:
    lanes = HostLanes(Politeness(per_host=2, workers=8))
    meter, names = ConcurrencyMeter(), []
    ran: list[int] = []

    def numbered(n: int):  # noqa: ANN202
        work = _meter_work(meter, names)

        def run(gate: HostGate) -> None:
            work(gate)
            ran.append(n)
            if n == 3:
                raise OSError("the third failed")
        return run

    try:
        together = lanes.submit_all("news.example", [numbered(n) for n in range(7)])
        error = together.exception(timeout=10)
        assert sorted(ran) == list(range(7))  # done only once every one ran, failed or not
        assert isinstance(error, OSError) and str(error) == "the third failed"
        assert meter.peak == 2  # seven at once still go two at a time
        assert lanes.submit_all("news.example", []).result(timeout=1) is None
    finally:
        lanes.shutdown()


def test_shutdown_lets_running_work_end_and_drops_lanes_not_started() -> None:
    lanes = HostLanes(Politeness(per_host=1, workers=1))
    started, finished, later = threading.Event(), threading.Event(), threading.Event()

    def running(gate: HostGate) -> None:
        started.set()
        time.sleep(0.2)
        finished.set()

    lanes.submit("a", running)
    lanes.submit("b", lambda gate: later.set())  # its lane waits for the only worker
    assert started.wait(timeout=10)
    lanes.shutdown()
    assert finished.is_set()  # shutdown waited for it
    assert not later.is_set()  # the queued lane was cancelled
