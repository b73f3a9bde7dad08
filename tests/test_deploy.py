"""The files under deploy/ are kept honest without a network or a Docker daemon: they parse and
have what their kind requires, every newsbeam command line in them is one newsbeam accepts,
the Flex Templates' parameters are the CLI's options, the versions agree, and no credential is
written in them."""

from __future__ import annotations

import ast
import copy
import json
import re
import shlex
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam
import kubernetes_validate
import pytest
import yaml
from apache_beam.options.pipeline_options import FlinkRunnerOptions
from packaging.specifiers import SpecifierSet

from pipeline.cli import check_command_line, command_parser
from pipeline.cli.flex_template import template_metadata
from pipeline.cli.launch import command_line
from pipeline.job.options import duration, yes_or_no

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
FLEX_PARAMETER_TYPES = {
    "DEFAULT", "TEXT", "GCS_READ_BUCKET", "GCS_WRITE_BUCKET", "GCS_READ_FILE", "GCS_WRITE_FILE",
    "GCS_READ_FOLDER", "GCS_WRITE_FOLDER", "PUBSUB_TOPIC", "PUBSUB_SUBSCRIPTION",
    "BIGQUERY_TABLE", "JAVASCRIPT_UDF_FILE", "SERVICE_ACCOUNT", "MACHINE_TYPE", "KMS_KEY_NAME",
    "WORKER_REGION", "WORKER_ZONE", "BOOLEAN", "ENUM", "NUMBER",
}
# BeamRunPythonPipelineOperator's parameters (apache-airflow-providers-apache-beam), and the
# BaseOperator ones the DAG uses.
BEAM_OPERATOR_PARAMETERS = {
    "py_file", "runner", "default_pipeline_options", "pipeline_options", "py_interpreter",
    "py_options", "py_requirements", "py_system_site_packages", "gcp_conn_id",
    "dataflow_config", "deferrable", "task_id", "retries", "retry_delay", "execution_timeout",
}
# The Google provider's DataflowConfiguration (apache-airflow-providers-google,
# cloud/operators/dataflow.py): its keywords. (tests/test_airflow.py renders the DAG.)
DATAFLOW_CONFIGURATION_PARAMETERS = {
    "job_name", "append_job_name", "project_id", "location", "gcp_conn_id",
    "poll_sleep", "impersonation_chain", "drain_pipeline", "cancel_timeout",
    "wait_until_finished", "multiple_jobs", "check_if_running", "service_account",
    "max_num_workers",
}
# Values for the placeholders deploy files leave to their users.
SAMPLES = {
    "PROJECT": "news-project", "REGION": "europe-west1", "BUCKET": "news-bucket",
    "REGISTRY": "registry.example.org/news", "NEWSBEAM_DB_PASSWORD": "from-the-shell",
    "JOB_ID": "0123456789abcdef",
    "NEWSBEAM_POSTGRES_URI": "postgresql://newsbeam@db.internal:5432/news",
}


def _deploy_files() -> list[Path]:
    """The files under deploy/ that git tracks: what running them leaves there (Airflow's
    __pycache__, an editor's backups) is not part of the project."""
    listed = subprocess.run(["git", "ls-files", "-z", "--", "deploy"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode()
    return sorted(ROOT / name for name in listed.split("\0") if name)


def _files(*suffixes: str) -> list[Path]:
    return [path for path in _deploy_files() if path.suffix in suffixes]


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _kinds() -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for path in _files(".yaml", ".yml"):
        for document in _documents(path):
            found.setdefault(document.get("kind", path.name), []).append(document)
    return found


def _containers(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every container of a Kubernetes or Flink operator document, wherever it sits."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from value
            else:
                yield from _containers(value)
    elif isinstance(document, list):
        for item in document:
            yield from _containers(item)


def _newsbeam_args(container: dict[str, Any]) -> list[str] | None:
    """The newsbeam command line a container runs, if it runs one, with the $(NAME) references
    Kubernetes fills from the container's environment filled with samples (a reference to a
    variable the container does not define would be passed on as it is: an error here)."""
    command, args = container.get("command", []), [str(a) for a in container.get("args", [])]
    if not (command == ["newsbeam"] or (not command and args[:1] in (["run"], ["stream"]))):
        return None
    defined = {item["name"] for item in container.get("env", [])}

    def sample(match: re.Match[str]) -> str:
        assert match.group(1) in defined, f"$({match.group(1)}) is not in the container's env"
        return SAMPLES[match.group(1)]
    return [re.sub(r"\$\((\w+)\)", sample, arg) for arg in args]


def _expand(text: str, values: dict[str, str]) -> str:
    """Shell variables ($NAME, ${NAME}) replaced by `values`, else by SAMPLES."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, SAMPLES.get(name, f"sample-{name.lower()}"))
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def _shell_commands(markdown: str) -> list[str]:
    """The commands in a Markdown file's code blocks, continuation lines joined."""
    commands = []
    # A shell block: bare, or marked sh; a block's closing fence never opens one.
    for block in re.findall(r"^```(?:sh)?\n(.*?)^```$", markdown, flags=re.S | re.M):
        joined = re.sub(r"\\\n\s*", " ", block)
        commands += [line.strip() for line in joined.splitlines()
                     if line.strip() and not line.strip().startswith("#")]
    return commands


def _exports(commands: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for command in commands:
        if command.startswith("export "):
            for word in shlex.split(command)[1:]:
                name, _, value = word.partition("=")
                values[name] = _expand(value, values)
    return values


def _readme_newsbeam_commands(path: Path) -> list[list[str]]:
    """The newsbeam command lines a README shows: `newsbeam ...`, and `docker compose ... run
    --rm newsbeam ...` (the Compose service's entry point is newsbeam)."""
    commands = _shell_commands(path.read_text())
    values = _exports(commands)
    found = []
    for command in commands:
        if (not re.search(r"newsbeam (?:run|stream)\b", command) or "[" in command
                or "--help" in command):
            continue  # not one, a synopsis (`newsbeam run --feeds FILE [--topics FILE]`), help
        words = shlex.split(_expand(command.split(" # ")[0].split(" &")[0], values))
        for start, word in enumerate(words):
            if word.endswith("newsbeam") and words[start + 1:start + 2] in (["run"], ["stream"]):
                found.append(words[start + 1:])
                break
    return found


# -- every file parses and has what its kind requires ---------------------------------------

def test_every_yaml_and_json_file_parses() -> None:
    yaml_files, json_files = _files(".yaml", ".yml"), _files(".json")
    assert len(yaml_files) >= 4 and len(json_files) == 2
    for path in yaml_files:
        assert _documents(path), path
    for path in json_files:
        assert isinstance(json.loads(path.read_text()), dict), path


def test_the_cronjob_runs_newsbeam_every_so_often_never_two_at_once() -> None:
    (cronjob,) = _kinds()["CronJob"]
    assert cronjob["apiVersion"] == "batch/v1"
    spec = cronjob["spec"]
    assert len(spec["schedule"].split()) == 5
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    (container,) = pod["containers"]
    args = _newsbeam_args(container)
    assert args is not None and args[0] == "run"
    # Feeds and taxonomy come from the ConfigMap mounted where the arguments look for them.
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config = volumes[next(n for n, p in mounts.items() if p == "/config")]
    assert config["configMap"]["name"] == "newsbeam-config"
    assert {"--feeds=/config/feeds.yaml", "--topics=/config/topics.yaml"} <= set(args)
    # Resources sized from the measured memory: the feeding process and one extraction
    # process per requested core (benchmarks/extraction_memory.py: about 250 and 260 MiB).
    requests = container["resources"]["requests"]
    cores = int(requests["cpu"])
    assert f"--extract-processes={cores}" in args
    assert _mebibytes(requests["memory"]) >= 250 + cores * 260
    assert _mebibytes(container["resources"]["limits"]["memory"]) > _mebibytes(requests["memory"])


def _mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(Mi|Gi|m)?", quantity).groups()  # type: ignore[union-attr]
    return float(number) * {"Mi": 1, "Gi": 1024, "m": 1, None: 1 / 2**20}[unit]


def test_the_flink_deployment_has_the_worker_pool_beside_each_task_manager() -> None:
    (deployment,) = _kinds()["FlinkDeployment"]
    assert deployment["apiVersion"] == "flink.apache.org/v1beta1"
    spec = deployment["spec"]
    assert {"image", "flinkVersion", "jobManager", "taskManager"} <= set(spec)
    for manager in ("jobManager", "taskManager"):
        assert {"memory", "cpu"} <= set(spec[manager]["resource"])
    configuration = spec["flinkConfiguration"]
    assert duration(configuration["execution.checkpointing.interval"]) > 0
    assert configuration["execution.checkpointing.mode"] == "EXACTLY_ONCE"
    sidecars = spec["taskManager"]["podTemplate"]["spec"]["containers"]
    (pool,) = [c for c in sidecars if c.get("args") == ["--worker_pool"]]
    assert 50000 in [port["containerPort"] for port in pool["ports"]]
    # The submission points the task managers at that pool, over localhost.
    (submit,) = _kinds()["Job"]
    args = _newsbeam_args(next(_containers(submit)))
    assert args is not None and args[0] == "stream"
    assert {"--environment_type=EXTERNAL", "--environment_config=localhost:50000",
            "--detach"} <= set(args)


def test_the_compose_file_is_a_session_cluster_with_its_worker_pool() -> None:
    (compose,) = _documents(DEPLOY / "flink" / "docker-compose.yaml")
    services = compose["services"]
    assert {"jobmanager", "taskmanager", "worker-pool", "job-server", "newsbeam"} <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
    assert services["worker-pool"]["network_mode"] == "service:taskmanager"
    assert services["worker-pool"]["command"] == ["--worker_pool"]
    assert services["newsbeam"]["entrypoint"] == ["newsbeam"]
    for build in (s["build"] for s in services.values() if "build" in s):
        context = (DEPLOY / "flink" / build["context"]).resolve()
        assert (context / build["dockerfile"]).is_file()


def test_the_flex_template_metadata_has_the_fields_dataflow_requires() -> None:
    for path in _files(".json"):
        metadata = json.loads(path.read_text())
        assert metadata["name"] and metadata["description"]
        names = [parameter["name"] for parameter in metadata["parameters"]]
        assert len(names) == len(set(names)), path
        for parameter in metadata["parameters"]:
            assert re.fullmatch(r"[a-z][a-z0-9_]*", parameter["name"])
            assert parameter["label"] and parameter["helpText"]
            assert parameter["paramType"] in FLEX_PARAMETER_TYPES
            assert isinstance(parameter.get("isOptional", False), bool)
            for regex in parameter["regexes"]:
                re.compile(regex)
        assert metadata.get("streaming", False) == path.name.startswith("stream")


# -- every newsbeam command line in them is one newsbeam accepts ----------------------------

def test_every_command_line_in_the_manifests_is_accepted_by_newsbeam() -> None:
    checked = 0
    for path in _files(".yaml", ".yml"):
        for document in _documents(path):
            for container in _containers(document):
                args = _newsbeam_args(container)
                if args is not None:
                    check_command_line(args)
                    checked += 1
    assert checked == 2  # the CronJob's run and the Flink submission's stream


@pytest.mark.parametrize("readme", [
    "README.md", "deploy/flink/README.md", "deploy/kubernetes/README.md",
])
def test_every_newsbeam_command_in_the_readmes_is_accepted(readme: str) -> None:
    commands = _readme_newsbeam_commands(ROOT / readme)
    for argv in commands:
        check_command_line(argv)
    if readme != "deploy/kubernetes/README.md":  # that one only applies the manifest
        assert commands, readme


def test_a_command_line_newsbeam_refuses_is_caught() -> None:
    # The check the tests above rely on does fail: a renamed option, a bad value, a bad sink.
    from pipeline.cli import UsageError
    from transforms.sinks import SinkError

    with pytest.raises(UsageError, match="--poll_intervall"):
        check_command_line(["stream", "--feeds=f.yaml", "--poll_intervall=5m"])
    with pytest.raises(UsageError, match="not a duration"):
        check_command_line(["stream", "--feeds=f.yaml", "--window=often"])
    with pytest.raises(SinkError):
        check_command_line(["run", "--feeds=f.yaml", "--sink=bigquery:no-dataset"])


def _value(node: ast.expr, constants: dict[str, Any]) -> Any:
    """A literal of the DAG, its module-level constants (POSTGRES_URI) put in."""
    if isinstance(node, ast.Name):
        return constants[node.id]
    if isinstance(node, ast.List):
        return [_value(item, constants) for item in node.elts]
    return ast.literal_eval(node)


def _dag_operator_calls() -> tuple[list[ast.Call], dict[str, Any]]:
    tree = ast.parse((DEPLOY / "airflow" / "newsbeam_dag.py").read_text())
    constants = {
        target.id: ast.literal_eval(node.value)
        for node in tree.body if isinstance(node, ast.Assign)
        for target in node.targets if isinstance(target, ast.Name)
        and isinstance(node.value, ast.Dict | ast.Constant) and target.id.isupper()
        and not any(isinstance(v, ast.Call) for v in ast.walk(node.value))
    }
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, "id", "") == "BeamRunPythonPipelineOperator"]
    return calls, constants


def _rendered(value: Any) -> Any:
    """What Airflow's templates render to, with sample variables and connections."""
    if isinstance(value, list):
        return [_rendered(item) for item in value]
    if not isinstance(value, str):
        return value

    def sample(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        if expression.startswith("conn."):
            fields = {"login": "newsbeam", "host": "db.internal", "port": "5432",
                      "schema": "news"}
            return fields.get(expression.rsplit(".", 1)[-1],
                              "postgres://newsbeam:from-the-connection@db.internal:5432/news")
        optional = re.fullmatch(r"var\.value\.get\('(\w+)', '([^']*)'\)", expression)
        if optional:  # a variable with a default: the default
            return optional.group(2)
        name = expression.removeprefix("var.value.")
        return {
            "newsbeam_feeds": "/opt/newsbeam/config/feeds.yaml",
            "newsbeam_topics": "/opt/newsbeam/config/topics.yaml",
            "newsbeam_out": "/srv/newsbeam",
            "newsbeam_bucket": "news-bucket",
            "newsbeam_bigquery_table": "news-project:news.articles",
            "newsbeam_dataflow_state": "postgresql://newsbeam@10.0.0.5:5432/news"
            "?password_secret=projects/news-project/secrets/newsbeam-db/versions/latest",
        }.get(name, f"sample-{name}")
    return re.sub(r"\{\{(.*?)\}\}", sample, value)


def _beam_options_to_args(options: dict[str, Any]) -> list[str]:
    """As the Beam provider's beam_options_to_args turns pipeline_options into arguments."""
    args = []
    for name, value in options.items():
        if value is None or value is True:
            args.append(f"--{name}")
        elif value is False:
            continue
        elif isinstance(value, list):
            args += [f"--{name}={item}" for item in value]
        else:
            args.append(f"--{name}={value}")
    return args


def test_the_dag_compiles_and_names_only_options_that_exist() -> None:
    source = (DEPLOY / "airflow" / "newsbeam_dag.py").read_text()
    compile(source, "newsbeam_dag.py", "exec")
    calls, constants = _dag_operator_calls()
    assert len(calls) == 2
    runners = set()
    for call in calls:
        keywords = {k.arg: k.value for k in call.keywords}
        assert set(keywords) <= BEAM_OPERATOR_PARAMETERS
        assert ast.literal_eval(keywords["py_options"]) == ["-m"]
        assert ast.literal_eval(keywords["py_file"]) == "pipeline.cli.launch"
        runner = ast.literal_eval(keywords["runner"])
        runners.add(runner)
        options: dict[str, Any] = {}
        for key, value in zip(keywords["pipeline_options"].keys,  # type: ignore[attr-defined]
                              keywords["pipeline_options"].values,  # type: ignore[attr-defined]
                              strict=True):
            if key is None:  # **COMMON_OPTIONS
                options.update(constants[value.id])
            else:
                options[ast.literal_eval(key)] = _value(value, constants)
        options = {name: _rendered(value) for name, value in options.items()}
        options["runner"] = runner
        if "dataflow_config" in keywords:
            # A dict, which Airflow renders whole; the operator makes it a
            # DataflowConfiguration, which takes these keywords.
            config = ast.literal_eval(keywords["dataflow_config"])
            assert isinstance(config, dict) and set(config) <= DATAFLOW_CONFIGURATION_PARAMETERS
            # What the operator adds from its Dataflow configuration.
            options.update(project="news-project", region="europe-west1",
                           job_name="newsbeam-run-0a1b2c3d", labels=["airflow-version=v2"])
        line = command_line(_beam_options_to_args(options), {})
        assert line[:2] == ["--log-level=INFO", "run"]
        check_command_line(line)
    # In-process, newsbeam's default: Beam 2.77's DirectRunner would download Prism first.
    assert runners == {"FnApiRunner", "DataflowRunner"}


# -- the Flex Templates' parameters are the CLI's options ------------------------------------

@pytest.mark.parametrize("command", ["run", "stream"])
def test_the_template_parameters_are_the_cli_options_with_their_help(command: str) -> None:
    committed = json.loads((DEPLOY / "dataflow" / f"{command}-metadata.json").read_text())
    assert committed == template_metadata(command), (
        f"regenerate: python -m pipeline.cli.flex_template {command} >"
        f" deploy/dataflow/{command}-metadata.json")
    options = command_parser(command).options
    for parameter in committed["parameters"]:
        action = options[f"--{parameter['name']}"]
        assert parameter["helpText"] == action.help
        if parameter["paramType"] == "BOOLEAN":  # a switch, given as --name=true|false
            assert action.type is yes_or_no and parameter["regexes"] == ["^(?:true|false)$"]
        else:  # takes --name=value
            assert action.nargs is None and action.const is None


def test_the_duration_and_sink_regexes_agree_with_the_cli() -> None:
    stream = {p["name"]: p for p in template_metadata("stream")["parameters"]}
    (duration_regex,) = stream["poll_interval"]["regexes"]
    for text in ("90s", "5m", "1h30m", "7d", "45", "0.5s", "often", "5 m", "-5m", "m", ""):
        try:
            duration(text)
            accepted = True
        except Exception:
            accepted = False
        assert bool(re.fullmatch(duration_regex, text)) == accepted, text
    (sink_regex,) = stream["sink"]["regexes"]
    assert re.fullmatch(sink_regex, "bigquery:p-1:news.articles parquet:gs://b/news")
    assert not re.fullmatch(sink_regex, "jsonl:/local/folder")  # workers would lose it
    assert not re.fullmatch(sink_regex, "bigquery:p:news.articles  ")


# -- the versions agree ------------------------------------------------------------------------

def _dockerfile_args() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)", DOCKERFILE.read_text(), flags=re.M))


def test_the_beam_version_is_the_same_everywhere() -> None:
    beam = _dockerfile_args()["BEAM_VERSION"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (requirement,) = [d for d in project["dependencies"] if d.startswith("apache-beam")]
    assert SpecifierSet(requirement.removeprefix("apache-beam")).contains(beam)
    assert beam == apache_beam.__version__  # what the tests ran with is what the image has
    text = DOCKERFILE.read_text()
    python = re.search(r"apache/beam_python(\d+\.\d+)_sdk:\$\{BEAM_VERSION\}", text).group(1)  # type: ignore[union-attr]
    assert SpecifierSet(project["requires-python"]).contains(f"{python}.0")
    # Every other Beam version written under deploy/ (an image, a jar, a pin) is the same one.
    written = (r"apache/beam_[\w.]+:(\d+\.\d+\.\d+)", r"beam-runners-[\w.-]+?-(\d+\.\d+\.\d+)\.jar",
               r"(?<![\w-])apache-beam[^=\s]*==(\d+\.\d+\.\d+)")  # not a provider's
    others = [found for path in _deploy_files() if path != DOCKERFILE
              for pattern in written for found in re.findall(pattern, path.read_text())]
    assert others and set(others) == {beam}


def test_the_flink_version_is_the_same_everywhere_and_one_beam_publishes() -> None:
    flink = _dockerfile_args()["FLINK_VERSION"]
    assert flink in FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS
    texts = {path: path.read_text() for path in _deploy_files() if path.parent.name == "flink"}
    versions = set()
    for text in texts.values():
        versions.update(re.findall(r"image: flink:(\d+\.\d+)", text))
        versions.update(re.findall(r"beam_flink(\d+\.\d+)_job_server", text))
        versions.update(v.replace("_", ".") for v in re.findall(r"flinkVersion: v(\d+_\d+)", text))
        versions.update(re.findall(r"--flink_version=(\d+\.\d+)", text))
    assert versions == {flink}


def test_the_image_runs_beams_boot_and_the_launcher_it_was_built_with() -> None:
    text = DOCKERFILE.read_text()
    assert 'ENTRYPOINT ["/opt/apache/beam/boot"]' in text
    launcher = re.search(r"FLEX_TEMPLATE_PYTHON_PY_FILE=(\S+)", text).group(1)  # type: ignore[union-attr]
    workdir = re.search(r"^WORKDIR (\S+)", text, flags=re.M).group(1)  # type: ignore[union-attr]
    copies = [line.split()[1:] for line in text.splitlines()
              if line.startswith("COPY ") and not line.split()[1].startswith("--")]
    assert ["deploy/launch.py", f"./{Path(launcher).relative_to(workdir)}"] in copies
    for *sources, _ in copies:
        assert all((ROOT / source).exists() for source in sources), sources


# -- no credential is written in them ----------------------------------------------------------

def _credentials(text: str) -> list[str]:
    """Passwords written out: in a URI, in a Secret, or as a literal value of a variable named
    for one. A reference ($NAME, ${NAME}, $(NAME), {{ ... }}) is not one."""
    reference = r"(?:\$\{?\w+\}?|\$\(\w+\)|\{\{.*?\}\})"
    found = [m.group(0) for m in re.finditer(r"\w+://[^\s:/@]+:([^\s@]+)@", text)
             if not re.fullmatch(reference, m.group(1))]
    found += [m.group(0) for m in re.finditer(
        r"(?im)^[ \t]*-?[ \t]*\w*(?:PASSWORD|SECRET|TOKEN)\w*[ \t]*[:=][ \t]*(\S+)", text)
        if not re.fullmatch(reference, m.group(1).strip("\"'"))]
    found += re.findall(r"--(?:conn-password|from-literal=\w*password\w*=)[ =]?(?!\"?\$)\S+",
                        text)
    return found


def _literal_secret_variables(document: dict[str, Any]) -> list[str]:
    """Containers' environment variables named for a secret but given a literal value."""
    return [item["name"] for container in _containers(document)
            for item in container.get("env", [])
            if re.search(r"PASSWORD|SECRET|TOKEN", item["name"], re.I) and "value" in item]


def test_no_credential_is_written_in_deploy() -> None:
    for path in _deploy_files():
        assert _credentials(path.read_text()) == [], path
    for path in _files(".yaml", ".yml"):
        for document in _documents(path):
            assert _literal_secret_variables(document) == [], path
            if document.get("kind") == "Secret":
                assert not document.get("data") and not document.get("stringData"), path


def test_the_credential_check_finds_written_out_passwords() -> None:
    assert _credentials("--state=postgresql://newsbeam:hunter2@db:5432/news")
    assert _credentials("POSTGRES_PASSWORD: hunter2")
    assert _credentials('--from-literal=password=hunter2')
    assert not _credentials("--state=postgresql://newsbeam@db:5432/news")
    assert not _credentials('--from-literal=password="$NEWSBEAM_DB_PASSWORD"')
    assert not _credentials("- name: PGPASSWORD\n  valueFrom:")
    pod = {"containers": [{"env": [{"name": "DB_PASSWORD", "value": "hunter2"},
                                   {"name": "PGPASSWORD", "valueFrom": {}}]}]}
    assert _literal_secret_variables(pod) == ["DB_PASSWORD"]


# -- issue 23: what would not apply or not hold on a cluster --------------------------------

def test_each_volume_claim_is_declared_once_across_deploy() -> None:
    # Two manifests declaring one claim with different sizes or access modes: the second
    # apply fails (a claim's spec cannot change).
    claims: dict[str, list[str]] = {}
    for path in _files(".yaml", ".yml"):
        for document in _documents(path):
            if document.get("kind") == "PersistentVolumeClaim":
                claims.setdefault(document["metadata"]["name"], []).append(path.name)
    assert claims and all(len(where) == 1 for where in claims.values()), claims


def test_the_manifests_take_the_database_from_the_secret_not_a_host_of_their_own() -> None:
    # A URI written into a manifest names a host no manifest defines (`postgres`); the
    # database comes from the Secret newsbeam-postgres, as its README creates it.
    for path in _files(".yaml"):
        if path.parent.name == "flink" and path.name == "docker-compose.yaml":
            continue  # Compose defines its own postgres service
        text = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
        assert "postgresql://" not in text, path  # outside comments
        if "$(NEWSBEAM_POSTGRES_URI)" in text:
            assert "name: NEWSBEAM_POSTGRES_URI" in text and "key: uri" in text, path


def test_the_cronjob_fails_at_once_where_a_retry_cannot_help_and_cleans_up() -> None:
    (cronjob,) = _kinds()["CronJob"]
    job = cronjob["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    (rule,) = job["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob" and pod["restartPolicy"] == "Never"
    assert rule["onExitCodes"]["operator"] == "In"
    assert set(rule["onExitCodes"]["values"]) == {2, 3, 4}  # usage, incomplete, busy
    assert rule["onExitCodes"]["containerName"] == pod["containers"][0]["name"]
    assert 0 < job["ttlSecondsAfterFinished"] <= 7 * 86400
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    for container in pod["containers"] + pod.get("initContainers", []):
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # Retention: old files of the volume go before each run.
    (retention,) = pod["initContainers"]
    command = retention["command"]
    assert command[:2] == ["find", "/data/newsbeam"] and "-delete" in command
    dockerfile = (DEPLOY / "docker" / "Dockerfile").read_text()
    assert f"--uid {pod['securityContext']['runAsUser']}" in dockerfile


def test_only_the_template_target_pulls_googles_launcher_and_at_a_dated_tag() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?$", text, flags=re.M)
    base = re.search(r"^ARG FLEX_LAUNCHER_BASE=(\S+)$", text, flags=re.M).group(1)  # type: ignore[union-attr]
    assert re.search(r":\d{8}[-_]", base), base  # a dated tag, not latest
    copies_from = {stage: re.findall(r"COPY --from=(\S+)", body)
                   for stage, body in zip([name for _, name in stages],
                                          re.split(r"^FROM .*$", text, flags=re.M)[1:],
                                          strict=True)}
    pulling = [stage for stage, sources in copies_from.items() if "flex-launcher" in sources]
    assert pulling == ["flex-template"]
    # The workers' image neither has the launcher nor says it is one.
    newsbeam = copies_from["newsbeam"]
    assert newsbeam == [] and "FLEX_TEMPLATE_PYTHON_PY_FILE" not in re.split(
        r"^FROM .*$", text, flags=re.M)[[n for _, n in stages].index("newsbeam") + 1]
    # Every build in deploy/ names its target.
    for path in _deploy_files():
        for command in re.findall(r"docker build [^\n]*(?:\\\n[^\n]*)*", path.read_text()):
            assert "--target " in command, (path, command)


def test_the_build_context_leaves_out_what_the_image_does_not_copy() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", ".newsbeam", "newsbeam-out"} <= ignored
    copied = [line.split()[1] for line in DOCKERFILE.read_text().splitlines()
              if line.startswith("COPY ") and not line.split()[1].startswith("--")]
    assert not any(source.split("/")[0] in ignored for source in copied)


def test_the_flink_runners_own_options_pass_where_beam_hands_them_to_the_job() -> None:
    # Beam 2.77's FlinkRunner passes options its Python SDK does not define (the Java
    # runner's, e.g. --checkpointing_interval) to the job only with --flink_submit_uber_jar.
    from pipeline.cli import UsageError

    flink = ["stream", "--feeds=f.yaml", "--runner=FlinkRunner", "--flink_master=h:8081"]
    check_command_line([*flink, "--flink_submit_uber_jar", "--checkpointing_interval=60000",
                        "--checkpointing_mode", "EXACTLY_ONCE"])
    with pytest.raises(UsageError, match="only with --flink_submit_uber_jar"):
        check_command_line([*flink, "--checkpointing_interval=60000"])
    with pytest.raises(UsageError, match="--checkpointing_intervall"):
        check_command_line([*flink, "--flink_submit_uber_jar", "--checkpointing_intervall=1"])
    with pytest.raises(UsageError, match="--checkpointing_interval"):  # not Flink: refused
        check_command_line(["stream", "--feeds=f.yaml", "--checkpointing_interval=60000"])


def test_the_compose_job_server_stages_where_the_task_manager_and_workers_read() -> None:
    # Beam stages the job's files on the job server; Flink's task manager and the SDK workers
    # read them at the same path, which only a volume shared by all three makes true.
    (compose,) = [path for path in _files(".yaml") if path.name == "docker-compose.yaml"]
    services = _documents(compose)[0]["services"]
    (flag,) = [word for word in services["job-server"]["command"]
               if word.startswith("--artifacts-dir=")]
    staging = flag.split("=", 1)[1]
    mounted = {name: {volume.split(":")[0] for volume in service.get("volumes", [])
                      if volume.split(":")[1] == staging}
               for name, service in services.items()}
    (volume,) = mounted["job-server"]
    assert not volume.startswith((".", "/"))  # a named volume, not a folder of this host
    assert mounted["taskmanager"] == mounted["worker-pool"] == {volume}


def test_no_task_puts_a_password_on_its_command_line() -> None:
    # The operator's pipeline options become the task's command line, which every user of the
    # worker sees (`ps`): a connection's whole URI (get_uri()) carries its password.
    source = (DEPLOY / "airflow" / "newsbeam_dag.py").read_text()
    assert "get_uri()" not in source and ".password" not in source
    calls, constants = _dag_operator_calls()
    for call in calls:
        keywords = {k.arg: k.value for k in call.keywords}
        for value in keywords["pipeline_options"].values:  # type: ignore[attr-defined]
            rendered = _rendered(_value(value, constants))
            for text in rendered if isinstance(rendered, list) else [rendered]:
                assert not re.search(r"://[^/@\s]+:[^/@\s]+@", str(text)), text


# -- the Flink operator's pod template merge, and Kubernetes' own schemas -------------------

def _operator_merge(into: Any, source: Any, *, by_name: bool) -> Any:
    """What the Flink Kubernetes operator does to the top-level pod template and a manager's
    (flink-kubernetes-operator, FlinkUtils.mergePodTemplates): objects merge field by field;
    lists merge item by item in order, or by `name` when the operator's
    kubernetes.operator.pod-template.merge-arrays-by-name is set; anything else is replaced.
    `into` is changed in place and returned."""
    if not isinstance(source, dict) or not isinstance(into, dict):
        return into  # a merge into a scalar list item leaves it as it was
    for field, value in source.items():
        current = into.get(field)
        if isinstance(current, list) and isinstance(value, list):
            named = all(isinstance(item, dict) and "name" in item for item in current + value)
            if by_name and named:
                merged = {item["name"]: item for item in current}
                for item in value:
                    if item["name"] in merged:
                        _operator_merge(merged[item["name"]], item, by_name=by_name)
                    else:
                        merged[item["name"]] = item
                current[:] = merged.values()
            else:
                for index, item in enumerate(value):
                    if index < len(current):
                        _operator_merge(current[index], item, by_name=by_name)
                    else:
                        current.append(item)
        elif isinstance(current, dict):
            _operator_merge(current, value, by_name=by_name)
        else:
            into[field] = value
    return into


def _task_manager_pod(spec: dict[str, Any], *, by_name: bool) -> dict[str, Any]:
    merged = _operator_merge(copy.deepcopy(spec["podTemplate"]),
                             copy.deepcopy(spec["taskManager"]["podTemplate"]), by_name=by_name)
    return merged  # type: ignore[no-any-return]


def test_the_merge_emulation_loses_flinks_container_to_a_sidecar_listed_first() -> None:
    # The layout deploy/ had: the sidecar first in the task manager's template. Merged by
    # position, it overwrote flink-main-container and its checkpoint volume.
    top = {"spec": {"containers": [{"name": "flink-main-container", "volumeMounts": [
        {"name": "flink-data", "mountPath": "/flink-data"}]}],
        "volumes": [{"name": "flink-data", "emptyDir": {}}]}}
    sidecar = {"name": "beam-worker-pool", "volumeMounts": [{"name": "d", "mountPath": "/d"}]}
    claim = {"name": "d", "persistentVolumeClaim": {"claimName": "c"}}
    task_manager = {"spec": {"containers": [sidecar], "volumes": [claim]}}
    by_position = _operator_merge(copy.deepcopy(top), copy.deepcopy(task_manager), by_name=False)
    assert [c["name"] for c in by_position["spec"]["containers"]] == ["beam-worker-pool"]
    assert [v["name"] for v in by_position["spec"]["volumes"]] == ["d"]
    by_name = _operator_merge(copy.deepcopy(top), copy.deepcopy(task_manager), by_name=True)
    assert [c["name"] for c in by_name["spec"]["containers"]] == [
        "flink-main-container", "beam-worker-pool"]


@pytest.mark.parametrize("by_name", [False, True], ids=["by-position", "by-name"])
def test_task_managers_keep_flinks_container_and_checkpoints_beside_the_sidecar(
        by_name: bool) -> None:
    (deployment,) = _kinds()["FlinkDeployment"]
    pod = _task_manager_pod(deployment["spec"], by_name=by_name)["spec"]
    assert [c["name"] for c in pod["containers"]] == ["flink-main-container", "beam-worker-pool"]
    main, pool = pod["containers"]
    assert "image" not in main  # the operator's, from spec.image
    assert [(m["name"], m["mountPath"]) for m in main["volumeMounts"]] == [
        ("flink-data", "/flink-data")]
    assert pool["args"] == ["--worker_pool"] and pool["image"].endswith("/newsbeam:0.1.0")
    assert [(m["name"], m["mountPath"]) for m in pool["volumeMounts"]] == [
        ("newsbeam-data", "/data")]
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
    assert claims == {"flink-data": "newsbeam-flink-data", "newsbeam-data": "newsbeam-stream-data"}
    # Every claim a pod names is one deploy/ declares.
    declared = {claim["metadata"]["name"] for claim in _kinds()["PersistentVolumeClaim"]}
    assert set(claims.values()) <= declared


# The oldest Kubernetes the manifests are for (the CronJob's podFailurePolicy is GA in 1.31),
# and the newest whose schemas the validator carries.
KUBERNETES_VERSIONS = ("1.31", kubernetes_validate.latest_version())


def _kubernetes_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Kubernetes object in deploy/, and each pod template inside the Flink operator's
    own resource (its schema is the operator's; the pods it makes are Kubernetes')."""
    for path in _files(".yaml", ".yml"):
        for document in _documents(path):
            if "apiVersion" not in document:
                continue  # Compose
            name = f"{path.name}:{document['kind']}/{document['metadata']['name']}"
            if document["kind"] != "FlinkDeployment":
                yield name, document
                continue
            spec = document["spec"]
            templates = {"podTemplate": spec["podTemplate"],
                         "taskManager.podTemplate": spec["taskManager"]["podTemplate"],
                         "merged task manager pod": _task_manager_pod(spec, by_name=False)}
            for where, template in templates.items():
                yield f"{name} {where}", {"apiVersion": "v1", "kind": "PodTemplate",
                                          "metadata": {"name": "newsbeam"}, "template": template}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_manifests_are_valid_for_kubernetes_own_schemas(version: str) -> None:
    documents = list(_kubernetes_documents())
    kinds = {document["kind"] for _, document in documents}
    assert {"CronJob", "Job", "PersistentVolumeClaim", "PodTemplate"} <= kinds
    for name, document in documents:
        try:  # strict: a field Kubernetes does not know (a typo) is an error too
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{name} is not valid for Kubernetes {version}: {error.message}")


def test_the_schema_check_finds_a_misspelt_field_and_a_wrong_type() -> None:
    (cronjob,) = copy.deepcopy(_kinds()["CronJob"])
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod["restartPolicy"], pod["containers"][0]["resource"] = "Never", {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cronjob, KUBERNETES_VERSIONS[0], strict=True)
    del pod["containers"][0]["resource"]
    cronjob["spec"]["jobTemplate"]["spec"]["ttlSecondsAfterFinished"] = "1d"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cronjob, KUBERNETES_VERSIONS[0], strict=True)


def test_the_flink_jar_is_kept_only_once_its_signature_verifies() -> None:
    text = DOCKERFILE.read_text()
    stages = dict(zip([name for _, name in re.findall(r"^FROM (\S+) AS (\S+)$", text, re.M)],
                      re.split(r"^FROM .*$", text, flags=re.M)[1:], strict=True))
    # The jar is downloaded in one stage, with its signature and Beam's KEYS, and verified
    # there (a failed `gpg --verify` fails the build)...
    fetching = [name for name, body in stages.items() if "job-server" in body and "curl" in body]
    assert fetching == ["flink-jar"]
    body = stages["flink-jar"]
    assert "set -eu" in body and '"$url.asc"' in body and "downloads.apache.org/beam/KEYS" in body
    assert re.search(r"gpg --batch --verify flink-job-server\.jar\.asc flink-job-server\.jar",
                     body)
    # ...and the image takes the verified file from it, nothing fetched unverified.
    assert "COPY --from=flink-jar /jar/flink-job-server.jar" in stages["flink-submit"]
    assert not re.search(r"^ADD https?://", text, flags=re.M)
