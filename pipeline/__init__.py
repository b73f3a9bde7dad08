"""newsbeam's job around the transforms, in four rooms:

- graph/: what the job runs, read top to bottom like the data flow: the stages both modes
  share (core), and the ends of a batch run (batch) and of a stream (stream);
- job/: setting a job up and running it: its options (options), what both modes set up alike
  (setup), where the workers are (runners), Beam's DoFn introspection done once (dofn_specs),
  the lease on the state (lease), recovery from
  unfinished runs (incremental), a batch run (run_batch), a stream (run_stream), and runs on a
  schedule (schedule);
- cli/: the `newsbeam` command: its parser, the feeds file, the `topics` subcommands, the
  summary it prints, and the entry points of launchers (launch, flex_template);
- demo/: the offline demo's sample site, served on loopback.

Each room imports only from the rooms it stands on (job from graph; cli from job, graph and
demo), and from the rooms of transforms/ through their packages (tests/test_architecture.py).
"""

import transforms  # noqa: F401  (installs its log filter before anything imports Beam)
