"""The run summary: every feed and entry accounted for, built from the pipeline's counters."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.runner import PipelineResult

from transforms.core import NAMESPACE


def read_counters(result: PipelineResult) -> dict[str, int]:
    """newsbeam's counters from a finished pipeline (committed values where the runner has them)."""
    counters: dict[str, int] = defaultdict(int)
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        counters[counter.key.metric.name] += int(value or 0)
    return dict(counters)


def build_summary(counters: Mapping[str, int], feeds_configured: int) -> dict[str, Any]:
    """The run summary as JSON-ready data (the shape of run.json; see README)."""
    feeds: dict[str, Any] = {
        "configured": feeds_configured,
        "fetched": counters.get("feeds.fetched", 0),
        "not_modified": counters.get("feeds.not_modified", 0),
        "dead_letter": counters.get("feeds.dead_letter", 0),
        "ill_formed_kept": sum(
            n for name, n in counters.items() if name.startswith("feeds.ill_formed_kept.")
        ),
        "ill_formed_reasons": {
            name.removeprefix("feeds.ill_formed_kept."): n
            for name, n in sorted(counters.items())
            if name.startswith("feeds.ill_formed_kept.")
        },
    }
    entries = {
        "parsed": counters.get("entries.parsed", 0),
        "records": counters.get("records.output", 0),
        "duplicates": counters.get("entries.duplicate", 0)
        + counters.get("entries.seen_before", 0),
        "seen_before": counters.get("entries.seen_before", 0),
        "dead_letters": counters.get("entries.dead_letter", 0),
    }
    extraction = {name.removeprefix("extraction."): n for name, n in sorted(counters.items())
                  if name.startswith("extraction.")}
    fallbacks = {name.removeprefix("pages.feed_fallback."): n
                 for name, n in sorted(counters.items())
                 if name.startswith("pages.feed_fallback.")}
    dead_letters: dict[str, dict[str, int]] = defaultdict(dict)
    topics: dict[str, dict[str, int]] = defaultdict(lambda: {"about": 0, "mention": 0})
    for name, value in sorted(counters.items()):
        kind, _, rest = name.partition(".")
        if kind == "dead_letters":
            stage, _, reason = rest.partition(".")
            dead_letters[stage][reason] = value
        elif kind == "topics":
            topic, _, relevance = rest.rpartition(".")
            topics[topic][relevance] = value
    feeds_accounted = feeds["fetched"] + feeds["not_modified"] + feeds["dead_letter"]
    entries_accounted = entries["records"] + entries["duplicates"] + entries["dead_letters"]
    return {
        "feeds": feeds,
        "entries": entries,
        "dead_letters": dict(dead_letters),
        "extraction_methods": extraction,
        "pages_replaced_by_feed_text": fallbacks,
        "topics": dict(topics),
        "accounted": {
            "feeds": feeds_accounted == feeds["configured"],
            "entries": entries_accounted == entries["parsed"],
        },
    }


def format_summary(summary: Mapping[str, Any]) -> str:
    """The summary for a person reading a terminal."""
    feeds, entries = summary["feeds"], summary["entries"]
    ok = {True: "ok", False: "MISMATCH"}
    lines = [
        f"feeds    {feeds['configured']} configured: {feeds['fetched']} fetched"
        f" ({feeds['ill_formed_kept']} ill-formed but kept{_reasons(feeds)}),"
        f" {feeds['not_modified']} not"
        f" modified, {feeds['dead_letter']} dead letters  [{ok[summary['accounted']['feeds']]}]",
        f"entries  {entries['parsed']} parsed: {entries['records']} records,"
        f" {entries['duplicates']} duplicates ({entries['seen_before']} written by earlier runs),"
        f" {entries['dead_letters']} dead letters"
        f"  [{ok[summary['accounted']['entries']]}]",
    ]
    if summary["topics"]:
        lines.append("topics   " + ", ".join(
            f"{name} {counts['about']} about / {counts['mention']} mention"
            for name, counts in sorted(summary["topics"].items())
        ))
    else:
        lines.append("topics   none tagged")
    if summary["extraction_methods"]:
        lines.append("text     " + ", ".join(
            f"{method} {n}" for method, n in summary["extraction_methods"].items()
        ) + "".join(
            f" (feed text for pages lost to {reason}: {n})"
            for reason, n in summary["pages_replaced_by_feed_text"].items()
        ))
    for stage, reasons in sorted(summary["dead_letters"].items()):
        lines.append(f"dead letters at {stage}: " + ", ".join(
            f"{reason} {n}" for reason, n in sorted(reasons.items())
        ))
    if "out" in summary:
        lines.append(f"output   {summary['out']}")
    return "\n".join(lines)


def _reasons(feeds: Mapping[str, Any]) -> str:
    reasons = feeds["ill_formed_reasons"]
    return ": " + ", ".join(f"{name} {n}" for name, n in reasons.items()) if reasons else ""
