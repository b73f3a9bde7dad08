"""deploy/dataflow/newsbeam-dataflow, run with stand-ins for `gcloud` and `docker` that record
what they are asked (no Google account here): it builds both templates, launches them with
parameters newsbeam accepts, and schedules the batch job with a launch request Dataflow's API
takes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import check_command_line
from pipeline.cli.launch import command_line

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "deploy" / "dataflow" / "newsbeam-dataflow"
SETTINGS = {
    "PROJECT": "news-project", "REGION": "europe-west1", "BUCKET": "news-bucket",
    "STATE": "postgresql://newsbeam@10.0.0.5:5432/news"
             "?password_secret=projects/news-project/secrets/newsbeam-db/versions/latest",
    "SUBNETWORK": "regions/europe-west1/subnetworks/news",
    "WORKER_SERVICE_ACCOUNT": "newsbeam-worker@news-project.iam.gserviceaccount.com",
    "SCHEDULER_SERVICE_ACCOUNT": "newsbeam-scheduler@news-project.iam.gserviceaccount.com",
    "USER_AGENT": "newsbeam (+https://news.example.org/crawler)",
}
# A stand-in for a command line tool: records its arguments (and the file a Cloud Scheduler
# job's body is read from) as a JSON line; `describe` fails unless the thing EXISTING names.
STAND_IN = """#!{python}
import json, os, sys
args = sys.argv[1:]
entry = {{"tool": os.path.basename(sys.argv[0]), "args": args}}
if "--message-body-from-file" in args:
    entry["body"] = json.load(open(args[args.index("--message-body-from-file") + 1]))
with open(os.environ["STAND_IN_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\\n")
if "describe" in args and args[0] not in os.environ.get("EXISTING", "").split(","):
    sys.exit(1)
"""


def _script(tmp_path: Path, *args: str, **settings: str) -> tuple[subprocess.CompletedProcess[str],
                                                                   list[dict]]:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.jsonl"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("gcloud", "docker"):
        (bin_dir / tool).write_text(STAND_IN.format(python=sys.executable))
        (bin_dir / tool).chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "STAND_IN_LOG": str(log),
           "HOME": str(tmp_path), **settings}
    done = subprocess.run([str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def _newsbeam_line(parameters: dict[str, str], command: str) -> list[str]:
    """The command line Google's launcher would give newsbeam for these parameters, once the
    template has checked them against its metadata."""
    metadata = json.loads((ROOT / "deploy" / "dataflow" / f"{command}-metadata.json").read_text())
    declared = {p["name"]: p for p in metadata["parameters"]}
    required = {name for name, p in declared.items() if not p.get("isOptional")}
    assert required <= set(parameters) <= set(declared), command
    for name, value in parameters.items():
        assert all(re.fullmatch(regex, value) for regex in declared[name]["regexes"]), name
    argv = [f"--{name}={value}" for name, value in parameters.items()]
    environ = {"FLEX_TEMPLATE_PYTHON_PY_FILE": "/opt/newsbeam/launch.py",
               "NEWSBEAM_COMMAND": command}
    line = command_line(argv, environ)
    check_command_line([*line, "--runner=DataflowRunner", "--project=news-project",
                        "--region=europe-west1", "--temp_location=gs://news-bucket/tmp"])
    return line


def test_build_makes_each_templates_image_and_template(tmp_path: Path) -> None:
    done, calls = _script(tmp_path, "build", **SETTINGS)
    assert done.returncode == 0, done.stderr
    assert [c["args"][:3] for c in calls if c["args"][0] == "artifacts"] == [
        ["artifacts", "repositories", "describe"], ["artifacts", "repositories", "create"]]
    builds = [c["args"] for c in calls if c["tool"] == "docker" and c["args"][0] == "build"]
    templates = [c["args"] for c in calls if c["args"][:3] == ["dataflow", "flex-template",
                                                               "build"]]
    for job, build, template in zip(("run", "stream"), builds, templates, strict=True):
        image = f"europe-west1-docker.pkg.dev/news-project/newsbeam/newsbeam-{job}:0.1.0"
        assert _flag(build, "--target") == "flex-template" and _flag(build, "-t") == image
        assert f"NEWSBEAM_COMMAND={job}" in build and f"NEWSBEAM_SDK_IMAGE={image}" in build
        assert template[3] == f"gs://news-bucket/templates/newsbeam-{job}.json"
        assert _flag(template, "--image") == image
        assert (ROOT / _flag(template, "--metadata-file")).is_file()
    pushed = [c["args"][1] for c in calls if c["tool"] == "docker" and c["args"][0] == "push"]
    assert len(pushed) == 2


@pytest.mark.parametrize("job", ["run", "stream"])
def test_a_launch_passes_parameters_newsbeam_accepts(tmp_path: Path, job: str) -> None:
    extra = {"stream": {"EXTRA_PARAMETERS": "poll_interval=5m~window=10m"}}.get(job, {})
    done, calls = _script(tmp_path, job, **SETTINGS, **extra)
    assert done.returncode == 0, done.stderr
    (launch,) = [c["args"] for c in calls]
    assert launch[:3] == ["dataflow", "flex-template", "run"]
    assert launch[3].startswith(f"newsbeam-{job}")
    assert _flag(launch, "--template-file-gcs-location") == (
        f"gs://news-bucket/templates/newsbeam-{job}.json")
    assert "--disable-public-ips" in launch and _flag(launch, "--subnetwork") == (
        SETTINGS["SUBNETWORK"])
    assert ("--enable-streaming-engine" in launch) is (job == "stream")
    encoded = _flag(launch, "--parameters")
    assert encoded.startswith("^~^")
    parameters = dict(pair.split("=", 1) for pair in encoded[3:].split("~"))
    assert parameters["state"] == SETTINGS["STATE"]
    assert parameters["sink"] == "bigquery:news-project:news.articles parquet:gs://news-bucket/news"
    line = _newsbeam_line(parameters, job)
    assert line[0] == job and "--detach" in line
    if job == "stream":
        assert {"--poll_interval=5m", "--window=10m"} <= set(line)


def test_schedule_creates_then_updates_a_scheduler_job_that_launches_run(
    tmp_path: Path,
) -> None:
    done, calls = _script(tmp_path, "schedule", **SETTINGS, SCHEDULE="*/30 * * * *")
    assert done.returncode == 0, done.stderr
    (create,) = [c for c in calls if c["args"][:3] == ["scheduler", "jobs", "create"]]
    args = create["args"]
    assert args[3:5] == ["http", "newsbeam-run"] and _flag(args, "--schedule") == "*/30 * * * *"
    assert _flag(args, "--uri") == ("https://dataflow.googleapis.com/v1b3/projects/news-project"
                                    "/locations/europe-west1/flexTemplates:launch")
    assert _flag(args, "--oauth-service-account-email") == SETTINGS["SCHEDULER_SERVICE_ACCOUNT"]
    assert _flag(args, "--headers") == "Content-Type=application/json"
    launch = create["body"]["launchParameter"]
    assert launch["jobName"] == "newsbeam-run"  # one at a time: Dataflow refuses a second
    assert launch["containerSpecGcsPath"] == "gs://news-bucket/templates/newsbeam-run.json"
    assert launch["environment"] == {
        "tempLocation": "gs://news-bucket/tmp", "subnetwork": SETTINGS["SUBNETWORK"],
        "ipConfiguration": "WORKER_IP_PRIVATE",
        "serviceAccountEmail": SETTINGS["WORKER_SERVICE_ACCOUNT"]}
    assert launch["parameters"]["http_user_agent"] == SETTINGS["USER_AGENT"]
    assert _newsbeam_line(launch["parameters"], "run")[0] == "run"
    # Scheduling again changes the job in place (`update` names its headers differently).
    done, calls = _script(tmp_path, "schedule", **SETTINGS, EXISTING="scheduler")
    (update,) = [c for c in calls if c["args"][:3] == ["scheduler", "jobs", "update"]]
    assert _flag(update["args"], "--update-headers") == "Content-Type=application/json"


def test_a_missing_setting_is_one_line_naming_it(tmp_path: Path) -> None:
    settings = {k: v for k, v in SETTINGS.items() if k != "STATE"}
    done, calls = _script(tmp_path, "run", **settings)
    assert done.returncode == 2 and calls == []
    assert done.stderr == "newsbeam-dataflow: error: set STATE (see deploy/dataflow/README.md)\n"
    done, _ = _script(tmp_path, "deploy", **SETTINGS)
    assert done.returncode == 2 and "build, run, stream or schedule" in done.stderr
