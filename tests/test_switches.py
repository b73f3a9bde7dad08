"""Switches take an explicit value too, as launchers that pass every option as --name=value
(a Flex Template, Airflow's Beam operator) give them."""

from __future__ import annotations

import pytest

from pipeline.cli import UsageError, check_command_line, command_parser

SWITCHES = ("force", "ignore_robots", "allow_private_networks", "shared_filesystem", "detach")


@pytest.mark.parametrize("switch", SWITCHES)
def test_a_switch_is_on_alone_or_as_its_value_says(switch: str) -> None:
    parser = command_parser("run")
    flag = f"--{switch}"
    assert getattr(parser.parse_args(["--feeds=f"]), switch) is False
    assert getattr(parser.parse_args(["--feeds=f", flag]), switch) is True
    for value, meant in (("true", True), ("True", True), ("false", False), ("0", False)):
        assert getattr(parser.parse_args(["--feeds=f", f"{flag}={value}"]), switch) is meant
    # Alone before another option it does not take that option as its value.
    assert getattr(parser.parse_args([flag, "--feeds=f"]), switch) is True


def test_a_switch_refuses_a_value_that_is_not_true_or_false() -> None:
    with pytest.raises(UsageError, match="expected true or false, not 'maybe'"):
        check_command_line(["run", "--feeds=f.yaml", "--force=maybe"])
