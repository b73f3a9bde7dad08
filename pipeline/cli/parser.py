"""The parser every newsbeam command line goes through."""

from __future__ import annotations

import argparse
from typing import Any


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser that keeps, in public, what it is given: its options by flag and its
    subcommands' parsers by name (argparse keeps both only in private attributes). It also
    takes Beam's templated options (`add_value_provider_argument`, which Beam's option
    classes call) as plain ones: a command line is checked against them, never run as a
    classic template."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.options: dict[str, argparse.Action] = {}
        self.commands: dict[str, CommandParser] = {}  # filled in by whoever adds them
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.options.update(dict.fromkeys(action.option_strings, action))
        return action

    def add_value_provider_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        """A Beam option that a classic template could set at launch, as a plain option."""
        if not args[0].startswith("-"):
            kwargs.setdefault("nargs", "?")  # as Beam takes a positional one
        return self.add_argument(*args, **kwargs)


# The options of Beam's Java FlinkPipelineOptions that its Python SDK does not define, in the
# snake_case a command line gives them: Beam 2.77's FlinkRunner hands options it does not know
# to the job only with --flink_submit_uber_jar (FlinkRunner.create_job_service_handle,
# retain_unknown_options), where the Flink runner reads them.
FLINK_JOB_OPTIONS = frozenset({
    "checkpointing_interval", "checkpointing_mode", "checkpoint_timeout_millis",
    "min_pause_between_checkpoints", "fail_on_checkpointing_errors",
    "number_of_execution_retries", "execution_retry_delay", "object_reuse",
    "state_backend_factory", "disable_metrics", "disable_metric_accumulator",
    "externalized_checkpoints_enabled", "retain_externalized_checkpoints_on_cancellation",
    "max_bundle_size", "max_bundle_time_mills", "shutdown_sources_on_final_watermark",
    "latency_tracking_interval", "auto_watermark_interval", "execution_mode_for_batch",
    "savepoint_path", "allow_non_restored_state", "auto_balance_write_files_sharding_enabled",
})


def flink_job_options(unknown: list[str]) -> tuple[list[str], list[str]]:
    """`unknown` command-line words split into the Flink runner's own options (each with its
    value, as `--name=value` or `--name value`) and the rest."""
    flink, rest = [], []
    words = iter(unknown)
    for word in words:
        name = word.removeprefix("--").split("=", 1)[0]
        if word.startswith("--") and name in FLINK_JOB_OPTIONS:
            flink.append(word)
            if "=" not in word:
                value = next(words, None)
                if value is not None:
                    flink.append(value)
        else:
            rest.append(word)
    return flink, rest
