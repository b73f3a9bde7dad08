"""Reading config files (the feeds file, a topics file) with clear errors: every problem is one
`ConfigError` whose message names the file, the entry and what is wrong, e.g.
`feeds.yaml: feeds[2].url: 'ftp://x' is not an http(s) URL`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from apache_beam.io.filesystems import FileSystems

from transforms.core.durations import parse_duration

# libyaml's loader where PyYAML was built with it: much faster on a large taxonomy, with the
# same safe subset of YAML.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

T = TypeVar("T")


class ConfigError(Exception):
    """A feeds or topics file that cannot be used; the message is one line for the user."""



def read_config_file(path: str | Path) -> bytes:
    """A config file's bytes: a local path, or a URL of a file system Beam has (gs://... for a
    Dataflow Flex Template, whose launcher has no copy of the file)."""
    if isinstance(path, str) and FileSystems.get_scheme(path) is not None:
        try:
            with FileSystems.open(path) as handle:
                return bytes(handle.read())
        except Exception as exc:  # Beam wraps a file system's errors in its own
            raise ConfigError(f"{path}: cannot read: {str(exc).splitlines()[0]}") from None
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def load_yaml(text: str, source: str) -> Any:
    """The YAML document in `text` (safe subset); `source` names the file in errors."""
    try:
        return yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}") from None


def no_unknown_keys(item: dict[str, Any], allowed: set[str], where: str) -> None:
    """ConfigError naming the first key of `item` not in `allowed`."""
    unknown = sorted(str(k) for k in item if k not in allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def config_duration(value: Any, where: str) -> float:
    """A duration such as 15m or 90 (seconds), in seconds."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{where}: expected a duration such as 15m, got {kind_of(value)}")
    try:
        return parse_duration(str(value))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def config_number(value: Any, where: str) -> float:
    """A non-negative number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{where}: expected a non-negative number, got {value!r}")
    return float(value)


def optional_of(value: Any, kind: type[T], where: str) -> T | None:
    """`value` if it is a `kind`, None if it is missing."""
    if value is None:
        return None
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: expected {kind.__name__}, got {kind_of(value)}")
    return value


def string_list(value: Any, where: str) -> tuple[str, ...]:
    """A list of non-empty strings, stripped."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}: expected a list of non-empty strings")
    return tuple(v.strip() for v in value)


def kind_of(value: Any) -> str:
    """What `value` is, for a message ("nothing" for a missing value)."""
    return "nothing" if value is None else type(value).__name__

