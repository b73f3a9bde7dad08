"""The metadata of newsbeam's Dataflow Flex Templates, derived from the command line itself.

Each template parameter is a newsbeam option of `run` or `stream`, under its `--name_spelling`,
with the option's own help text, so the templates cannot drift from the CLI;
deploy/dataflow/*-metadata.json are this module's output, and a test checks they still are:

    python -m pipeline.cli.flex_template run > deploy/dataflow/run-metadata.json
    python -m pipeline.cli.flex_template stream > deploy/dataflow/stream-metadata.json

A template passes every parameter as `--name=value`: switches are parameters of their own
type, `--force=true` (options.SWITCH). Those that make no sense on Dataflow (--detach, which
the launcher sets, and --shared-filesystem) are left out.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pipeline.cli import command_parser

# A sink URI a Dataflow job can use: files in a bucket, BigQuery, PostgreSQL, Redis.
_SINK = (r"(?:(?:jsonl|parquet):gs://\S+|bigquery:[\w.-]+:\w+\.[\w$-]+"
         r"|postgres(?:ql)?://\S+|redis://\S+)")
_GCS_OR_IMAGE_FILE = r"^(?:gs://|/)\S+$"
_COUNT = r"^[0-9]+$"
_SECONDS = r"^[0-9]+(?:\.[0-9]+)?$"
_DURATION = r"^(?:[0-9]+(?:\.[0-9]+)?|(?:[0-9]+(?:\.[0-9]+)?[smhd])+)$"
_SWITCH = r"^(?:true|false)$"

# name: (label, regex, parameter type, required)
_PARAMETERS: dict[str, tuple[str, str, str, bool]] = {
    "feeds": ("Feeds file", _GCS_OR_IMAGE_FILE, "GCS_READ_FILE", True),
    "topics": ("Topics file", _GCS_OR_IMAGE_FILE, "GCS_READ_FILE", False),
    "out": ("Output folder", r"^gs://\S+$", "GCS_WRITE_FOLDER", True),
    "sink": ("Record sinks", f"^{_SINK}(?: +{_SINK})*$", "TEXT", False),
    "dead_letters": ("Dead-letter sink", f"^{_SINK}$", "TEXT", False),
    "state": ("State store", r"^(?:postgres(?:ql)?://\S+|none)$", "TEXT", True),
    "http_user_agent": ("User-Agent", r"^\S.*$", "TEXT", False),
    "host_concurrency": ("Requests per host at a time", _COUNT, "NUMBER", False),
    "host_interval": ("Seconds between requests to a host", _SECONDS, "NUMBER", False),
    "fetch_concurrency": ("Requests per worker process at a time", _COUNT, "NUMBER", False),
    "extract_processes": ("Parsing and extraction processes per worker process", _COUNT,
                          "NUMBER", False),
    "extract_timeout": ("Time limit per page or feed (seconds)", _SECONDS, "NUMBER", False),
    "http_timeout": ("Connect and read timeout (seconds)", _SECONDS, "NUMBER", False),
    "http_deadline": ("Time limit per request (seconds)", _SECONDS, "NUMBER", False),
    "ignore_robots": ("Ignore robots.txt", _SWITCH, "BOOLEAN", False),
    "allow_private_networks": ("Fetch from private networks", _SWITCH, "BOOLEAN", False),
    "force": ("Ignore the state", _SWITCH, "BOOLEAN", False),
    "poll_interval": ("Poll interval", _DURATION, "TEXT", False),
    "window": ("Output window", _DURATION, "TEXT", False),
    "dedup_ttl": ("How long an article id is remembered", _DURATION, "TEXT", False),
    "retry_after": ("Retry after a passing failure", _DURATION, "TEXT", False),
    "stop_after": ("Stop after", _DURATION, "TEXT", False),
}

_DESCRIPTIONS = {
    "run": "newsbeam's batch job: every feed once, every new article fetched, extracted, tagged"
    " by topic and written to the sinks; failures to the dead-letter sink. Incremental through"
    " the PostgreSQL state.",
    "stream": "newsbeam's streaming job: every feed polled when due, each new article written"
    " once, outputs cut per window of ingestion time; runs until drained.",
}


def template_metadata(command: str) -> dict[str, Any]:
    """The Flex Template metadata for `newsbeam COMMAND` (run or stream)."""
    parser = command_parser(command)
    parameters = []
    for name, (label, regex, kind, required) in _PARAMETERS.items():
        action = parser.options.get(f"--{name}")
        if action is None:
            continue  # an option of the other command
        parameter: dict[str, Any] = {
            "name": name, "label": label, "helpText": action.help, "regexes": [regex],
            "paramType": kind,
        }
        if not required:
            parameter["isOptional"] = True
        parameters.append(parameter)
    metadata: dict[str, Any] = {
        "name": f"newsbeam {command}",
        "description": _DESCRIPTIONS[command],
        "parameters": parameters,
    }
    if command == "stream":
        metadata.update(streaming=True, supportsExactlyOnce=True, supportsAtLeastOnce=False)
    return metadata


if __name__ == "__main__":
    json.dump(template_metadata(sys.argv[1]), sys.stdout, indent=2)
    sys.stdout.write("\n")
