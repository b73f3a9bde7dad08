"""The README's commands are the ones CI and users actually run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _code_blocks() -> list[str]:
    return re.findall(r"```\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = next(b.strip() for b in _code_blocks() if "pytest" in b)
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_readme_demo_command_runs_newsbeam_demo() -> None:
    demo_command = next(b.strip() for b in _code_blocks() if "newsbeam demo" in b)
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
