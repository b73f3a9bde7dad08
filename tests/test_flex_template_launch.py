"""The Flex Template's launch, as Google's launcher runs it, up to where Beam would contact
Google: deploy/launch.py with the Dataflow options the launcher adds (gs:// staging and
--template_location) and the template's parameters, under Beam's own DataflowRunner.

Google is not here, so its doors are stood in for and nothing else: the credentials come
from a service-account key file (as GOOGLE_APPLICATION_CREDENTIALS gives them anywhere off
Google's machines), the bucket soft-delete check answers "off", and Cloud Storage is a folder:
what Beam uploads (the staged files, the job's graph at --template_location) and what newsbeam
reads and writes through Beam's FileSystems at gs:// land there. The database is PostgreSQL on
loopback; BigQuery, which the launcher would create a table in, is left out. Every other
socket is refused by the suite's guard, so any other call to Google fails the test."""

from __future__ import annotations

import json
import posixpath
import runpy
import sys
from pathlib import Path
from typing import Any, BinaryIO

import psycopg
import pytest
from apache_beam.io.filesystem import MatchResult
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.gcp import gcsio
from apache_beam.io.localfilesystem import LocalFileSystem
from apache_beam.runners.dataflow.internal import apiclient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PROJECT, REGION = "news-project", "europe-west1"
STAGING = f"gs://dataflow-staging-{REGION}-123456789/staging"
LAUNCH = f"{STAGING}/template_launches/2026-12-07_01_02_03-42"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/newsbeam/newsbeam-run:0.1.0"


def _service_account_key(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": PROJECT, "private_key_id": "0" * 40,
        "private_key": pem, "client_email": f"launcher@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"}))
    return path


class _BucketsInAFolder:
    """Cloud Storage as a folder, gs://bucket/name being <folder>/bucket/name: what Beam's
    FileSystems hands a gs:// path to. (Not a FileSystem subclass: Beam finds every subclass
    and would then see two for file paths.)"""

    def __init__(self, folder: Path) -> None:
        self._folder, self._local = folder, LocalFileSystem(pipeline_options=None)

    def _path(self, path: str) -> str:
        return str(self._folder / path.removeprefix("gs://"))

    def join(self, base: str, *paths: str) -> str:
        return posixpath.join(base, *paths)

    def split(self, path: str) -> tuple[str, str]:
        return posixpath.split(path)  # type: ignore[return-value]

    def mkdirs(self, path: str) -> None:
        Path(self._path(path)).mkdir(parents=True, exist_ok=True)

    def create(self, path: str, *args: Any, **kwargs: Any) -> BinaryIO:
        Path(self._path(path)).parent.mkdir(parents=True, exist_ok=True)
        return self._local.create(self._path(path), *args, **kwargs)  # type: ignore[no-any-return]

    def open(self, path: str, *args: Any, **kwargs: Any) -> BinaryIO:
        return self._local.open(self._path(path), *args, **kwargs)  # type: ignore[no-any-return]

    def exists(self, path: str) -> bool:
        return self._local.exists(self._path(path))  # type: ignore[no-any-return]

    def rename(self, sources: list[str], destinations: list[str]) -> None:
        for destination in destinations:
            Path(self._path(destination)).parent.mkdir(parents=True, exist_ok=True)
        self._local.rename([self._path(p) for p in sources],
                           [self._path(p) for p in destinations])

    def delete(self, paths: list[str]) -> None:
        self._local.delete([self._path(p) for p in paths])

    def match(self, patterns: list[str], limits: list[int] | None = None) -> list[MatchResult]:
        results = self._local.match([self._path(p) for p in patterns], limits)
        for pattern, result in zip(patterns, results, strict=True):
            result.pattern = pattern
            for found in result.metadata_list:
                found.path = "gs://" + str(Path(found.path).relative_to(self._folder))
        return results  # type: ignore[no-any-return]


@pytest.fixture
def google(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Google's side of the launch: the folder what Beam uploads to gs:// lands in."""
    bucket = tmp_path / "gcs"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS",
                       str(_service_account_key(tmp_path / "key.json")))
    monkeypatch.setattr(gcsio.GcsIO, "is_soft_delete_enabled", lambda self, path: False)

    def stage_file(self: object, folder: str, name: str, stream: BinaryIO,
                   mime_type: str = "", total_size: int | None = None) -> None:
        assert folder.startswith("gs://"), folder  # local paths Beam writes itself
        target = bucket / folder.removeprefix("gs://") / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(stream.read())

    monkeypatch.setattr(apiclient.DataflowApplicationClient, "stage_file", stage_file)
    buckets = _BucketsInAFolder(bucket)
    beams_own = FileSystems.get_filesystem

    def get_filesystem(path: str) -> Any:
        return buckets if path.startswith("gs://") else beams_own(path)

    monkeypatch.setattr(FileSystems, "get_filesystem", staticmethod(get_filesystem))
    return bucket


def _launch(command: str, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """deploy/launch.py run as the launcher runs FLEX_TEMPLATE_PYTHON_PY_FILE, in the image
    built for `command` (deploy/docker/Dockerfile's flex-template target)."""
    monkeypatch.setenv("FLEX_TEMPLATE_PYTHON_PY_FILE", "/opt/newsbeam/launch.py")
    monkeypatch.setenv("NEWSBEAM_COMMAND", command)
    monkeypatch.setenv("NEWSBEAM_SDK_IMAGE", IMAGE)
    monkeypatch.setattr(sys, "argv", [str(ROOT / "deploy" / "launch.py"), *argv])
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(ROOT / "deploy" / "launch.py"), run_name="__main__")
    return int(exited.value.code or 0)


TEMPLATE_PARAMETERS = {  # what each template adds to those every template has
    "run": [],
    "stream": ["--poll_interval=5m", "--window=10m"],
}


@pytest.mark.parametrize("command", ["run", "stream"])
def test_a_template_launch_writes_the_job_graph_and_records_where(
    command: str, google: Path, postgres_uri: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The feeds file is read at launch (the job's graph has one branch per feed shard); the
    # feeds themselves are polled by the job's workers, so nothing serves them here.
    (google / "news-bucket" / "config").mkdir(parents=True)
    (google / "news-bucket" / "config" / "feeds.yaml").write_text(
        "feeds:\n  - url: http://127.0.0.1:9/feed.xml\n")
    feeds, out = "gs://news-bucket/config/feeds.yaml", "gs://news-bucket/news"
    job_name = f"newsbeam-{command}-20261207-010203"
    template = f"{LAUNCH}/job_object"
    launcher_options = [  # what Google's launcher adds to the parameters
        "--runner=DataflowRunner", f"--project={PROJECT}", f"--region={REGION}",
        f"--job_name={job_name}", f"--staging_location={STAGING}",
        "--temp_location=gs://news-bucket/tmp", f"--template_location={template}",
    ]
    base, prefix = postgres_uri.split("?table_prefix=")
    articles = f"{base}?table={prefix}articles"
    parameters = [f"--feeds={feeds}", f"--out={out}", f"--state={postgres_uri}",
                  f"--sink={articles} parquet:{out}", f"--dead_letters=jsonl:{out}",
                  "--http_user_agent=newsbeam-test", *TEMPLATE_PARAMETERS[command]]

    assert _launch(command, [*launcher_options, *parameters], monkeypatch) == 0
    assert f"the job's graph is written to {template}" in capsys.readouterr().out

    # What newsbeam records: where the graph went, no job (the launcher starts it). A run's
    # details go to run.json, a stream's to <stream id>-<launch>.json.
    (written,) = (google / "news-bucket" / "news").glob("*.json")
    details = json.loads(written.read_text())
    assert written.name == "run.json" if command == "run" else written.name == (
        f"{details['stream_id']}-{details['launch']}.json")
    assert details["status"] == "template_written" and details["template"] == template
    assert details["runner"] == "DataflowRunner" and "job_id" not in details
    assert details["sinks"] == [articles, f"parquet:{out}"]
    # The job's graph, where the launcher reads it: the workers run this image, with the
    # template's parameters as the job's options.
    graph = json.loads((google / template.removeprefix("gs://")).read_text())
    assert graph["name"] == job_name
    assert graph["type"] == {"run": "JOB_TYPE_BATCH", "stream": "JOB_TYPE_STREAMING"}[command]
    (pool,) = graph["environment"]["workerPools"]
    assert [image["containerImage"] for image in pool["sdkHarnessContainerImages"]] == [IMAGE]
    options = graph["environment"]["sdkPipelineOptions"]["options"]
    assert {key: options[key] for key in ("feeds", "out", "state", "dead_letters")} == {
        "feeds": feeds, "out": out, "state": postgres_uri, "dead_letters": f"jsonl:{out}"}
    assert options["sink"] == [f"{articles} parquet:{out}"] and options["detach"] is True
    assert options["streaming"] is (command == "stream")
    # Beam staged the pipeline and what it runs with beside it, in the launcher's bucket.
    staged = {path.name for path in (google / STAGING.removeprefix("gs://")).rglob("*")}
    assert {"pipeline.pb", "submission_environment_dependencies.txt"} <= staged
    # The launcher created the tables the workers write to.
    with psycopg.connect(base) as connection:
        tables = {name for (name,) in connection.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE %s", (prefix + "%",))}
    assert f"{prefix}articles" in tables
