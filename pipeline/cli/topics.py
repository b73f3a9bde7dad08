"""`newsbeam topics`: tag texts as the pipeline does, score and tune the tagger on labelled
texts, and explain one text's tags. No Beam here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO, Any

import yaml

from pipeline.cli.usage import UsageError
from transforms.topics import (
    LabelledText,
    Relevance,
    TopicMatcher,
    describe_tag,
    evaluate,
    explain_signals,
    format_evaluation,
    labelled_text,
    load_taxonomy,
    tune,
    with_relevance,
)


def add_topics_commands(commands: Any) -> None:
    """Add `topics` and its subcommands to the command line's subparsers, `commands`."""
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


def run_topics(args: argparse.Namespace) -> int:
    """Run the `topics` subcommand `args` names; its exit status."""
    subcommands = {"tag": _tag, "eval": _eval, "tune": _tune, "explain": _explain}
    return subcommands[args.topics_command](args)


def _tag(args: argparse.Namespace) -> int:
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


def _eval(args: argparse.Namespace) -> int:
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


def _tune(args: argparse.Namespace) -> int:
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


def _explain(args: argparse.Namespace) -> int:
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
