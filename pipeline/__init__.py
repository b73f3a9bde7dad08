"""newsbeam's entry points and assembly: command line, options, config, the batch graph, demo."""

import transforms  # noqa: F401  (installs its log filter before anything imports Beam)
