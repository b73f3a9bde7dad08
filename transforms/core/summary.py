"""The run summary: every feed and entry accounted for, computed as pipeline data.

Every stage outputs a `Tally` for each thing it counts on its `tallies` output, beside its
results (and increments a counter for monitoring); dead letters and configured feeds are
counted from the data itself.
Summarize adds the tallies up inside the pipeline, so the summary is exact on every runner: the
outputs of a retried bundle are discarded with it, where a runner's attempted counter values
would count it twice. `summarize` is the plain function that turns the sums into the summary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import FixedWindows, GlobalWindows, IntervalWindow
from apache_beam.utils.timestamp import Duration

from transforms.core.composite import Composite
from transforms.core.elements import format_utc
from transforms.core.metrics import WAIT_TALLY, Tally


class _SumByName(beam.CombineFn):
    """Tallies -> {name: total}."""

    def create_accumulator(self) -> dict[str, int]:
        return {}

    def add_input(self, totals: dict[str, int], tally: Tally) -> dict[str, int]:
        totals[tally.name] = totals.get(tally.name, 0) + tally.n
        return totals

    def merge_accumulators(self, accumulators: Iterable[dict[str, int]]) -> dict[str, int]:
        merged: dict[str, int] = {}
        for totals in accumulators:
            for name, n in totals.items():
                merged[name] = merged.get(name, 0) + n
        return merged

    def extract_output(self, totals: dict[str, int]) -> dict[str, int]:
        return dict(sorted(totals.items()))


def _with_window(counts: dict[str, int], window: Any = beam.DoFn.WindowParam) -> dict[str, Any]:
    summary = summarize(counts)
    if isinstance(window, IntervalWindow):
        # A window at the end of time has nothing to say about itself.
        with contextlib.suppress(OverflowError):
            summary["window"] = {"start": format_utc(window.start.to_utc_datetime(has_tz=True)),
                                 "end": format_utc(window.end.to_utc_datetime(has_tz=True))}
    return summary


@dataclasses.dataclass(eq=False)
class Summarize(Composite):
    """(tallies, ...) -> the summary, written as JSON to `path` when it is given: one for a
    batch run (even when nothing at all was counted), or, with `window`, one for each fixed
    window that saw something, with the window it covers (a stream's)."""

    path: str | None = None
    window: float | None = None  # a stream's: summarize per fixed window of this many seconds
    lateness: float = 86400.0  # tallies of a window still counted this long after it closed

    def expand(self, tallies: tuple[beam.PCollection, ...]) -> beam.PCollection:
        combine = beam.CombineGlobally(_SumByName())
        # Tallies come in whatever windows their stage's outputs are in (a stream's feed
        # health, counted per window, in fixed ones; the rest in the global one): all are
        # taken into the global window first, as a Flatten needs one windowing for its
        # inputs (Prism, Beam 2.77, panics on a window coder mismatch otherwise), then cut
        # by their timestamps.
        flat = [
            tally | f"Global{index}" >> beam.WindowInto(GlobalWindows())
            for index, tally in enumerate(tallies)
        ] | "AllTallies" >> beam.Flatten()
        if self.window is not None:
            flat = flat | "Window" >> beam.WindowInto(
                FixedWindows(self.window), allowed_lateness=Duration(seconds=self.lateness))
            combine = combine.without_defaults()
        summaries = (
            flat
            | "SumByName" >> combine
            | "Summary" >> beam.Map(_with_window)
        )
        if self.path is not None:
            (
                summaries
                | "ToJson" >> beam.Map(lambda summary: json.dumps(summary, indent=2))
                | "Write" >> beam.io.WriteToText(self.path, shard_name_template="")
            )
        return summaries


def summarize(counters: Mapping[str, int]) -> dict[str, Any]:
    """The summary (the shape of run.json; see README) of a run's or a window's counts."""
    feeds: dict[str, Any] = {
        "configured": counters.get("feeds.configured", 0),
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
    # A stream's keyed state: article ids taken in, and forgotten once their TTL passed.
    ids = {"remembered": counters.get("state.remembered", 0),
           "forgotten": counters.get("state.forgotten", 0)}
    extraction = {name.removeprefix("extraction."): n for name, n in sorted(counters.items())
                  if name.startswith("extraction.")}
    # The polled feeds by health class (transforms/health), as the run or window left them.
    health = {name.removeprefix("health."): n for name, n in sorted(counters.items())
              if name.startswith("health.")}
    # Time spent waiting for a host's turn (its --host-interval or Crawl-delay), per host.
    waits = {name.removeprefix(WAIT_TALLY): n for name, n in sorted(counters.items())
             if name.startswith(WAIT_TALLY)}
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
        "counts": dict(sorted(counters.items())),  # every tally's total, to add summaries up
        "feeds": feeds,
        "entries": entries,
        "dead_letters": dict(dead_letters),
        "extraction_methods": extraction,
        "pages_replaced_by_feed_text": fallbacks,
        "topics": dict(topics),
        "feed_health": health,
        "politeness_waits_ms": waits,
        "alerts": {name.removeprefix("alerts."): n for name, n in sorted(counters.items())
                   if name.startswith("alerts.")},
        "ids": ids,
        "accounted": {
            "feeds": feeds_accounted == feeds["configured"],
            "entries": entries_accounted == entries["parsed"],
        },
    }


def summary_line(summary: Mapping[str, Any]) -> str:
    """A summary as one line, for a log: what a stream did in one window."""
    feeds, entries = summary["feeds"], summary["entries"]
    where = summary.get("window")
    span = f"{where['start']} to {where['end']}: " if where else ""
    letters = "; ".join(
        f"{stage} " + ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
        for stage, reasons in sorted(summary["dead_letters"].items()))
    topics = ", ".join(f"{name} {counts['about']}/{counts['mention']}"
                       for name, counts in sorted(summary["topics"].items()))
    ids = summary.get("ids") or {}
    held = (f"; ids remembered {ids['remembered']}, forgotten {ids['forgotten']}"
            if ids.get("remembered") or ids.get("forgotten") else "")
    ok = "ok" if all(summary["accounted"].values()) else "MISMATCH"
    return (f"{span}{feeds['configured']} feeds polled ({feeds['not_modified']} not modified,"
            f" {feeds['dead_letter']} lost), {entries['parsed']} entries: {entries['records']}"
            f" records, {entries['duplicates']} duplicates, {entries['dead_letters']} dead"
            f" letters{f' ({letters})' if letters else ''}"
            f"{f'; topics about/mention: {topics}' if topics else ''}{held} [{ok}]")


def parse_summaries(text: str) -> list[dict[str, Any]]:
    """The summaries in a summary file's text: one (a run's), or several one after another (a
    stream window's file holds a summary per pane)."""
    decoder = json.JSONDecoder()
    summaries, position = [], 0
    while text[position:].strip():
        position += len(text[position:]) - len(text[position:].lstrip())
        summary, position = decoder.raw_decode(text, position)
        summaries.append(summary)
    return summaries
