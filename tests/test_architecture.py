"""The rooms of transforms/ and the imports between them, as README's "How it is built" draws
them: a room imports from core/ and from the rooms it stands on, only through their packages
(what their __init__.py exports), never from their modules; pipeline/'s rooms import
transforms/ the same way, and one another in one direction only."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Which rooms each room may import from, besides itself.
ALLOWED = {
    "core": set(),
    "fetch": {"core"},
    "feeds": {"core", "fetch"},
    "state": {"core"},
    "extract": {"core"},
    "topics": {"core"},
    "records": {"core"},
    "sinks": {"core"},
    "health": {"core", "state"},
    "alerts": {"core", "state"},
}


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def _room(path: Path) -> str:
    return path.relative_to(ROOT / "transforms").parts[0]


def test_every_module_of_transforms_is_in_a_known_room() -> None:
    rooms = {p.name for p in (ROOT / "transforms").iterdir() if p.is_dir()
             and p.name != "__pycache__"}
    assert rooms == set(ALLOWED)
    loose = [p.name for p in (ROOT / "transforms").glob("*.py") if p.name != "__init__.py"]
    assert loose == []


@pytest.mark.parametrize("path", sorted((ROOT / "transforms").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_rooms_import_only_what_other_rooms_export(path: Path) -> None:
    if path.parent == ROOT / "transforms":
        return
    room = _room(path)
    for line, module in _imports(path):
        parts = module.split(".")
        if parts[0] == "pipeline":
            pytest.fail(f"{path.name}:{line}: transforms/ must not import pipeline/ ({module})")
        if parts[0] != "transforms" or len(parts) < 2 or parts[1] == room:
            continue
        target = parts[1]
        assert target in ALLOWED[room], f"{path.name}:{line}: {room}/ imports {target}/"
        assert len(parts) == 2, (
            f"{path.name}:{line}: {module} reaches into a module of {target}/; import what "
            f"transforms.{target} exports")


# pipeline/'s rooms: the graph (what the job runs), the job (setting it up and running it),
# the command line, and the demo's sample site; each may import the rooms listed.
PIPELINE_ALLOWED = {
    "graph": set(),
    "job": {"graph"},
    "cli": {"job", "graph", "demo", "report"},
    "demo": set(),
    "report": set(),
}


def test_every_module_of_pipeline_is_in_a_known_room() -> None:
    rooms = {p.name for p in (ROOT / "pipeline").iterdir() if p.is_dir()
             and p.name != "__pycache__"}
    assert rooms == set(PIPELINE_ALLOWED)
    loose = [p.name for p in (ROOT / "pipeline").glob("*.py") if p.name != "__init__.py"]
    assert loose == []


@pytest.mark.parametrize("path", sorted((ROOT / "pipeline").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_pipeline_imports_what_the_rooms_export(path: Path) -> None:
    room = path.relative_to(ROOT / "pipeline").parts[0]
    for line, module in _imports(path):
        parts = module.split(".")
        if parts[0] == "transforms":
            assert len(parts) <= 2, f"{path.name}:{line}: {module}: import from the room"
        if parts[0] == "pipeline" and len(parts) > 1 and parts[1] != room:
            assert parts[1] in PIPELINE_ALLOWED.get(room, set()), (
                f"{path.name}:{line}: pipeline/{room}/ imports pipeline/{parts[1]}/")
