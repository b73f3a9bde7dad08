"""deploy/airflow's DAGs run by Airflow itself (deploy/airflow/requirements.txt, in an
environment of its own that .ci/services installs): the direct-runner DAG polls the demo site
on loopback and writes records to PostgreSQL and files, twice (the second run finds nothing
new through the state); the Dataflow DAG's task renders with no template left.

Airflow and the task it starts are Python processes of their own: tests/subprocess_guard puts
the suite's loopback-only guard in each, and what it refused is read back from a file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pipeline import demo
from tests.conftest import POSTGRES_URI

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
GUARD = ROOT / "tests" / "subprocess_guard"


@pytest.fixture(scope="module")
def airflow_home(airflow: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Airflow home with its metadata database (SQLite) made."""
    home = tmp_path_factory.mktemp("airflow")
    _airflow(airflow, home, ["db", "migrate"], {})
    return home


def _airflow(airflow: str, home: Path, args: list[str],
             settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`airflow ARGS` on the DAGs of deploy/airflow, with variables and connections given as
    Airflow reads them from the environment (AIRFLOW_VAR_*, AIRFLOW_CONN_*)."""
    guard_log = home / f"guard-{uuid.uuid4().hex}.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "deploy" / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        # Airflow's default looks the host's name up, which may ask a DNS server.
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "socket.gethostname",
        "SCARF_ANALYTICS": "false", "DO_NOT_TRACK": "true",  # no usage reports
        "PYTHONDONTWRITEBYTECODE": "1",  # nothing left in deploy/airflow
        "PYTHONPATH": str(GUARD), "NEWSBEAM_GUARD_LOG": str(guard_log),
        # The task runs `python3 -m pipeline.cli.launch`: newsbeam's environment is where the
        # task runs (deploy/airflow/README.md), Airflow's own is where Airflow runs.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **settings,
    }
    done = subprocess.run([airflow, *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=home)
    refused = guard_log.read_text() if guard_log.exists() else ""
    assert not refused, f"Airflow or its task tried to leave loopback:\n{refused}"
    assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout[-4000:]}" \
                                 f"\n{done.stderr[-4000:]}"
    return done


@pytest.fixture
def database(postgres_uri: str) -> Iterator[str]:
    """A PostgreSQL database of its own (the DAG uses newsbeam's default table names)."""
    name = f"airflow_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URI, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(POSTGRES_URI, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _count(database: str, table: str) -> int:
    with psycopg.connect(POSTGRES_URI.rsplit("/", 1)[0] + f"/{database}") as connection:
        (count,) = connection.execute(f"SELECT count(*) FROM {table}").fetchone()  # type: ignore[misc]
    return int(count)


def test_the_direct_dag_runs_newsbeam_against_the_demo_site(
    airflow: str, airflow_home: Path, database: str, tmp_path: Path,
) -> None:
    site = demo.sample_server()
    try:
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text("feeds:\n" + "".join(
            f"  - url: {site.url('/feeds/' + name)}\n" for name, _, _ in demo.FEED_FILES))
        out = tmp_path / "out"
        settings = {
            "AIRFLOW_VAR_NEWSBEAM_FEEDS": str(feeds),
            "AIRFLOW_VAR_NEWSBEAM_TOPICS": str(ROOT / "transforms" / "topics"
                                               / "default_topics.yaml"),
            "AIRFLOW_VAR_NEWSBEAM_OUT": str(out),
            "AIRFLOW_VAR_NEWSBEAM_USER_AGENT": "newsbeam-test (+mailto:test@example.org)",
            "AIRFLOW_VAR_NEWSBEAM_ALLOW_PRIVATE_NETWORKS": "true",  # the site is on loopback
            # The connection has no password (trust auth here; ~/.pgpass elsewhere).
            "AIRFLOW_CONN_NEWSBEAM_POSTGRES": json.dumps({
                "conn_type": "postgres", "host": "127.0.0.1", "port": 5432,
                "schema": database, "login": "postgres"}),
        }
        first = _airflow(airflow, airflow_home, ["dags", "test", "newsbeam_direct",
                                                 "2026-12-07T00:00:00+00:00"], settings)
        run = json.loads((out / "run.json").read_text())
        assert run["runner"] == "FnApiRunner" and run["entries"]["records"] == 6
        assert _count(database, "newsbeam_articles") == 6
        assert _count(database, "newsbeam_dead_letters") == 3
        assert len(list(out.glob("articles-*.jsonl"))) == 1
        assert "--allow_private_networks=true" in first.stdout + first.stderr
        # The next slot: the same feeds, nothing new (their validators and the ids written
        # are in PostgreSQL), so nothing is written twice.
        _airflow(airflow, airflow_home, ["dags", "test", "newsbeam_direct",
                                         "2026-12-07T00:30:00+00:00"], settings)
    finally:
        site.stop()
    second = json.loads((out / "run.json").read_text())
    assert second["run_id"] != run["run_id"] and second["entries"]["records"] == 0
    assert _count(database, "newsbeam_articles") == 6
    written = [line for path in out.glob("articles-*.jsonl") for line in path.open()]
    assert len(written) == 6


def test_the_dataflow_dag_renders_every_template(airflow: str, airflow_home: Path) -> None:
    settings = {
        "AIRFLOW_VAR_NEWSBEAM_TOPICS": "gs://news-bucket/config/topics.yaml",
        "AIRFLOW_VAR_NEWSBEAM_USER_AGENT": "newsbeam (+https://news.example.org/crawler)",
        "AIRFLOW_VAR_NEWSBEAM_BUCKET": "news-bucket",
        "AIRFLOW_VAR_NEWSBEAM_BIGQUERY_TABLE": "news-project:news.articles",
        "AIRFLOW_VAR_NEWSBEAM_DATAFLOW_STATE": "postgresql://newsbeam@10.0.0.5:5432/news",
        "AIRFLOW_VAR_NEWSBEAM_IMAGE": "europe-west1-docker.pkg.dev/news-project/nb/newsbeam:1",
        "AIRFLOW_VAR_NEWSBEAM_REGION": "europe-west1",
    }
    rendered = _airflow(airflow, airflow_home, ["tasks", "render", "newsbeam_dataflow",
                                                "newsbeam_run", "2026-12-07"], settings).stdout
    assert "{{" not in rendered and "}}" not in rendered
    for value in ("gs://news-bucket/config/feeds.yaml", "bigquery:news-project:news.articles",
                  "'location': 'europe-west1'", "'sdk_container_image': 'europe-west1-docker"):
        assert value in rendered, value
