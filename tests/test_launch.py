"""Launchers that run a file with --name=value options (a Dataflow Flex Template, Airflow's
Beam operator) get the newsbeam command line they mean."""

from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.cli import UsageError
from pipeline.cli.launch import command_line, launch
from pipeline.job.options import sinks

FLEX = {"FLEX_TEMPLATE_PYTHON_PY_FILE": "/opt/newsbeam/launch.py", "NEWSBEAM_COMMAND": "stream",
        "NEWSBEAM_SDK_IMAGE": "registry.example.org/newsbeam:1"}


def test_airflow_names_the_command_and_the_log_level_among_the_options() -> None:
    line = command_line(["--command=run", "--feeds=f.yaml", "--log_level=INFO", "--out=o"], {})
    assert line == ["--log-level=INFO", "run", "--feeds=f.yaml", "--out=o"]


def test_a_flex_template_launcher_detaches_and_gives_the_workers_its_image() -> None:
    assert command_line(["--feeds=gs://b/f.yaml"], FLEX) == [
        "stream", "--feeds=gs://b/f.yaml", "--detach",
        "--sdk_container_image=registry.example.org/newsbeam:1"]
    # An image named at launch wins; an explicit --command wins over the image's.
    line = command_line(["--command=run", "--sdk_container_image=other:2"], FLEX)
    assert line == ["run", "--sdk_container_image=other:2", "--detach"]


def test_without_a_command_the_launcher_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(UsageError, match="--command=run or --command=stream"):
        command_line(["--feeds=f.yaml"], {})
    assert launch(["--command=serve"], {}) == 2
    assert capsys.readouterr().err.startswith("newsbeam: error: launch: say which command")


def test_one_sink_option_may_name_several_sinks() -> None:
    # A Flex Template passes each parameter once; URIs have no spaces.
    options = PipelineOptions(["--sink=bigquery:news-project:news.articles  parquet:gs://b/news",
                               "--sink=jsonl:/srv/news"])
    records, _ = sinks(options, "out")
    assert [sink.family for sink in records] == ["bigquery", "parquet", "jsonl"]
