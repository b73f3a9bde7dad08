"""newsbeam for launchers that run a Python file with `--name=value` options: a Dataflow Flex
Template (its launcher runs FLEX_TEMPLATE_PYTHON_PY_FILE, deploy/launch.py, with the
template's parameters and Dataflow's options) and Airflow's BeamRunPythonPipelineOperator
(`python -m pipeline.cli.launch` with its `pipeline_options`).

Such a launcher cannot put a command before the options, so the command comes from
`--command=run|stream` among them, or from NEWSBEAM_COMMAND in the environment (set in the
Flex Template's image); likewise `--log_level=INFO` (which Airflow needs to see the Dataflow
job's id in the log) goes before the command. A Flex Template's launcher must exit once the
job is submitted, so there the job is detached; NEWSBEAM_SDK_IMAGE (the image's own name, set
when it is built) becomes the workers' `--sdk_container_image` unless one is given.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

from pipeline.cli import UsageError, main

COMMANDS = ("run", "stream")
COMMAND_OPTION = "--command="
LOG_LEVEL_OPTIONS = ("--log_level=", "--log-level=")
# What the Flex Template launcher runs (set in deploy/docker/Dockerfile): where it is set, the
# file runs as a Flex Template's launcher.
FLEX_TEMPLATE_MARKER = "FLEX_TEMPLATE_PYTHON_PY_FILE"


def command_line(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The newsbeam command line for a launcher's `argv` (UsageError if it names no command)."""
    command = environ.get("NEWSBEAM_COMMAND", "")
    options, before = [], []
    for argument in argv:
        if argument.startswith(COMMAND_OPTION):
            command = argument.removeprefix(COMMAND_OPTION)
        elif argument.startswith(LOG_LEVEL_OPTIONS):
            before = [f"--log-level={argument.split('=', 1)[1]}"]
        else:
            options.append(argument)
    if command not in COMMANDS:
        raise UsageError(f"launch: say which command to run with --command=run or"
                         f" --command=stream (or NEWSBEAM_COMMAND), not {command!r}")
    if FLEX_TEMPLATE_MARKER in environ:
        if "--detach" not in options:
            options.append("--detach")
        image = environ.get("NEWSBEAM_SDK_IMAGE")
        if image and not any(o.startswith("--sdk_container_image") for o in options):
            options.append(f"--sdk_container_image={image}")
    return [*before, command, *options]


def launch(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """Run newsbeam as `command_line` says; the exit status."""
    try:
        line = command_line(argv, environ)
    except UsageError as error:
        print(f"newsbeam: error: {error}", file=sys.stderr)
        return 2
    return main(line)


if __name__ == "__main__":  # python -m pipeline.cli.launch, as Airflow's Beam operator runs it
    import os

    sys.exit(launch(sys.argv[1:], os.environ))
