"""Reading files through Beam's FileSystems, so a path may be local or in a bucket (gs://...)."""

from __future__ import annotations

from collections.abc import Iterator

from apache_beam.io.filesystems import FileSystems


def matching_paths(pattern: str) -> list[str]:
    """The paths that match a glob pattern, sorted."""
    results = FileSystems.match([pattern])
    return sorted(metadata.path for result in results for metadata in result.metadata_list)


def read_lines(path: str) -> Iterator[str]:
    """The non-blank lines of a UTF-8 text file, stripped."""
    with FileSystems.open(path) as handle:
        for raw in handle:
            line = raw.decode("utf-8").strip()
            if line:
                yield line
