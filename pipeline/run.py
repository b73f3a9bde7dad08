"""Run the batch job once and write its summary beside the outputs."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from pipeline.batch import build_batch
from pipeline.options import DEFAULT_RUNNER, http_settings
from pipeline.summary import build_summary, read_counters
from transforms.records import Feed, format_utc
from transforms.topics import Taxonomy

SUMMARY_FILE = "run.json"


def run_batch(
    options: PipelineOptions, feeds: tuple[Feed, ...], taxonomy: Taxonomy, out: str
) -> dict[str, Any]:
    """Run one batch pass over `feeds`, wait for it, and return (and save) the run summary."""
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = DEFAULT_RUNNER
    started = datetime.now(UTC)
    clock = time.monotonic()
    pipeline = beam.Pipeline(options=options)
    build_batch(pipeline, feeds, taxonomy, http_settings(options), out)
    result = pipeline.run()
    result.wait_until_finish()
    summary = build_summary(read_counters(result), feeds_configured=len(feeds))
    summary.update(
        started_at=format_utc(started),
        duration_seconds=round(time.monotonic() - clock, 2),
        runner=str(standard.runner),
        taxonomy_version=taxonomy.version,
        out=out,
    )
    # Through Beam's FileSystems, so --out may be a bucket (gs://...) as well as a local folder.
    with FileSystems.create(FileSystems.join(out, SUMMARY_FILE)) as handle:
        handle.write((json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    return summary
