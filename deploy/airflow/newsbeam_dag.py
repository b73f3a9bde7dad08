"""newsbeam's batch job on Airflow, with the Apache Beam provider's BeamRunPythonPipelineOperator:
one task per run, each run incremental through the PostgreSQL state.

Two DAGs, the same job on two runners:
- `newsbeam_direct`: Beam's DirectRunner on the Airflow worker, every 30 minutes;
- `newsbeam_dataflow`: Dataflow, every hour, workers in the newsbeam image (deploy/docker/).

The task runs `python -m pipeline.cli.launch --command=run --feeds=... ...`
(pipeline/cli/launch.py), so newsbeam must be installed where the task runs; see
deploy/airflow/README.md for that and for the connection and variables the DAGs read.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow import DAG
from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator

DEFAULT_ARGS = {
    "owner": "newsbeam",
    # A run that failed committed nothing: a retry redoes its work and writes nothing twice.
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(minutes=50),
}

# Options both runners share; Airflow renders the templates when the task runs.
COMMON_OPTIONS = {
    "command": "run",
    # Beam's INFO lines include the Dataflow job's id, which the operator watches for.
    "log_level": "INFO",
    "topics": "{{ var.value.newsbeam_topics }}",
    "http_user_agent": "{{ var.value.newsbeam_user_agent }}",
}

# The database of the connection newsbeam_postgres, without its password: the task's command
# line is visible to every user of the worker (`ps`). libpq reads the password from the
# worker's password file (~/.pgpass, or PGPASSFILE), see deploy/airflow/README.md.
POSTGRES_URI = (
    "postgresql://{{ conn.newsbeam_postgres.login }}@{{ conn.newsbeam_postgres.host }}"
    ":{{ conn.newsbeam_postgres.port }}/{{ conn.newsbeam_postgres.schema }}"
)

with DAG(
    dag_id="newsbeam_direct",
    description="newsbeam run on Beam's DirectRunner, on the Airflow worker",
    schedule="*/30 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,  # a missed slot is made up by the next run, which fetches what is new
    max_active_runs=1,  # runs never overlap: each starts from what the last one committed
    default_args=DEFAULT_ARGS,
    tags=["newsbeam"],
):
    BeamRunPythonPipelineOperator(
        task_id="newsbeam_run",
        # newsbeam's own default, in this process with extraction processes beside it. (Beam
        # 2.77's DirectRunner would first download its Prism runner from GitHub.)
        runner="FnApiRunner",
        py_file="pipeline.cli.launch",
        py_options=["-m"],
        pipeline_options={
            **COMMON_OPTIONS,
            "feeds": "{{ var.value.newsbeam_feeds }}",
            "out": "{{ var.value.newsbeam_out }}",
            "state": POSTGRES_URI,
            "sink": [POSTGRES_URI, "jsonl:{{ var.value.newsbeam_out }}"],
            "dead_letters": POSTGRES_URI,
            "extract_processes": 2,
            # "true" where the feeds are on the worker's own network (an intranet).
            "allow_private_networks":
                "{{ var.value.get('newsbeam_allow_private_networks', 'false') }}",
        },
    )

with DAG(
    dag_id="newsbeam_dataflow",
    description="newsbeam run on Dataflow",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["newsbeam"],
):
    BeamRunPythonPipelineOperator(
        task_id="newsbeam_run",
        runner="DataflowRunner",
        py_file="pipeline.cli.launch",
        py_options=["-m"],
        pipeline_options={
            **COMMON_OPTIONS,
            "feeds": "gs://{{ var.value.newsbeam_bucket }}/config/feeds.yaml",
            "out": "gs://{{ var.value.newsbeam_bucket }}/news",
            # The database password stays in Secret Manager (password_secret in the URI), out
            # of the job's options, which anyone who can see the job can read.
            "state": "{{ var.value.newsbeam_dataflow_state }}",
            "sink": ["bigquery:{{ var.value.newsbeam_bigquery_table }}",
                     "parquet:gs://{{ var.value.newsbeam_bucket }}/news"],
            "dead_letters": "jsonl:gs://{{ var.value.newsbeam_bucket }}/news",
            "temp_location": "gs://{{ var.value.newsbeam_bucket }}/tmp",
            "sdk_container_image": "{{ var.value.newsbeam_image }}",
        },
        # A dict, which Airflow renders whole and shows rendered (a DataflowConfiguration
        # renders only job_name, location and gcp_conn_id). The project is the Google Cloud
        # connection's own.
        dataflow_config={
            "job_name": "newsbeam-run",
            "location": "{{ var.value.newsbeam_region }}",
            "gcp_conn_id": "google_cloud_default",
            "wait_until_finished": True,
        },
    )
