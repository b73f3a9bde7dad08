"""newsbeam's Beam building blocks (PTransforms, DoFns) and the plain logic they wrap, in one
room per stage (core, fetch, feeds, state, extract, topics, records, sinks)."""

import ast
import importlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


class _BeamGcpImportNoise(logging.Filter):
    """apache-beam installed without its [gcp] extra logs a warning about BigQuery client
    libraries on the root logger when it is imported, in every process that imports it (the
    parsing and extraction workers do not). Only the BigQuery sink needs them, and it says so
    itself when they are missing, so for a person running newsbeam the warning is noise;
    every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


logging.getLogger().addFilter(_BeamGcpImportNoise())


def lazy_exports(package: str, init_file: str) -> tuple[Callable[[str], Any], list[str]]:
    """`__getattr__` and `__all__` for a room whose exports are the names its `__init__.py`
    imports under `if TYPE_CHECKING:`. Each is imported on first use (PEP 562), so importing one
    module of a room does not import the others: the worker processes load the plain parsing
    and extraction code without Beam, and `newsbeam topics` starts without Beam."""
    tree = ast.parse(Path(init_file).read_text(encoding="utf-8"), init_file)
    where: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom) and statement.module:
                    for alias in statement.names:
                        where[alias.asname or alias.name] = statement.module

    def __getattr__(name: str) -> Any:  # noqa: N807  (the module hook's own name)
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next lookup is a plain attribute
        return value

    return __getattr__, sorted(where)
