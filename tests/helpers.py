"""Helpers shared by tests: running the batch graph under TestPipeline on loopback."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline

from transforms.fetch import HttpSettings

# Short limits keep failure tests quick; private networks allowed because fixtures are loopback.
LOOPBACK_HTTP = HttpSettings(
    connect_timeout=2.0, read_timeout=2.0, deadline=5.0, retries=1, backoff=0.01,
    allow_private_networks=True,
)


def test_pipeline() -> TestPipeline:
    """A TestPipeline on the FnApiRunner (no runner download, as in production runs)."""
    return TestPipeline(runner="FnApiRunner", options=PipelineOptions([]))


test_pipeline.__test__ = False  # type: ignore[attr-defined]  # not a test itself
