"""NewsbeamOptions: every newsbeam flag, as a Beam PipelineOptions view.

Defining them as PipelineOptions means they travel with the job to remote workers and show up in
Dataflow's job page, and one parser knows both newsbeam's and Beam's flags, so a typo in either
is caught instead of being silently ignored (see `pipeline.cli`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TypeVar

from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.job.runners import Placement, extraction_processes
from transforms.core import DEFAULT_ISOLATION, IsolationSettings, format_duration, parse_duration
from transforms.fetch import DEFAULT_POLITENESS, DEFAULT_USER_AGENT, HttpSettings, Politeness
from transforms.sinks import (
    DEFAULT_ALERTS_TABLE,
    DEFAULT_DEAD_LETTERS_TABLE,
    DEFAULT_FEED_HEALTH_TABLE,
    DEFAULT_RECORDS_TABLE,
    Sink,
    SinkError,
    parse_sink,
)
from transforms.state import DEFAULT_STATE

DEFAULT_OUT = "newsbeam-out"
_HTTP = HttpSettings()  # the client's defaults are the options' defaults
# FnApiRunner is Beam's local portable runner: it needs no download (the plain DirectRunner of
# Beam 2.77 first tries to fetch the Prism runner from the internet) and supports multiple
# worker processes with --direct_num_workers and --direct_running_mode=multi_processing.
DEFAULT_RUNNER = "FnApiRunner"


def _at_least(kind: type, low: float, *, above: bool = False) -> Callable[[str], Any]:
    """An argparse type: a number of `kind` no smaller than `low` (greater, if `above`)."""
    wanted = f"more than {low:g}" if above else f"at least {low:g}"

    def parse(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
        if not (number > low if above else number >= low):  # also refuses NaN
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {value}")
        return number

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def duration(value: str) -> float:
    """An argparse type: a duration such as 90s, 5m, 1h30m or 7d, in seconds."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def yes_or_no(text: str) -> bool:
    """A switch's value where one is given (`--force=false`)."""
    value = text.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


# A switch: on when named alone (`--force`), or as its value says (`--force=false`), since
# launchers that pass every option as --name=value (a Flex Template, Airflow's Beam operator
# rendering a template) cannot leave the value out.
SWITCH: dict[str, Any] = {
    "nargs": "?", "const": True, "default": False, "type": yes_or_no, "metavar": "true|false",
}
_positive_int = _at_least(int, 1)


def _port(text: str) -> int:
    port = _positive_int(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"a port is at most 65535, not {port}")
    return int(port)
_non_negative_int = _at_least(int, 0)
_non_negative = _at_least(float, 0)
_positive = _at_least(float, 0, above=True)


View = TypeVar("View", bound=PipelineOptions)


class ViewedOnce(PipelineOptions):
    """Pipeline options that make each view (`view_as(cls)`) once and hand it out again.

    Beam 2.77 asks a pipeline's options for a view for every transform applied and every type
    check of the graph (`view_as(TypeOptions)` in Pipeline.apply and is_consistent_with), about
    900 for a batch run's graph, and each new view builds an argparse parser and parses every
    flag again: half the time it takes to build the graph. Every view of one set of options
    keeps its values in one shared store (Beam's `_all_options`), so a view made once reads
    and writes the same values as a new one would. Pinned by tests/test_runners.py."""

    def view_as(self, cls: type[View]) -> View:
        views: dict[type, Any] = self.__dict__.setdefault("_views", {})
        view: View | None = views.get(cls)
        if view is None:
            view = views[cls] = super().view_as(cls)
        return view

    def __getstate__(self) -> dict[str, Any]:
        # Beam deep-copies a pipeline's options and pickles them with transforms: the copy
        # makes its own views (of its own store of values).
        state = dict(super().__getstate__())
        state.pop("_views", None)
        return state


class NewsbeamOptions(PipelineOptions):
    """newsbeam's own pipeline options."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--feeds", metavar="FILE",
            help="feeds file: YAML ('feeds: [{url, name, tags}]') or OPML",
        )
        parser.add_argument(
            "--topics", metavar="FILE", default=None,
            help="topic taxonomy YAML (default: the bundled taiwan/trade/fentanyl taxonomy)",
        )
        parser.add_argument(
            "--out", metavar="DIR", default=DEFAULT_OUT,
            help="directory for summaries (run.json and summary-*.json; a stream's"
            " stream-*.json), and for articles-*.jsonl and dead-letters-*.jsonl unless --sink"
            f" and --dead-letters say otherwise (default: {DEFAULT_OUT})",
        )
        parser.add_argument(
            "--sink", metavar="URI", action="append", default=None,
            help="where records go, repeatable (or several URIs separated by spaces): jsonl:DIR,"
            " parquet:DIR, "
            "postgresql://USER@HOST:PORT/DB?table=NAME, redis://HOST:PORT/DB?stream=NAME"
            "[&maxlen=N], bigquery:PROJECT:DATASET.TABLE (default: jsonl: in --out)",
        )
        parser.add_argument(
            "--dead-letters", "--dead_letters", dest="dead_letters", metavar="URI",
            default=None,
            help="where dead letters go; the same kinds as --sink (default: jsonl: in --out)",
        )
        parser.add_argument(
            "--feed-health", "--feed_health", dest="feed_health", metavar="URI", default=None,
            help="also write each polled feed's health (its polls, new articles and class:"
            " healthy, quiet, failing, dead) here; the same kinds as --sink (a database keeps"
            " one row per feed). Kept in the state store either way",
        )
        parser.add_argument(
            "--alerts", metavar="URI", default=None,
            help="where alerts go (a topic far above its usual level in a run or window,"
            " with its articles; needs a state store); the same kinds as --sink (default:"
            " jsonl: in --out)",
        )
        parser.add_argument(
            "--metrics-port", "--metrics_port", dest="metrics_port", type=_port, default=None,
            metavar="N", help="serve live metrics for Prometheus on this port, at /metrics"
            " (default: off)",
        )
        parser.add_argument(
            "--metrics-host", "--metrics_host", dest="metrics_host", default="127.0.0.1",
            metavar="ADDRESS", help="the address --metrics-port listens on (default: 127.0.0.1,"
            " this machine only; 0.0.0.0 for every interface)",
        )
        parser.add_argument(
            "--state", metavar="URI", default=DEFAULT_STATE,
            help="where incremental state lives between runs: sqlite:PATH, "
            "postgresql://USER@HOST:PORT/DB[?table_prefix=P], or none"
            f" (default: {DEFAULT_STATE})",
        )
        parser.add_argument(
            "--shared-filesystem", "--shared_filesystem", dest="shared_filesystem", **SWITCH,
            help="every worker sees this machine's paths (an NFS mount, or workers on this"
            " machine): allow a local --out and local file sinks on a runner whose workers"
            " run elsewhere (Dataflow, Flink, Spark, PortableRunner)",
        )
        parser.add_argument(
            "--detach", **SWITCH,
            help="return once the runner has accepted the job, with its id; the job then runs"
            " on its own (runners whose workers run elsewhere: Dataflow, Flink, Spark, a job"
            " service; a Dataflow Flex Template launches this way)",
        )
        parser.add_argument(
            "--wait", type=duration, default=None, metavar="DURATION",
            help="if another run or stream holds the state, wait up to DURATION for it"
            " (default: exit at once, with status 4, naming the holder)",
        )
        parser.add_argument(
            "--force", **SWITCH,
            help="ignore the state: fetch every feed in full and every article again (a run"
            " still updates the state; a stream commits nothing to it)",
        )
        parser.add_argument(
            "--allow-private-networks", "--allow_private_networks",
            dest="allow_private_networks", **SWITCH,
            help="allow fetching from loopback, private and link-local addresses"
            " (refused by default, to stop feeds from reaching internal services)",
        )
        parser.add_argument(
            "--http-user-agent", "--http_user_agent", dest="http_user_agent",
            default=DEFAULT_USER_AGENT,
            help="User-Agent for every request; include a contact URL or address",
        )
        parser.add_argument(
            "--host-concurrency", "--host_concurrency", dest="host_concurrency",
            type=_positive_int,
            default=DEFAULT_POLITENESS.per_host, metavar="N",
            help="concurrent requests to any one host"
            f" (default: {DEFAULT_POLITENESS.per_host})",
        )
        parser.add_argument(
            "--host-interval", "--host_interval", dest="host_interval", type=_non_negative,
            default=DEFAULT_POLITENESS.min_interval, metavar="SECONDS",
            help="minimum time between the starts of two requests to one host"
            f" (default: {DEFAULT_POLITENESS.min_interval:g})",
        )
        parser.add_argument(
            "--fetch-concurrency", "--fetch_concurrency", dest="fetch_concurrency",
            type=_positive_int,
            default=DEFAULT_POLITENESS.workers, metavar="N",
            help="concurrent requests per worker process, all hosts together"
            f" (default: {DEFAULT_POLITENESS.workers})",
        )
        parser.add_argument(
            "--ignore-robots", "--ignore_robots", dest="ignore_robots", **SWITCH,
            help="do not consult robots.txt before fetching article pages",
        )
        parser.add_argument(
            "--extract-processes", "--extract_processes", dest="extract_processes",
            type=_non_negative_int, default=DEFAULT_ISOLATION.processes, metavar="N",
            help="worker processes (extracting pages, parsing feeds) per Beam worker process,"
            " and as many lane processes polling a batch run's feeds where that is two or"
            " more (default: 0, about one per"
            " core of the machine: the cores divided among the Beam worker processes on this"
            " machine, one per worker process on runners whose workers run elsewhere)",
        )
        parser.add_argument(
            "--extract-timeout", "--extract_timeout", dest="extract_timeout", type=_positive,
            default=DEFAULT_ISOLATION.timeout, metavar="SECONDS",
            help="time limit for extracting one page or parsing one feed; past it the page"
            " or feed is a dead letter extraction_timeout or feed_parse_timeout"
            f" (default: {DEFAULT_ISOLATION.timeout:g})",
        )
        parser.add_argument(
            "--http-timeout", "--http_timeout", dest="http_timeout", type=_positive,
            default=_HTTP.read_timeout, metavar="SECONDS",
            help="read timeout per request, and connect timeout up to"
            f" {_HTTP.connect_timeout:g} (default: {_HTTP.read_timeout:g})",
        )
        parser.add_argument(
            "--http-deadline", "--http_deadline", dest="http_deadline", type=_positive,
            default=_HTTP.deadline, metavar="SECONDS",
            help="overall time limit for one request, redirects included"
            f" (default: {_HTTP.deadline:g})",
        )


DEFAULT_POLL_INTERVAL = 300.0
DEFAULT_WINDOW = 600.0
DEFAULT_DEDUP_TTL = 7 * 86400.0
DEFAULT_RETRY_AFTER = 3600.0


class StreamOptions(PipelineOptions):
    """The options only `newsbeam stream` takes."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--poll-interval", "--poll_interval", dest="poll_interval", type=duration,
            default=DEFAULT_POLL_INTERVAL, metavar="DURATION",
            help="how often each feed is polled, unless it sets its own poll_interval in the"
            " feeds file or its server asks for less"
            f" (default: {format_duration(DEFAULT_POLL_INTERVAL)})",
        )
        parser.add_argument(
            "--window", type=duration, default=DEFAULT_WINDOW, metavar="DURATION",
            help="records, dead letters and summaries are cut per window of ingestion time"
            f" this long (default: {format_duration(DEFAULT_WINDOW)})",
        )
        parser.add_argument(
            "--dedup-ttl", "--dedup_ttl", dest="dedup_ttl", type=duration,
            default=DEFAULT_DEDUP_TTL, metavar="DURATION",
            help="how long an article id is remembered; seen again after that, it is new"
            f" (default: {format_duration(DEFAULT_DEDUP_TTL)})",
        )
        parser.add_argument(
            "--retry-after", "--retry_after", dest="retry_after", type=duration,
            default=DEFAULT_RETRY_AFTER, metavar="DURATION",
            help="with --state: an article whose page failed for a passing reason (a timeout,"
            " a 5xx) is asked for again when its entry is seen this long after; must be"
            f" longer than --window (default: {format_duration(DEFAULT_RETRY_AFTER)})",
        )
        parser.add_argument(
            "--poll-shards", "--poll_shards", dest="poll_shards", type=_positive_int, default=1,
            metavar="N",
            help="feeds are polled in N shards by host, each by one worker at a time: more"
            " spread the polls over more workers (default: 1)",
        )
        parser.add_argument(
            "--stream-id", "--stream_id", dest="stream_id", default=None, metavar="NAME",
            help="names the stream's files and its windows in the state store, at every launch"
            " (default: derived from --out and --state, so a restarted stream finds its own"
            " files)",
        )
        parser.add_argument(
            "--stop-after", "--stop_after", dest="stop_after", type=duration, default=None,
            metavar="DURATION",
            help="end the stream cleanly after this long (for trials and tests; needed on the"
            " in-process runner)",
        )


def sinks(options: PipelineOptions, out: str) -> tuple[tuple[Sink, ...], Sink]:
    """The record sinks and the dead-letter sink these options name, JSON Lines in `out` by
    default (SinkError if one is bad)."""
    view = options.view_as(NewsbeamOptions)
    # URIs have no spaces, so one value may name several sinks (a launcher that passes each
    # option once, like a Dataflow Flex Template, needs that).
    records = tuple(
        parse_sink(uri, default_table=DEFAULT_RECORDS_TABLE)
        for value in (view.sink or [f"jsonl:{out}"]) for uri in value.split()
    )
    letters = parse_sink(view.dead_letters or f"jsonl:{out}",
                         default_table=DEFAULT_DEAD_LETTERS_TABLE)
    return records, letters


def alerts_sink(options: PipelineOptions, out: str) -> Sink:
    """The sink of `--alerts`, JSON Lines in `out` by default (SinkError if it is bad)."""
    uri = options.view_as(NewsbeamOptions).alerts or f"jsonl:{out}"
    return parse_sink(uri, default_table=DEFAULT_ALERTS_TABLE)


def feed_health_sink(options: PipelineOptions) -> Sink | None:
    """The sink of `--feed-health`, if one is named (SinkError if it is bad)."""
    uri = options.view_as(NewsbeamOptions).feed_health
    if not uri:
        return None
    sink = parse_sink(uri, default_table=DEFAULT_FEED_HEALTH_TABLE)
    if sink.family == "redis":  # its entries are kept once per id, and a row's id is its feed
        raise SinkError(f"--feed-health {sink.shown}: a Redis stream keeps the first row of"
                        " each feed only; use postgresql://, jsonl:, parquet: or bigquery:")
    return sink


def politeness(options: PipelineOptions) -> Politeness:
    """The per-host limits these options ask for."""
    view = options.view_as(NewsbeamOptions)
    return Politeness(
        per_host=view.host_concurrency,
        min_interval=view.host_interval,
        workers=view.fetch_concurrency,
        respect_robots=not view.ignore_robots,
    )


def isolation(options: PipelineOptions, where: Placement) -> IsolationSettings:
    """How feed parsing and article extraction are isolated, as these options ask, with the
    number of worker processes per Beam worker process decided for `where` the workers run."""
    view = options.view_as(NewsbeamOptions)
    processes = extraction_processes(where, view.extract_processes)
    return IsolationSettings(processes=processes, timeout=view.extract_timeout)


def http_settings(options: PipelineOptions) -> HttpSettings:
    """The HTTP client settings these options ask for."""
    view = options.view_as(NewsbeamOptions)
    return HttpSettings(
        user_agent=view.http_user_agent,
        connect_timeout=min(view.http_timeout, _HTTP.connect_timeout),
        read_timeout=view.http_timeout,
        deadline=view.http_deadline,
        allow_private_networks=view.allow_private_networks,
    )
