"""The README's commands are the ones CI and users actually run: every command it shows
(its ```sh blocks) either runs here, offline, or is named below with why it cannot (a cloud,
a cluster or the internet); the benchmarks' commands print figures and are run by hand."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CORPUS

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

# Commands of the README that cannot run on a machine without a network, and why (the start
# of each command is enough to tell it).
ELSEWHERE = {
    "python3 -m venv .venv && .venv/bin/pip install":
        "installs from the package index (.ci/run runs the test command; tests/test_cli.py"
        " runs the demo command's last step, newsbeam demo)",
    "python -m apache_beam.runners.portability.local_job_service_main":
        "a job service for a cluster example whose state is on a host named db",
    "python -m apache_beam.runners.worker.worker_pool_main": "the same example's worker pool",
    "newsbeam run --feeds feeds.yaml --out /srv/news": "the same example: PostgreSQL at db",
    "newsbeam stream --feeds feeds.yaml --out gs://": "Dataflow: a Google Cloud project",
    "newsbeam stream --feeds feeds.yaml --out s3://": "Flink: a cluster and a bucket",
    "newsbeam stream --feeds feeds.yaml --out news --runner PrismRunner":
        "runs until stopped, over your own feeds file",
    "newsbeam run --feeds examples/feeds.yaml": "polls real feeds on the internet",
    "newsbeam report --out newsbeam-out":
        "reads what earlier runs wrote there (tests/test_report.py reports on two runs)",
}


def _code_blocks(language: str = "") -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", (ROOT / "README.md").read_text(),
                      flags=re.S | re.M)


def _commands() -> list[str]:
    """Every command in the README's ```sh blocks, continuation lines joined, comments out."""
    commands = []
    for block in _code_blocks("sh"):
        text = re.sub(r"\\\n\s*", " ", block)
        commands += [line.strip() for line in text.splitlines()
                     if line.strip() and not line.lstrip().startswith("#")]
    return commands


def _offline(command: str) -> bool:
    return not any(command.startswith(start) for start in ELSEWHERE)


def test_every_command_the_readme_shows_is_run_here_or_says_why_not() -> None:
    commands = _commands()
    assert commands, "the README shows its commands in ```sh blocks"
    for start in ELSEWHERE:
        assert any(command.startswith(start) for command in commands), (
            f"no longer in the README: {start}")


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c in _commands() if _offline(c)])
def test_the_readme_command_runs_offline(command: str, tmp_path: Path) -> None:
    if "../shared/corpus" in command and not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (it lives beside the repository)")
    command = command.replace("../shared/corpus", str(CORPUS)).replace(".venv/bin/", "")
    environment = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=tmp_path,
                          env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), f"{command}: printed nothing"


def test_the_readme_figure_of_topic_quality_is_what_the_command_prints() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (it lives beside the repository)")
    readme = (ROOT / "README.md").read_text()
    measured = readme[readme.index("## Measured"):]
    item = next(item for item in re.split(r"\n(?=- )", measured) if "--tune-on" in item)
    line = " ".join(item.split())
    import contextlib
    import io

    from pipeline.cli import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["topics", "eval", str(CORPUS / "topics" / "dev2.jsonl"),
                     "--tune-on", str(CORPUS / "topics" / "dev.jsonl")]) == 0
    for topic, f1 in re.findall(r"^(taiwan|trade|fentanyl)\s+\S+\s+\S+\s+(\S+)",
                                printed.getvalue(), flags=re.M):
        assert f"{topic} {f1}" in line, (topic, f1, line)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = next(b.strip() for b in _code_blocks("sh") if "pytest" in b)
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_readme_demo_command_runs_newsbeam_demo() -> None:
    demo_command = next(b.strip() for b in _code_blocks("sh") if "newsbeam demo" in b)
    assert demo_command.endswith(".venv/bin/newsbeam demo")
    assert "pip install" in demo_command


def test_readme_lists_every_dead_letter_stage_reason_and_record_field() -> None:
    from transforms.core import REASONS, STAGES, Record

    readme = (ROOT / "README.md").read_text()
    for stage in STAGES:
        assert f"`{stage}`" in readme, stage
    for reason in REASONS:
        assert f"`{reason}`" in readme, reason
    for field in Record.__dataclass_fields__:
        assert f"`{field}`" in readme, field


def test_readme_names_every_published_source_and_extraction_method() -> None:
    from transforms.core import EXTRACTION_METHODS, PUBLISHED_SOURCES

    readme = (ROOT / "README.md").read_text()
    for value in PUBLISHED_SOURCES + EXTRACTION_METHODS:
        assert f"`{value}`" in readme, value
