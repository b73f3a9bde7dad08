"""The `newsbeam` command: run, demo, topics. Argument handling only; no Beam graph here."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import io
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

import yaml
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

from pipeline import demo
from pipeline.config import ConfigError, load_feeds, load_taxonomy
from pipeline.lease import StateBusyError
from pipeline.options import DEFAULT_RUNNER, NewsbeamOptions, StreamOptions, duration, sinks
from pipeline.run import RunFailedError, run_batch
from pipeline.run_stream import run_stream
from pipeline.runners import PlacementError
from pipeline.schedule import run_every
from pipeline.summary import format_summary
from transforms.core import mask_userinfo
from transforms.sinks import SinkError
from transforms.state import StateError
from transforms.topics import (
    LabelledText,
    Relevance,
    TopicMatcher,
    describe_tag,
    evaluate,
    explain_signals,
    format_evaluation,
    labelled_text,
    tune,
    with_relevance,
)

log = logging.getLogger(__name__)

EXIT_FAILED = 1  # the pipeline failed; nothing of the run was committed
EXIT_USAGE = 2  # bad command line or bad config, as argparse does
EXIT_INCOMPLETE = 3  # the run finished but did not account for every feed and entry
EXIT_BUSY = 4  # another run or stream holds the state: nothing was done


class UsageError(Exception):
    """A command-line problem: printed as one line, exit status 2."""


def console() -> NoReturn:
    """The `newsbeam` console script: `main`, then exit without the interpreter's teardown."""
    _exit_now(main())


def _exit_now(status: int) -> NoReturn:
    """Exit the way the interpreter does, less its final teardown: freeing every module a run
    imported (Beam's cloud clients among them) costs a third of a second and does nothing for
    a process about to end. Threads are shut down and waited for, and every atexit handler
    runs (logging, multiprocessing's children, temporary folders), as on a normal exit: these
    are the two steps the interpreter itself takes first."""
    threading._shutdown()  # type: ignore[attr-defined]  # thread pools stop, threads joined
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or a reader that went away
            stream.flush()
    os._exit(status)


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
        if args.command == "topics" and args.topics_command == "tag":
            return _topics_tag(args)
        if args.command == "topics" and args.topics_command == "eval":
            return _topics_eval(args)
        if args.command == "topics" and args.topics_command == "tune":
            return _topics_tune(args)
        if args.command == "topics" and args.topics_command == "explain":
            return _topics_explain(args)
    except (ConfigError, UsageError, StateError, SinkError, PlacementError) as error:
        _fail(parser, str(error))
    except RunFailedError as error:
        log.debug("the run failed", exc_info=error)
        _fail(parser, str(error), EXIT_FAILED)
    except StateBusyError as error:
        _fail(parser, str(error), EXIT_BUSY)
    parser.error(f"unknown command {args.command!r}")


def command_parser(command: str) -> argparse.ArgumentParser:
    """The argument parser of one command (`run`, `stream`, ...), e.g. to read its options'
    help."""
    for action in _parser()._actions:  # argparse offers no public way to its subcommands
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]
    raise KeyError(command)


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    topics = commands.add_parser("topics", allow_abbrev=False, help="tag texts by topic")
    topic_commands = topics.add_subparsers(dest="topics_command", required=True,
                                           metavar="SUBCOMMAND")
    tag = topic_commands.add_parser(
        "tag", allow_abbrev=False, help="tag JSON lines {id, title, text} as the pipeline does",
        description="Read JSON lines {\"id\", \"title\", \"text\"}; write {\"id\", \"topics\"} "
        "lines to stdout.",
    )
    tag.add_argument("--jsonl", metavar="IN", required=True,
                     help="input JSON Lines file ('-': stdin)")
    tag.add_argument("--topics", metavar="FILE", help="topic taxonomy YAML (default: bundled)")
    evaluate = topic_commands.add_parser(
        "eval", allow_abbrev=False, help="score the tagger on labelled JSON lines",
        description="Read labelled JSON lines {\"id\", \"title\", \"text\", \"labels\"}; print "
        "per-topic precision, recall and F1 of the 'about' tags, then every miss and false "
        "alarm with its evidence.",
    )
    evaluate.add_argument("file", metavar="FILE.jsonl", help="labelled JSON Lines file")
    evaluate.add_argument("--topics", metavar="FILE", help="topic taxonomy YAML (default: bundled)")
    evaluate.add_argument(
        "--tune-on", "--tune_on", dest="tune_on", metavar="TRAIN.jsonl",
        help="first choose the relevance thresholds on these labelled texts (as 'topics tune'"
        " does), then score FILE with them: figures for texts the thresholds were not chosen on")
    evaluate.add_argument(
        "--without-borderline", "--without_borderline", dest="without_borderline",
        action="store_true",
        help="leave out the items marked borderline: true (where annotators could disagree)")
    tune = topic_commands.add_parser(
        "tune", allow_abbrev=False, help="choose the relevance thresholds on labelled JSON lines",
        description="Try every combination of relevance thresholds on labelled JSON lines and"
        " print the one that tags them best (the worst topic's F1 first, then the average), as"
        " a 'relevance' block for the topics file. With several files (texts from different"
        " sources), each is scored on its own and the worst topic in any of them counts. Check"
        " the result on other labelled texts with 'topics eval OTHER.jsonl --tune-on"
        " FILE.jsonl'.",
    )
    tune.add_argument("files", metavar="FILE.jsonl", nargs="+",
                      help="labelled JSON Lines file(s)")
    tune.add_argument("--topics", metavar="FILE", help="topic taxonomy YAML (default: bundled)")
    explain = topic_commands.add_parser(
        "explain", allow_abbrev=False, help="show which topics apply to one text, and why",
    )
    explain.add_argument("--title", default="", help="the headline")
    explain.add_argument("--text", metavar="FILE", required=True,
                         help="file with the article text, paragraphs on their own lines"
                         " ('-': stdin)")
    explain.add_argument("--topics", metavar="FILE", help="topic taxonomy YAML (default: bundled)")
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
        if outcome.get("status") == "submitted":
            print(f"run {outcome['run_id']} submitted to {outcome['runner']} as job"
                  f" {outcome['job_id']}; it commits its state when its outputs are written,"
                  f" and writes its summary to {outcome['summary']}")
            return 0
        return _report(outcome)

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
    if outcome.get("status") == "submitted":
        print(f"stream {outcome['stream_id']} submitted to {outcome['runner']} as job"
              f" {outcome['job_id']}: it runs until it is drained or cancelled; its windows'"
              f" files and summaries go to {outcome['out']}")
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
    parser = _BeamArgumentParser(allow_abbrev=False)
    for options_class in _option_classes():
        if options_class not in (NewsbeamOptions, StreamOptions):
            options_class._add_argparse_args(parser)
    _, unknown = parser.parse_known_args(rest)
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


def _topics_tag(args: argparse.Namespace) -> int:
    matcher = TopicMatcher(load_taxonomy(args.topics))
    source = "<stdin>" if args.jsonl == "-" else args.jsonl
    with _open_input(args.jsonl) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            item = _json_object(line, f"{source}:{number}")
            tags = matcher.tag(str(item.get("title") or ""), str(item.get("text") or ""))
            json.dump({"id": item.get("id"), "topics": [t.to_dict() for t in tags]},
                      sys.stdout, ensure_ascii=False)
            sys.stdout.write("\n")
    return 0


def _topics_eval(args: argparse.Namespace) -> int:
    taxonomy = load_taxonomy(args.topics)
    if args.tune_on:
        tuned = tune(taxonomy, _labelled(args.tune_on))
        print(f"thresholds chosen on {args.tune_on}: {_relevance_line(tuned.relevance)}")
        taxonomy = with_relevance(taxonomy, tuned.relevance)
    items = _labelled(args.file)
    if args.without_borderline:
        items = [item for item in items if not item.borderline]
    print(format_evaluation(evaluate(TopicMatcher(taxonomy), items)))
    return 0


def _topics_tune(args: argparse.Namespace) -> int:
    tuned = tune(load_taxonomy(args.topics), *map(_labelled, args.files))
    print(f"# chosen on {', '.join(args.files)} ({tuned.ties} combinations tied; the middle"
          " one)")
    for file, f1 in zip(args.files, tuned.f1, strict=True):
        where = f" in {file}" if len(args.files) > 1 else " there"
        print(f"# F1{where}: " + ", ".join(f"{name} {value:.3f}" for name, value in f1.items()))
    print(yaml.safe_dump({"relevance": tuned.relevance.to_dict()}, sort_keys=False), end="")
    return 0


def _labelled(path: str) -> list[LabelledText]:
    items = []
    with _open_input(path) as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                where = f"{path}:{number}"
                try:
                    items.append(labelled_text(_json_object(line, where), where))
                except ValueError as exc:
                    raise UsageError(str(exc)) from None
    return items


def _relevance_line(relevance: Relevance) -> str:
    return ", ".join(f"{name} {'off' if value is None else f'{value:g}'}"
                     for name, value in relevance.to_dict().items())


def _topics_explain(args: argparse.Namespace) -> int:
    taxonomy = load_taxonomy(args.topics)
    matcher = TopicMatcher(taxonomy)
    with _open_input(args.text) as handle:
        text = handle.read()
    tags = {tag.name: (tag, found) for tag, found in matcher.tag_with_signals(args.title, text)}
    print(f"taxonomy {taxonomy.version}: {len(taxonomy.topics)} topics")
    for topic in taxonomy.topics:
        tag, found = tags.get(topic.name, (None, None))
        verdict = tag.relevance.upper() if tag else "no"
        print(f"{topic.name:<16} {verdict:<8} {describe_tag(tag)}")
        if found is not None:
            for line in explain_signals(found, taxonomy.thresholds(topic)):
                print(f"{'':<25} {line}")
    return 0


def _open_input(path: str) -> IO[str]:
    if path == "-":
        return sys.stdin
    try:
        return Path(path).open(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None


def _json_object(line: str, where: str) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: not valid JSON: {exc.msg}") from None
    if not isinstance(item, dict):
        raise UsageError(f"{where}: expected a JSON object with id, title and text")
    return item


def _fail(parser: argparse.ArgumentParser, message: str, status: int = EXIT_USAGE) -> NoReturn:
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    raise SystemExit(status)


if __name__ == "__main__":
    console()
