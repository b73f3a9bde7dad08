"""The file a launcher runs with --name=value options: a Dataflow Flex Template (see
deploy/dataflow/) or Airflow's BeamRunPythonPipelineOperator (see deploy/airflow/). The command
comes from --command=run|stream or NEWSBEAM_COMMAND; see pipeline/cli/launch.py."""

import os
import sys

from pipeline.cli.launch import launch

if __name__ == "__main__":
    sys.exit(launch(sys.argv[1:], os.environ))
