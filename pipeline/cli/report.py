"""`newsbeam report`: one self-contained HTML page of what runs and streams wrote."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.cli.usage import UsageError
from pipeline.job.options import DEFAULT_OUT, duration
from transforms.state import DEFAULT_STATE


def add_report_command(commands: Any) -> None:
    """Add `report` to the command line's subparsers, `commands`."""
    report = commands.add_parser(
        "report", allow_abbrev=False, help="write an HTML report of what runs and streams wrote",
        description="Read the records, dead letters and summaries in an output folder, and each"
        " feed's health, and write one HTML page that opens offline: articles by topic and"
        " dead letters by reason over time, feeds by health class and the worst ones, politeness"
        " waits per host, extraction methods.")
    report.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                        help=f"the folder runs and streams wrote to (default: {DEFAULT_OUT})")
    report.add_argument("--since", metavar="DURATION", type=duration, default=None,
                        help="only what came in the last DURATION (6h, 7d, ...; default: all)")
    report.add_argument("--state", metavar="URI", default=DEFAULT_STATE,
                        help="the state store to read the feeds' health from, as the runs'"
                        f" --state (default: {DEFAULT_STATE}; none: the --feed-health files in"
                        " the folder)")
    report.add_argument("--html", metavar="FILE", required=True, help="the page to write")


def run_report(args: argparse.Namespace) -> int:
    """Write the report `args` ask for; 0."""
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise UsageError("report: the charts need Plotly: pip install 'newsbeam[report]'"
                         " (or -e '.[report]' in a clone)") from None
    from pipeline.report.data import load
    from pipeline.report.page import render

    if not Path(args.out).is_dir() and "://" not in args.out:
        raise UsageError(f"report: --out {args.out} is not a folder")
    since = (datetime.fromtimestamp(time.time() - args.since, UTC)
             if args.since is not None else None)
    data = load(args.out, since, None if args.state == "none" else args.state)
    page = render(data, args.out)
    try:
        Path(args.html).write_text(page, encoding="utf-8")
    except OSError as error:
        raise UsageError(f"report: --html {args.html}: {error.strerror}") from None
    print(f"report: {args.html} ({len(data.records)} articles, {len(data.dead_letters)} dead"
          f" letters, {len(data.health)} feeds)")
    return 0
