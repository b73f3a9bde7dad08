"""`python -m pipeline.cli`: the newsbeam command."""

from pipeline.cli import console

console()
