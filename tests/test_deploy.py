"""The deployment files in deploy/: they parse, hold what each way of deploying needs, and
name only settings that exist. Where the tool is installed, docker compose, kubectl and
systemd-analyze check them too."""

from __future__ import annotations

import configparser
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from core.config import REPO_ROOT, Settings

DEPLOY = REPO_ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "kigen.env.example"
DOCKERFILE = DEPLOY / "Dockerfile"
UNIT = DEPLOY / "systemd" / "kigen.service"

EXPECTED_YAML = {
    "compose.yaml",
    "kubernetes/namespace.yaml",
    "kubernetes/secret.yaml",
    "kubernetes/configmap.yaml",
    "kubernetes/migration-job.yaml",
    "kubernetes/deployment.yaml",
    "kubernetes/service.yaml",
    "kubernetes/ingress.yaml",
    "kubernetes/pdb.yaml",
    "kubernetes/kustomization.yaml",
}
# One object of each kind, one file each.
EXPECTED_KINDS = {
    "namespace.yaml": "Namespace",
    "secret.yaml": "Secret",
    "configmap.yaml": "ConfigMap",
    "migration-job.yaml": "Job",
    "deployment.yaml": "Deployment",
    "service.yaml": "Service",
    "ingress.yaml": "Ingress",
    "pdb.yaml": "PodDisruptionBudget",
}
WEBHOOK_PATHS = {"/line/webhook", "/telegram/webhook"}
PUBLIC_PATHS = WEBHOOK_PATHS | {"/calendar", "/admin"}
KIGEN_NAME = re.compile(r"KIGEN_[A-Z0-9_]+")


def load_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def manifests() -> dict[str, dict]:
    """File name -> its one object, for the Kubernetes manifests."""
    objects = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs = load_all(path)
        assert len(docs) == 1, f"{path.name}: expected one object, found {len(docs)}"
        objects[path.name] = docs[0]
    return objects


def manifest(kind: str) -> dict:
    (found,) = [obj for obj in manifests().values() if obj["kind"] == kind]
    return found


def only_container(pod_spec: dict) -> dict:
    (container,) = pod_spec["containers"]
    return container


def env_file_values(path: Path) -> dict[str, str]:
    """The KEY=VALUE lines of an env file that are not commented out."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
            values[key.strip()] = value.strip()
    return values


def deploy_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


# --- (a) every YAML file parses -------------------------------------------------------------


def test_every_yaml_file_under_deploy_parses():
    found = {str(p.relative_to(DEPLOY)) for p in deploy_files() if p.suffix in (".yaml", ".yml")}
    assert found >= EXPECTED_YAML, f"missing: {sorted(EXPECTED_YAML - found)}"
    for name in sorted(found):
        docs = load_all(DEPLOY / name)
        assert docs, f"{name} is empty"
        assert all(isinstance(doc, dict) for doc in docs), f"{name}: a document is not a mapping"


# --- (b) Kubernetes ---------------------------------------------------------------------------


def test_kubernetes_manifests_have_exactly_the_expected_kinds():
    objects = manifests()
    assert {name: obj["kind"] for name, obj in objects.items()} == EXPECTED_KINDS
    namespace = manifest("Namespace")["metadata"]["name"]
    for name, obj in objects.items():
        assert obj.get("apiVersion"), f"{name} has no apiVersion"
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace, f"{name} is in another namespace"


def test_kustomization_lists_every_manifest_but_the_secret_template():
    kustomization = load_all(KUBERNETES / "kustomization.yaml")[0]
    assert kustomization["kind"] == "Kustomization"
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources)), "a resource is listed twice"
    for resource in resources:
        assert (KUBERNETES / resource).is_file(), f"kustomization lists a missing file {resource}"
    # The Secret is created with kubectl; applying the template would overwrite it.
    assert "secret.yaml" not in resources
    assert set(resources) == set(EXPECTED_KINDS) - {"secret.yaml"}
    assert kustomization["namespace"] == manifest("Namespace")["metadata"]["name"]
    images = {image["name"] for image in kustomization.get("images", [])}
    workloads = [manifest("Deployment"), manifest("Job")]
    for workload in workloads:
        assert only_container(workload["spec"]["template"]["spec"])["image"] in images


def test_secret_template_holds_only_placeholders():
    secret = manifest("Secret")
    text = (KUBERNETES / "secret.yaml").read_text(encoding="utf-8")
    assert "kubectl" in text and "create secret" in text
    data = secret["stringData"]
    assert {"KIGEN_DATABASE_URL", "KIGEN_SECRET_KEY"} <= set(data)
    for key, value in data.items():
        assert "REPLACE_ME" in value, f"{key} is not a placeholder"


def test_deployment_runs_three_probed_hardened_replicas():
    deployment = manifest("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]
    assert spec["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    pod_spec = pod["spec"]
    container = only_container(pod_spec)
    assert container["args"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": 8000}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports.keys() | set(ports.values())
    assert {
        (source.get("configMapRef") or source.get("secretRef"))["name"]
        for source in container["envFrom"]
    } == {manifest("ConfigMap")["metadata"]["name"], manifest("Secret")["metadata"]["name"]}

    resources = container["resources"]
    assert resources["requests"]["memory"] and resources["limits"]["memory"]
    assert _mebibytes(resources["requests"]["memory"]) >= 300
    assert _mebibytes(resources["limits"]["memory"]) >= _mebibytes(resources["requests"]["memory"])

    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["runAsUser"] == dockerfile_uid()
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]

    # A read-only root: /tmp and the index cache ($XDG_CACHE_HOME) are emptyDir volumes.
    empty_dirs = {v["name"] for v in pod_spec["volumes"] if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    env = {item["name"]: item["value"] for item in container.get("env", [])}
    assert mounts.get("/tmp") in empty_dirs
    assert mounts.get(env["XDG_CACHE_HOME"]) in empty_dirs

    spread = pod_spec["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} >= {"kubernetes.io/hostname"}
    for constraint in spread:
        assert constraint["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]


def _mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(Mi|Gi|M|G)", quantity).groups()
    return float(number) * {"Mi": 1, "Gi": 1024, "M": 1e6 / 2**20, "G": 1e9 / 2**20}[unit]


def test_migration_job_runs_db_upgrade_with_the_same_settings():
    job = manifest("Job")
    pod_spec = job["spec"]["template"]["spec"]
    container = only_container(pod_spec)
    assert container["args"] == ["db", "upgrade"]
    assert pod_spec["restartPolicy"] in ("Never", "OnFailure")
    deployment = only_container(manifest("Deployment")["spec"]["template"]["spec"])
    assert container["image"] == deployment["image"]
    assert container["envFrom"] == deployment["envFrom"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_service_ingress_and_pdb_reach_the_pods():
    pod_labels = manifest("Deployment")["spec"]["template"]["metadata"]["labels"]
    service = manifest("Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80
    assert port["targetPort"] in ("http", 8000)

    ingress = manifest("Ingress")
    assert ingress["spec"]["tls"] and ingress["spec"]["tls"][0]["secretName"]
    tls_hosts = {host for tls in ingress["spec"]["tls"] for host in tls["hosts"]}
    routed = set()
    for rule in ingress["spec"]["rules"]:
        assert rule["host"] in tls_hosts
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == service["metadata"]["name"]
            assert backend["port"] in ({"name": port["name"]}, {"number": port["port"]})
            routed.add(path["path"])
    assert routed == PUBLIC_PATHS, "route the webhooks, /calendar and /admin, nothing else"
    assert not routed & {"/healthz", "/readyz", "/metrics", "/"}

    pdb = manifest("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 2
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_configmap_settings_are_valid(monkeypatch):
    data = manifest("ConfigMap")["data"]
    assert all(isinstance(value, str) for value in data.values()), "quote every value"
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    # Only the leader sends to Telegram: a total under its ~30/s. Every replica sends to
    # LINE: together they stay within LINE's limits.
    assert settings.telegram_rate <= 30
    replicas = manifest("Deployment")["spec"]["replicas"]
    assert settings.line_push_rate * replicas <= 2000
    assert settings.line_multicast_rate * replicas <= 200


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_the_manifests():
    result = subprocess.run(
        ["kubectl", "kustomize", str(KUBERNETES)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert sorted(doc["kind"] for doc in rendered) == sorted(
        set(EXPECTED_KINDS.values()) - {"Secret"}
    )
    for doc in rendered:
        if doc["kind"] in ("Deployment", "Job"):
            image = only_container(doc["spec"]["template"]["spec"])["image"]
            assert ":" in image, f"{doc['kind']} runs an untagged image {image}"


# --- (c) Docker Compose -----------------------------------------------------------------------


def test_compose_services_start_in_order_with_healthchecks():
    services = load_all(COMPOSE)[0]["services"]
    assert set(services) == {"kigen", "postgres", "migrate"}
    kigen, postgres, migrate = services["kigen"], services["postgres"], services["migrate"]

    assert postgres["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in postgres["volumes"])
    named = next(v for v in postgres["volumes"] if v.endswith(":/var/lib/postgresql/data"))
    assert named.split(":")[0] in load_all(COMPOSE)[0]["volumes"]

    assert "/healthz" in " ".join(kigen["healthcheck"]["test"])
    assert kigen["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    assert kigen["restart"] == "unless-stopped"
    assert any(str(port).endswith("8000:8000") for port in kigen["ports"])

    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert migrate.get("restart", "no") == "no"

    for name, service in services.items():
        assert service["env_file"] == "kigen.env", f"{name} does not read kigen.env"
    for service in (kigen, migrate):
        build = service["build"]
        assert (COMPOSE.parent / build["context"]).resolve() == REPO_ROOT
        assert (REPO_ROOT / build["dockerfile"]).resolve() == DOCKERFILE
        assert service["image"] == kigen["image"]


def test_compose_env_example_matches_the_postgres_service():
    values = env_file_values(ENV_EXAMPLE)
    assert {"POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD", "KIGEN_DATABASE_URL"} <= set(
        values
    )
    url = make_url(values["KIGEN_DATABASE_URL"])
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "postgres", "the host is the compose service's name"
    assert (url.username, url.password, url.database) == (
        values["POSTGRES_USER"],
        values["POSTGRES_PASSWORD"],
        values["POSTGRES_DB"],
    )
    # An empty KIGEN_TELEGRAM_TOKEN= would still turn the channel on: secrets stay
    # commented out, as placeholders.
    for key, value in values.items():
        assert value, f"{key} has an empty value"
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    for secret in (
        "KIGEN_SECRET_KEY",
        "KIGEN_TELEGRAM_TOKEN",
        "KIGEN_TELEGRAM_WEBHOOK_SECRET",
        "KIGEN_LINE_CHANNEL_SECRET",
        "KIGEN_LINE_CHANNEL_ACCESS_TOKEN",
    ):
        assert re.search(rf"^# {secret}=", text, re.MULTILINE), f"{secret}: a commented line"


def _compose_command() -> list[str] | None:
    if shutil.which("docker") is None:
        return None
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, timeout=60
    )
    return ["docker", "compose"] if probe.returncode == 0 else None


def test_docker_compose_config_accepts_the_file(tmp_path):
    command = _compose_command()
    if command is None:
        pytest.skip("the docker client with the compose plugin is not installed")
    # compose.yaml needs deploy/kigen.env: use a copy of the example in a scratch tree.
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    shutil.copy(COMPOSE, deploy / "compose.yaml")
    shutil.copy(DOCKERFILE, deploy / "Dockerfile")
    shutil.copy(ENV_EXAMPLE, deploy / "kigen.env")
    result = subprocess.run(
        [*command, "-f", str(deploy / "compose.yaml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert set(config["services"]) == {"kigen", "postgres", "migrate"}
    kigen = config["services"]["kigen"]
    assert kigen["environment"]["KIGEN_DATABASE_URL"].startswith("postgresql+psycopg://")


# --- (d) Dockerfile ---------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions, pending = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, arguments in dockerfile_instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, arguments))
    return result


def dockerfile_uid() -> int:
    (user,) = [args for keyword, args in stages()[-1] if keyword == "USER"]
    return int(user.split(":")[0])


def test_dockerfile_is_multi_stage_on_python_slim():
    instructions = dockerfile_instructions()
    args = dict(a.split("=", 1) for k, a in instructions if k == "ARG" and "=" in a)
    froms = [a for k, a in instructions if k == "FROM"]
    assert len(froms) >= 2
    images = {re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], a).split()[0] for a in froms}
    assert images == {"python:3.12-slim"}
    assert re.search(r"\bAS\s+builder$", froms[0], re.IGNORECASE)


def test_dockerfile_copies_only_what_it_needs():
    builder, final = stages()[0], stages()[-1]
    for keyword, arguments in builder:
        if keyword == "COPY":
            *sources, _ = arguments.split()
            assert set(sources) <= {"pyproject.toml", "README.md", "core/", "bot/"}, arguments
            for source in sources:
                assert (REPO_ROOT / source).exists(), f"COPY of a missing {source}"
    copies = [arguments for keyword, arguments in final if keyword == "COPY"]
    assert len(copies) == 2, "the final stage copies the virtualenv and locales/ only"
    assert any(c.startswith("--from=builder ") and ".venv" in c for c in copies)
    assert any(c.split() == ["locales/", "/app/locales/"] for c in copies)
    assert ("WORKDIR", "/app") in final
    env = " ".join(arguments for keyword, arguments in final if keyword == "ENV")
    assert "KIGEN_LOCALES_DIR=/app/locales" in env.split()


def test_the_wheel_holds_every_file_of_core_and_bot():
    """The image and a VM install Kigen as a wheel, not from the checkout: a file that is
    not Python (a template, a migration script...) is in it only through package-data.
    The Dockerfile checks the same after installing."""
    setuptools = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = setuptools["tool"]["setuptools"].get("package-data", {})
    packaged = set()
    for package, patterns in package_data.items():
        folder = REPO_ROOT / package.replace(".", "/")
        for pattern in patterns:
            packaged |= set(folder.glob(pattern))
    missing = [
        str(path.relative_to(REPO_ROOT))
        for top in ("core", "bot")
        for path in sorted((REPO_ROOT / top).rglob("*"))
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix not in (".py", ".pyc")
        and path not in packaged
    ]
    assert not missing, f"add to [tool.setuptools.package-data] in pyproject.toml: {missing}"


def test_dockerfile_runs_kigen_as_non_root_with_a_healthcheck():
    final = stages()[-1]
    users = [arguments for keyword, arguments in final if keyword == "USER"]
    assert users, "the final stage sets no USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert dockerfile_uid() > 0
    # USER comes before the command runs (after it, nothing may switch back).
    keywords = [keyword for keyword, _ in final]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")

    (healthcheck,) = [arguments for keyword, arguments in final if keyword == "HEALTHCHECK"]
    assert "CMD" in healthcheck and "urllib.request" in healthcheck
    assert "http://127.0.0.1:8000/healthz" in healthcheck
    assert ("EXPOSE", "8000") in final
    (entrypoint,) = [json.loads(a) for k, a in final if k == "ENTRYPOINT"]
    (command,) = [json.loads(a) for k, a in final if k == "CMD"]
    assert entrypoint == ["kigen"]
    assert command == ["serve", "--host", "0.0.0.0", "--port", "8000"]


def test_healthcheck_command_works_against_a_server():
    """The HEALTHCHECK's Python one-liner (also compose's) exits 0 on a 200 from /healthz and
    non-zero when nothing answers."""
    (healthcheck,) = [a for k, a in stages()[-1] if k == "HEALTHCHECK"]
    argv = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert argv[:2] == ["python", "-c"]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        script = argv[2].replace(":8000/", f":{server.server_port}/")
        assert subprocess.run([sys.executable, "-c", script], timeout=30).returncode == 0
    finally:
        server.shutdown()
        server.server_close()
    dead = argv[2].replace(":8000/", f":{server.server_port}/")
    failed = subprocess.run([sys.executable, "-c", dead], capture_output=True, timeout=30)
    assert failed.returncode != 0


# --- (e) settings -----------------------------------------------------------------------------


def test_every_kigen_setting_named_in_deploy_exists():
    documented = set(KIGEN_NAME.findall((REPO_ROOT / ".env.example").read_text(encoding="utf-8")))
    fields = {f"KIGEN_{name.upper()}" for name in Settings.model_fields}
    used: dict[str, set[str]] = {}
    for path in deploy_files():
        for name in KIGEN_NAME.findall(path.read_text(encoding="utf-8")):
            used.setdefault(name, set()).add(str(path.relative_to(DEPLOY)))
    assert len(used) >= 10, "the deploy files name hardly any settings: was one emptied?"
    undocumented = {name: sorted(files) for name, files in used.items() if name not in documented}
    assert not undocumented, f"not in .env.example: {undocumented}"
    unknown = {name: sorted(files) for name, files in used.items() if name not in fields}
    assert not unknown, f"Kigen has no such setting: {unknown}"


# --- (f) systemd ------------------------------------------------------------------------------


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def unit_values(section: str, key: str) -> list[str]:
    """Every value of a key that systemd allows more than once (configparser keeps the last)."""
    values, current = [], None
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            current = line.strip("[] ")
        elif current == section and line.partition("=")[0].strip() == key:
            values.append(line.partition("=")[2].strip())
    return values


def test_systemd_unit_has_the_expected_keys():
    parsed = unit()
    assert set(parsed.sections()) == {"Unit", "Service", "Install"}
    service = parsed["Service"]
    expected = {
        "User": "kigen",
        "EnvironmentFile": "/etc/kigen/kigen.env",
        "ExecStartPre": "/opt/kigen/.venv/bin/kigen db upgrade",
        "ExecStart": "/opt/kigen/.venv/bin/kigen serve --host 127.0.0.1 --port 8000",
        "Restart": "on-failure",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "StateDirectory": "kigen",
        "CacheDirectory": "kigen",
    }
    assert {key: service.get(key) for key in expected} == expected
    assert "network-online.target" in parsed["Unit"]["After"].split()
    assert parsed["Install"]["WantedBy"] == "multi-user.target"
    # The cache and the SQLite default land in the directories systemd lets it write.
    environment = " ".join(unit_values("Service", "Environment")).split()
    assert "KIGEN_LOCALES_DIR=/opt/kigen/locales" in environment
    assert "XDG_CACHE_HOME=%C" in environment
    assert "XDG_DATA_HOME=%S" in environment


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
def test_systemd_analyze_verify_finds_nothing_but_the_missing_binary(tmp_path):
    copy = tmp_path / "kigen.service"
    shutil.copy(UNIT, copy)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable" not in line  # /opt/kigen is not here
    ]
    assert not complaints, "\n".join(complaints)
