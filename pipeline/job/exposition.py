"""Live metrics of a run or a stream for Prometheus (`--metrics-port`), from the runner's own
metrics (PipelineResult.metrics()), so the numbers are those the runner counted, on any runner.

The launching process serves them over HTTP while it waits for its job: a runner that reports
metrics while the job runs (Prism, Flink, Dataflow through their job services) shows them live;
Beam's in-process FnApiRunner reports a run's only once it has ended, so there each scrape shows
the runs finished so far (`run --every` adds them up). Names follow Prometheus' conventions: a
`newsbeam_` prefix, `_total` counters, seconds, and labels with bounded values (stages, reasons,
sink families, topics: never a URL).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.runner import PipelineResult
from prometheus_client import start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry

from transforms.core import NAMESPACE

# Beam counters (transforms/core/metrics.py) that map one to one.
_PLAIN = {
    "feeds.configured": ("feeds_polled", "Feed polls made."),
    "feeds.fetched": ("feeds_fetched", "Feed polls answered in full and parsed."),
    "feeds.not_modified": ("feeds_not_modified", "Feed polls answered 304 Not Modified."),
    "pages.fetched": ("pages_fetched", "Article pages fetched."),
    "robots.fetched": ("robots_fetched", "robots.txt files fetched."),
    "records.output": ("records", "Records built (each then goes to every sink)."),
    "ticks.stale": ("stream_ticks_stale", "Stream ticks dropped as overtaken by a later one."),
    "state.remembered": ("stream_ids_remembered", "Article ids taken into keyed state."),
    "state.forgotten": ("stream_ids_forgotten", "Article ids let go from keyed state."),
}
_ENTRY_OUTCOMES = {"entries.parsed": "parsed", "entries.duplicate": "duplicate",
                   "entries.seen_before": "seen_before", "entries.dead_letter": "dead_letter"}
_DISTRIBUTIONS = {
    "extraction.ms": ("extraction_seconds", "Time to extract an article page, in its process."),
    "records.poll_to_record_ms": (
        "poll_to_record_seconds",
        "Time from the poll that found an entry to its record (then written as its bundle"
        " ends)."),
}


@dataclasses.dataclass(frozen=True)
class Distribution:
    """A Beam distribution's totals."""

    count: int
    sum: int


def families(counters: Mapping[str, int], distributions: Mapping[str, Distribution],
             gauges: Mapping[str, float] | None = None) -> list[Metric]:
    """Prometheus metric families for newsbeam's Beam counters and distributions (by their
    names in transforms.core.metrics), and any `gauges` (name, without prefix -> value)."""
    out: list[Metric] = []

    def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> CounterMetricFamily:
        family = CounterMetricFamily(f"newsbeam_{name}", doc, labels=list(labels))
        out.append(family)
        return family

    for beam_name, (name, doc) in _PLAIN.items():
        counter(name, doc).add_metric([], counters.get(beam_name, 0))
    entries = counter("entries", "Feed entries, by what became of them.", ("outcome",))
    for beam_name, outcome in _ENTRY_OUTCOMES.items():
        entries.add_metric([outcome], counters.get(beam_name, 0))
    failed = counter("feeds_failed", "Feed polls that lost the feed, by reason.", ("reason",))
    letters = counter("dead_letters", "Dead letters, by stage and reason.", ("stage", "reason"))
    written = counter("records_written", "Records a sink took, by sink.", ("sink",))
    methods = counter("extractions", "Articles extracted, by method.", ("method",))
    topics = counter("topic_articles", "Records tagged with a topic, by topic and relevance.",
                     ("topic", "relevance"))
    for beam_name, value in sorted(counters.items()):
        kind, _, rest = beam_name.partition(".")
        if kind == "dead_letters":
            stage, _, reason = rest.partition(".")
            letters.add_metric([stage, reason], value)
        elif kind == "feeds" and rest.startswith("failed."):
            failed.add_metric([rest.removeprefix("failed.")], value)
        elif kind == "written":
            written.add_metric([rest], value)
        elif kind == "extraction":
            methods.add_metric([rest], value)
        elif kind == "topics":
            topic, _, relevance = rest.rpartition(".")
            topics.add_metric([topic, relevance], value)
    for beam_name, (name, doc) in _DISTRIBUTIONS.items():
        found = distributions.get(beam_name, Distribution(0, 0))
        summary = SummaryMetricFamily(f"newsbeam_{name}", doc)
        summary.add_metric([], count_value=found.count, sum_value=found.sum / 1000)
        out.append(summary)
    for gauge_name, level in sorted((gauges or {}).items()):
        gauge = GaugeMetricFamily(f"newsbeam_{gauge_name}", _GAUGES.get(gauge_name, gauge_name))
        gauge.add_metric([], level)
        out.append(gauge)
    return out


_GAUGES = {
    "last_window_end_timestamp_seconds": "End of the stream's last window whose summary was"
    " written (Unix time).",
    "seconds_since_window_closed": "Seconds since the stream's last window closed.",
    "runs_finished": "Runs this process has finished.",
}


def runner_metrics(result: PipelineResult) -> tuple[dict[str, int], dict[str, Distribution]]:
    """newsbeam's counters and distributions as the runner reports them now: committed values
    where the runner has them (work that succeeded), else attempted ones."""
    found = live_metrics(result).query(MetricsFilter().with_namespace(NAMESPACE))
    counters = {item.key.metric.name: int(_value(item)) for item in found["counters"]}
    distributions = {}
    for item in found["distributions"]:
        value = _value(item)
        distributions[item.key.metric.name] = Distribution(int(value.count), int(value.sum))
    return counters, distributions


def _value(item: Any) -> Any:
    return item.committed if item.committed is not None else item.attempted


def live_metrics(result: PipelineResult) -> Any:
    """`result.metrics()`, as of now. Beam 2.77's portable PipelineResult (Prism, Flink, Spark,
    job services: runners/portability/portable_runner.py) keeps the first answer its job
    service gave and returns it ever after, so a running job's metrics would stand still: its
    cached answer (`_metrics`) is dropped first. Pinned by tests/test_metrics.py on Prism."""
    if hasattr(result, "_metrics") and hasattr(result, "_job_service"):
        result._metrics = None
    return result.metrics()


class RunnerCollector(Collector):
    """Collects, on each scrape, the metrics of the job running now plus those of the jobs
    this process finished before it (a `run --every`)."""

    def __init__(self, windows: Callable[[], float | None] | None = None) -> None:
        self._lock = threading.Lock()
        self._running: PipelineResult | None = None
        self._done_counters: Counter[str] = Counter()
        self._done_distributions: dict[str, Distribution] = {}
        self._runs = 0
        self.windows = windows  # the end of a stream's last closed window, if it has one

    def watch(self, result: PipelineResult) -> None:
        """Report this job's metrics from now on."""
        with self._lock:
            self._running = result

    def abandoned(self) -> None:
        """The job failed and committed nothing: its counts are not kept (its re-run counts
        its work again)."""
        with self._lock:
            self._running = None

    def finished(self, result: PipelineResult) -> None:
        """The job ended: keep its final metrics with those of the jobs before it."""
        counters, distributions = runner_metrics(result)
        with self._lock:
            self._done_counters.update(counters)
            for name, value in distributions.items():
                before = self._done_distributions.get(name, Distribution(0, 0))
                self._done_distributions[name] = Distribution(before.count + value.count,
                                                              before.sum + value.sum)
            self._running = None
            self._runs += 1

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            running, runs = self._running, self._runs
            counters = Counter(self._done_counters)
            distributions = dict(self._done_distributions)
        if running is not None:
            try:
                live, live_distributions = runner_metrics(running)
            except Exception:  # not answering yet (starting) or any more: the totals so far
                live, live_distributions = {}, {}
            counters.update(live)
            for name, value in live_distributions.items():
                before = distributions.get(name, Distribution(0, 0))
                distributions[name] = Distribution(before.count + value.count,
                                                   before.sum + value.sum)
        gauges: dict[str, float] = {"runs_finished": runs}
        window_end = self.windows() if self.windows is not None else None
        if window_end is not None:
            gauges["last_window_end_timestamp_seconds"] = window_end
            gauges["seconds_since_window_closed"] = max(0.0, time.time() - window_end)
        yield from families(counters, distributions, gauges)


_served: dict[tuple[str, int], RunnerCollector] = {}


def metrics_collector(host: str, port: int) -> RunnerCollector:
    """The collector served at host:port by this process, started on first use (one server
    for all the runs of a `run --every`)."""
    key = (host, port)
    if key not in _served:
        collector = RunnerCollector()
        registry = CollectorRegistry(auto_describe=True)
        registry.register(collector)
        start_http_server(port, addr=host, registry=registry)
        _served[key] = collector
    return _served[key]
