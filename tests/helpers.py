"""Helpers shared by tests: running the batch graph under TestPipeline on loopback."""

from __future__ import annotations

import json
from pathlib import Path

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline

from transforms.fetch import HttpSettings

# A stream launch's id, as `newsbeam stream` makes one (a run id), for streams built in tests.
LAUNCH = "20261207T000000000Z"

# Short limits keep failure tests quick; private networks allowed because fixtures are loopback.
LOOPBACK_HTTP = HttpSettings(
    connect_timeout=2.0, read_timeout=2.0, deadline=5.0, retries=1, backoff=0.01,
    allow_private_networks=True,
)


def test_pipeline() -> TestPipeline:
    """A TestPipeline on the FnApiRunner (no runner download, as in production runs)."""
    return TestPipeline(runner="FnApiRunner", options=PipelineOptions([]))


test_pipeline.__test__ = False  # type: ignore[attr-defined]  # not a test itself


def window_summaries(out: Path) -> list[dict]:
    """A stream's per-window summaries in `out` (a window's file may hold several panes'), in
    window order."""
    found = []
    for path in sorted(out.glob("summary-*.json")):
        text, decoder, position = path.read_text(), json.JSONDecoder(), 0
        while text[position:].strip():
            position += len(text[position:]) - len(text[position:].lstrip())
            summary, position = decoder.raw_decode(text, position)
            found.append(summary)
    return sorted(found, key=lambda summary: summary.get("window", {}).get("start", ""))
