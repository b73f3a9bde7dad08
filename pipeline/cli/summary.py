"""The run summary for a person reading a terminal (the pipeline computes it: see
transforms.core.summary)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
    if summary.get("alerts"):
        lines.append("alerts   " + ", ".join(
            f"{topic} {n}" for topic, n in summary["alerts"].items())
            + " (a topic far above its usual level; the articles are in the alerts sink)")
    if summary.get("feed_health"):
        lines.append("health   " + ", ".join(
            f"{n} {health_class}" for health_class, n in summary["feed_health"].items()))
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
