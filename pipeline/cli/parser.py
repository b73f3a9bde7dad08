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
