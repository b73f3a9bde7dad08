"""Launchers that run a file with --name=value options (a Dataflow Flex Template, Airflow's
Beam operator) get the newsbeam command line they mean."""

from __future__ import annotations

import json

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.cli import UsageError
from pipeline.cli.launch import command_line, launch
from pipeline.job.options import sinks
from pipeline.job.setup import set_up, submitted
from transforms.topics import load_taxonomy

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


class _DataflowResultWithoutAJob:
    """What Beam 2.77's DataflowRunner returns with --template_location: the job's graph was
    written there, and there is no job (`has_job` is false; job_id() would raise)."""

    has_job = False

    def job_id(self) -> str:
        raise AttributeError("'NoneType' object has no attribute 'id'")


class _Pipeline:
    def __init__(self, template: str) -> None:
        self.options = PipelineOptions([f"--template_location={template}"])

    def run(self) -> _DataflowResultWithoutAJob:
        return _DataflowResultWithoutAJob()


def test_a_flex_template_launch_records_where_the_job_graph_went(tmp_path) -> None:
    # The Flex Template's launcher runs newsbeam with --template_location: Beam writes the
    # job's graph there and returns a result without a job, which must not fail the launch.
    job = set_up(PipelineOptions(["--state=none"]), "run", load_taxonomy(), str(tmp_path))
    template = str(tmp_path / "job_object")
    details = submitted(job, _Pipeline(template), {"run_id": "r1"}, "run.json")
    assert details["status"] == "template_written" and details["template"] == template
    assert "job_id" not in details
    assert json.loads((tmp_path / "run.json").read_text()) == details
