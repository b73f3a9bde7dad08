"""The command line's own error."""


class UsageError(Exception):
    """A command-line problem: printed as one line, exit status 2."""
