"""What a report reads: the records, dead letters and summaries runs and streams wrote in an
output folder, and each feed's health (from the state store, else from `--feed-health` files
in the folder)."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from apache_beam.io.filesystems import FileSystems

from transforms.core import matching_paths, parse_summaries
from transforms.health import FeedHealth, as_row, classify, decode
from transforms.state import StateError, is_local, open_state, sqlite_path

_RUN_SUMMARY = re.compile(r"summary-(\d{8}T\d{9}Z)\.json")


@dataclasses.dataclass(frozen=True)
class ReportData:
    """What the page shows, already cut to the report's period."""

    records: list[dict[str, Any]]  # fetched_at (datetime), topics (about), extraction_method
    dead_letters: list[dict[str, Any]]  # at (datetime), stage, reason
    summaries: list[dict[str, Any]]  # the runs' and windows' summaries
    health: list[dict[str, Any]]  # one row per feed (FeedHealthRow.to_dict())
    health_source: str  # where the health rows came from
    since: datetime | None


def load(out: str, since: datetime | None, state_uri: str | None) -> ReportData:
    """Everything in `out` from `since` on, and the feeds' health as kept now."""
    records = [_record(row) for row in _json_lines(out, "articles-*.jsonl")]
    records += [_record(row) for row in _parquet_rows(out, "articles-*.parquet")]
    letters = [{"at": _time(row["at"]), "stage": row["stage"], "reason": row["reason"]}
               for row in _json_lines(out, "dead-letters-*.jsonl")]
    summaries = []
    for path in matching_paths(FileSystems.join(out, "summary-*.json")):
        with FileSystems.open(path) as handle:
            found = parse_summaries(handle.read().decode("utf-8"))
        run = _RUN_SUMMARY.fullmatch(path.rsplit("/", 1)[-1])
        for summary in found:  # a run's summary says its time in its name only
            if run:
                summary.setdefault("started_at", datetime.strptime(
                    run.group(1)[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC).isoformat())
        summaries += found
    if since is not None:
        records = [r for r in records if r["fetched_at"] >= since]
        letters = [letter for letter in letters if letter["at"] >= since]
        summaries = [s for s in summaries if _summary_time(s) is None
                     or _summary_time(s) >= since]  # type: ignore[operator]
    health, source = _health(out, state_uri)
    return ReportData(records, letters, summaries, health, source, since)


def _health(out: str, state_uri: str | None) -> tuple[list[dict[str, Any]], str]:
    # A state file that is not there is not made (open_state would make an empty one).
    if state_uri is not None and not (is_local(state_uri) and not sqlite_path(state_uri).exists()):
        try:
            store = open_state(state_uri)
        except StateError:
            store = None
        if store is not None:
            try:
                kept = store.feed_health()
            finally:
                store.close()
            if kept:
                now = time.time()
                return [_classed_now(decode(encoded), now) for encoded in kept.values()], (
                    "the state store")
    latest: dict[str, dict[str, Any]] = {}
    for row in _json_lines(out, "feed-health-*.jsonl"):
        if row["id"] not in latest or row["updated_at"] > latest[row["id"]]["updated_at"]:
            latest[row["id"]] = row
    return list(latest.values()), "the --feed-health files in the folder"


def _classed_now(health: FeedHealth, now: float) -> dict[str, Any]:
    """A kept feed's row, classed as of now: a feed no run polls any more still goes quiet."""
    health_class, reason = classify(health, now)
    return as_row(dataclasses.replace(health, health_class=health_class,
                                      class_reason=reason)).to_dict()


def _record(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "fetched_at": _time(row["fetched_at"]),
        "topics": [topic["name"] for topic in row.get("topics") or []
                   if topic.get("relevance") == "about"],
        "extraction_method": row.get("extraction_method") or "unknown",
        "feed_url": row.get("feed_url"),
    }


def _json_lines(out: str, pattern: str) -> Iterator[dict[str, Any]]:
    for path in matching_paths(FileSystems.join(out, pattern)):
        with FileSystems.open(path) as handle:
            for line in handle.read().decode("utf-8").splitlines():
                if line.strip():
                    yield json.loads(line)


def _parquet_rows(out: str, pattern: str) -> Iterator[dict[str, Any]]:
    paths = matching_paths(FileSystems.join(out, pattern))
    if not paths:
        return
    import pyarrow.parquet as pq

    for path in paths:
        with FileSystems.open(path) as handle:
            table = pq.read_table(handle, columns=["fetched_at", "topics", "extraction_method",
                                                   "feed_url"])
        for row in table.to_pylist():
            row["fetched_at"] = row["fetched_at"].isoformat()
            yield row


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _summary_time(summary: dict[str, Any]) -> datetime | None:
    """When a summary's run started, or its window ended."""
    window = summary.get("window")
    if window:
        return _time(window["end"])
    started = summary.get("started_at")
    return _time(started) if started else None
