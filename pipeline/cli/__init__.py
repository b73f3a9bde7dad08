"""The `newsbeam` command: run, stream, demo, topics, report. Argument handling only; no Beam
graph here."""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, cast

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import demo
from pipeline.cli.feeds_file import load_feeds
from pipeline.cli.parser import CommandParser, flink_job_options
from pipeline.cli.report import add_report_command, run_report
from pipeline.cli.summary import format_summary
from pipeline.cli.topics import add_topics_commands, run_topics
from pipeline.cli.usage import UsageError
from pipeline.job.lease import StateBusyError
from pipeline.job.options import DEFAULT_RUNNER, NewsbeamOptions, StreamOptions, duration, sinks
from pipeline.job.run_batch import run_batch
from pipeline.job.run_stream import run_stream
from pipeline.job.runners import PlacementError, runner_name
from pipeline.job.schedule import run_every
from pipeline.job.setup import RunFailedError
from transforms.core import ConfigError, mask_userinfo
from transforms.sinks import SinkError
from transforms.state import StateError
from transforms.topics import load_taxonomy

log = logging.getLogger(__name__)

EXIT_FAILED = 1  # the pipeline failed; nothing of the run was committed
EXIT_USAGE = 2  # bad command line or bad config, as argparse does
EXIT_INCOMPLETE = 3  # the run finished but did not account for every feed and entry
EXIT_BUSY = 4  # another run or stream holds the state: nothing was done


def console() -> NoReturn:
    """The `newsbeam` console script."""
    # What importing made (Beam's modules above all) lives as long as the process: out of
    # the collector's way, each full collection walks only what the run itself made.
    gc.freeze()
    raise SystemExit(main())


def main(argv: Sequence[str] | None = None) -> int:
    """The `newsbeam` command, for `argv` (default: the process's arguments); its exit
    status."""
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, rest = parser.parse_known_args(argv)
    _configure_logging(args.log_level)
    try:
        if args.command == "run":
            # Everything after "run" goes to PipelineOptions: newsbeam's flags are Beam options.
            return _run(args, rest, _options_after(argv, "run", drop=("--every",)))
        if args.command == "stream":
            return _stream(args, rest, _options_after(argv, "stream"))
        if args.command == "demo":
            return _demo(args, rest)
        _no_extra(rest)
        if args.command == "topics":
            return run_topics(args)
        if args.command == "report":
            return run_report(args)
    except (ConfigError, UsageError, StateError, SinkError, PlacementError) as error:
        _fail(parser, str(error))
    except RunFailedError as error:
        log.debug("the run failed", exc_info=error)
        _fail(parser, str(error), EXIT_FAILED)
    except StateBusyError as error:
        _fail(parser, str(error), EXIT_BUSY)
    parser.error(f"unknown command {args.command!r}")


def command_parser(command: str) -> CommandParser:
    """The argument parser of one command (`run`, `stream`, ...), e.g. to read its options'
    help."""
    return _parser().commands[command]


def check_command_line(argv: Sequence[str]) -> argparse.Namespace:
    """Check a newsbeam command line as `main` would, without running anything or connecting
    anywhere (how the files under deploy/ are kept honest): the options, their values, the
    sink URIs. UsageError (SinkError for a sink) with the first problem."""
    parser = _parser()
    complaint = io.StringIO()
    try:
        with contextlib.redirect_stderr(complaint):
            args, rest = parser.parse_known_args(list(argv))
    except SystemExit:
        raise UsageError(complaint.getvalue().strip().splitlines()[-1]) from None
    if args.command in ("run", "stream", "demo"):
        _beam_flags(rest)
    else:
        _no_extra(rest)
    if args.command in ("run", "stream"):
        sinks(PipelineOptions(_options_after(list(argv), args.command)), args.out)
    return args


class _MaskingFormatter(logging.Formatter):
    """Log lines (tracebacks included) with the user information of any URL masked: a private
    feed's credentials never reach a log."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_userinfo(super().format(record))


def _configure_logging(level: str) -> None:
    root = logging.getLogger()
    before = set(root.handlers)
    logging.basicConfig(level=level)
    for handler in set(root.handlers) - before:  # the handler basicConfig added, if any
        handler.setFormatter(_MaskingFormatter("%(levelname)s %(name)s: %(message)s"))
    if logging.getLogger().getEffectiveLevel() >= logging.WARNING:
        # Beam's DoFn runner logs an exception that fails a bundle with its whole traceback;
        # newsbeam's stages turn each element's errors into dead letters, so such an exception
        # fails the run, which newsbeam reports in one line (--log-level DEBUG shows both).
        logging.getLogger("apache_beam.runners.common").setLevel(logging.CRITICAL)


def _parser() -> CommandParser:
    parser = CommandParser(
        prog="newsbeam", allow_abbrev=False,
        description="Ingest news feeds: fetch, extract, tag by topic, write enriched records.",
    )
    parser.add_argument(
        "--log-level", default="WARNING", type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="what to log on stderr (default: WARNING; DEBUG adds Beam's logs and the"
        " traceback of a failed run)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run", allow_abbrev=False, help="run the batch job once over a feeds file",
        description="Run the batch job once: every feed, every new article.",
        epilog="Any Apache Beam pipeline option (--runner, --direct_num_workers, "
        "--direct_running_mode, ...) is passed through to Beam; an option neither newsbeam nor "
        f"Beam knows is an error. Default runner: {DEFAULT_RUNNER}.",
    )
    NewsbeamOptions._add_argparse_args(run)
    run.add_argument(
        "--every", type=duration, default=None, metavar="DURATION",
        help="run again every DURATION (5m, 1h, ...), incrementally, until SIGINT or SIGTERM,"
        " which let the run in progress finish; one line is logged per run",
    )
    stream = commands.add_parser(
        "stream", allow_abbrev=False,
        help="poll the feeds for as long as the job runs, each article once",
        description="Run the streaming job: every feed polled when it is due, each new article"
        " written once, outputs cut per window of ingestion time.",
        epilog="Any Apache Beam pipeline option passes through, as for 'run'. A stream runs on"
        " a streaming runner (--runner DataflowRunner, FlinkRunner, PrismRunner); on the"
        f" default {DEFAULT_RUNNER} it needs --stop-after.",
    )
    NewsbeamOptions._add_argparse_args(stream)
    StreamOptions._add_argparse_args(stream)
    demo_cmd = commands.add_parser(
        "demo", allow_abbrev=False,
        help="run the pipeline on a bundled sample served from loopback (no network needed)",
        epilog="Beam pipeline options pass through as for 'run'.",
    )
    demo_cmd.add_argument("--out", metavar="DIR", default="newsbeam-demo",
                          help="output directory (default: newsbeam-demo)")
    add_topics_commands(commands)
    add_report_command(commands)
    # A subparsers action's choices map each name to its parser, made of the parser's class.
    parser.commands = cast(dict[str, CommandParser], dict(commands.choices))
    return parser


def _options_after(argv: list[str], command: str, drop: tuple[str, ...] = ()) -> list[str]:
    """The flags after the command, for PipelineOptions, without the CLI's own `drop` flags
    (each with its value)."""
    flags = argv[argv.index(command) + 1:]
    kept: list[str] = []
    skip = False
    for flag in flags:
        if skip:
            skip = False
        elif flag in drop:
            skip = True
        elif not flag.startswith(tuple(f"{name}=" for name in drop)):
            kept.append(flag)
    return kept


def _run(args: argparse.Namespace, rest: list[str], flags: list[str]) -> int:
    _beam_flags(rest)
    if not args.feeds:
        raise UsageError("run: --feeds FILE is required")
    if args.every is not None and args.detach:
        raise UsageError("run: --every waits for each run before the next; it does not go"
                         " with --detach")
    feeds = load_feeds(args.feeds)
    taxonomy = load_taxonomy(args.topics)
    _prepare_out(args.out)
    if args.every is None:
        outcome = run_batch(PipelineOptions(flags), feeds, taxonomy, args.out)
        return _ended(f"run {outcome['run_id']}", outcome,
                      "; it commits its state when its outputs are written, and writes its"
                      f" summary to {outcome.get('summary')}")

    logging.getLogger("newsbeam.schedule").setLevel(logging.INFO)
    return run_every(args.every, lambda: run_batch(PipelineOptions(flags), feeds, taxonomy,
                                                   args.out))


def _stream(args: argparse.Namespace, rest: list[str], flags: list[str]) -> int:
    _beam_flags(rest)
    if not args.feeds:
        raise UsageError("stream: --feeds FILE is required")
    feeds = load_feeds(args.feeds)
    taxonomy = load_taxonomy(args.topics)
    _prepare_out(args.out)
    logging.getLogger("newsbeam.summary").setLevel(logging.INFO)  # a line per window
    outcome = run_stream(PipelineOptions(flags), feeds, taxonomy, args.out)
    return _ended(f"stream {outcome['stream_id']}", outcome,
                  ": it runs until it is drained or cancelled; its windows' files and summaries"
                  f" go to {outcome['out']}")


def _ended(job: str, outcome: dict[str, Any], after_submission: str) -> int:
    """Print what became of `job` (handed to its runner, written as a template's graph, or
    its summary once it ended); the exit status."""
    if outcome.get("status") == "submitted":
        print(f"{job} submitted to {outcome['runner']} as job {outcome['job_id']}"
              f"{after_submission}")
        return 0
    if outcome.get("status") == "template_written":
        print(f"{job}: the job's graph is written to {outcome['template']}, for the"
              " template's launcher to start")
        return 0
    return _report(outcome)


def _demo(args: argparse.Namespace, rest: list[str]) -> int:
    beam_flags = _beam_flags(rest)
    taxonomy = load_taxonomy(None)
    _prepare_out(args.out)
    server = demo.sample_server()
    try:
        print(f"demo: serving the sample site at {server.base_url} (loopback only)")
        # No state: the demo shows the whole sample every time it runs.
        options = PipelineOptions(["--allow-private-networks", "--state=none", *beam_flags])
        summary = run_batch(options, demo.sample_feeds(server), taxonomy, args.out)
    finally:
        server.stop()
    return _report(summary)


def _prepare_out(out: str) -> None:
    """Create a local output folder up front, so a bad --out fails before anything is fetched."""
    if FileSystems.get_scheme(out) not in (None, "file"):
        return  # a bucket or other remote file system: nothing to create
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create the output folder: {exc.strerror}") from None


def _report(summary: dict[str, Any]) -> int:
    print(format_summary(summary))
    if not all(summary["accounted"].values()):
        print("newsbeam: error: the run did not account for every feed and entry",
              file=sys.stderr)
        return EXIT_INCOMPLETE
    return 0


def _beam_flags(rest: list[str]) -> list[str]:
    """Check that what newsbeam did not recognise is a Beam option; refuse anything else."""
    parser = CommandParser(allow_abbrev=False)
    for options_class in _option_classes():
        if options_class not in (NewsbeamOptions, StreamOptions):
            # Beam 2.77 annotates the parser as its private _BeamArgumentParser; any parser
            # with add_value_provider_argument serves.
            options_class._add_argparse_args(cast(Any, parser))
    known, unknown = parser.parse_known_args(rest)
    if unknown and runner_name(str(known.runner or "")) == "FlinkRunner":
        flink, unknown = flink_job_options(unknown)
        if flink and not known.flink_submit_uber_jar:
            raise UsageError(
                f"{flink[0]} is an option of the Flink runner, which Beam hands to the job only"
                " with --flink_submit_uber_jar")
    if unknown:
        raise UsageError(
            f"unrecognized option {unknown[0]!r}: not a newsbeam option nor an Apache Beam "
            "pipeline option (see 'newsbeam run --help')"
        )
    return rest


def _option_classes() -> Iterator[type[PipelineOptions]]:
    seen: set[type[PipelineOptions]] = set()
    pending = list(PipelineOptions.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls not in seen:
            seen.add(cls)
            pending.extend(cls.__subclasses__())
            yield cls


def _no_extra(rest: list[str]) -> None:
    if rest:
        raise UsageError(f"unrecognized arguments: {' '.join(rest)}")


def _fail(parser: argparse.ArgumentParser, message: str, status: int = EXIT_USAGE) -> NoReturn:
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    raise SystemExit(status)

