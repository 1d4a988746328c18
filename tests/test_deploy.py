"""The deployment files run real `oncue` commands, and keep the promises docs/deploy.md makes.

No image can be built here (no registry for base images): what can be checked without one is
that every command line the Dockerfile, compose.yaml and the Kubernetes manifests run parses
with oncue's own CLI, that every ONCUE_* variable they set is one oncue reads, and that the
grace, ports and probes agree. The linters (hadolint, kubernetes-validate, the compose
schema) run in .ci/test.sh.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from oncue.http.cli import parse_options
from oncue.http.metrics import Metrics

REPO = Path(__file__).resolve().parent.parent
KUBERNETES = REPO / "deploy" / "kubernetes"
HTTP_CLOSE = 3.0  # serve.py's DEFAULT_GRACEFUL_TIMEOUT: after the drain, connections close
SOURCES = "\n".join(
    path.read_text() for folder in ("actors", "http") for path in (REPO / folder).rglob("*.py")
)


def dockerfile() -> dict[str, list[str]]:
    """The Dockerfile's instructions (continuation lines joined), by name."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    instructions: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, rest = line.strip().partition(" ")
            instructions.setdefault(name.upper(), []).append(rest.strip())
    return instructions


def docker_env() -> dict[str, str]:
    """The ENV of the Dockerfile's last stage."""
    [env] = dockerfile()["ENV"][-1:]
    return dict(pair.split("=", 1) for pair in shlex.split(env))


def parses(argv: list[str], environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """`oncue <argv>` parsed in `environment`; a usage error fails the test."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    try:
        return parse_options(argv)
    except click.ClickException as error:
        pytest.fail(f"`oncue {shlex.join(argv)}` is not a valid command line: {error}")


def manifests() -> list[dict[str, Any]]:
    documents = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":  # kustomize's, not the cluster's
            continue
        documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in manifests() if doc["kind"] == kind]


# -- the Dockerfile ----------------------------------------------------------------------------


def test_the_image_is_multi_stage_and_runs_as_a_user(monkeypatch) -> None:
    instructions = dockerfile()
    assert len(instructions["FROM"]) >= 2
    assert any("--from=build" in copy for copy in instructions["COPY"])
    [user] = instructions["USER"]
    assert user.split(":")[0] not in ("0", "root")
    assert instructions["STOPSIGNAL"] == ["SIGTERM"]


def test_the_image_command_is_a_real_oncue_command(monkeypatch) -> None:
    instructions = dockerfile()
    [entrypoint] = instructions["ENTRYPOINT"]
    [command] = instructions["CMD"]
    assert json.loads(entrypoint) == ["oncue"]
    environment = docker_env()
    argv = json.loads(command)
    assert argv[0] == "serve"
    options = parses(argv, environment, monkeypatch)
    assert (options.host, options.port) == ("0.0.0.0", 8080)
    assert options.store == "sqlite:////data/oncue.db"  # under the volume, not the image
    assert options.log_format == "json"


def test_the_healthcheck_asks_health_on_the_served_port() -> None:
    [check] = dockerfile()["HEALTHCHECK"]
    assert "/health" in check
    assert "ONCUE_PORT" in check
    assert "ONCUE_HEALTH_PORT" in check  # a worker container's port
    assert docker_env()["ONCUE_PORT"] == "8080"


def test_every_variable_the_deployment_sets_is_one_oncue_reads() -> None:
    names = set(docker_env())
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    for service in compose["services"].values():
        names |= {name for name in service.get("environment", {}) if name.startswith("ONCUE")}
    for doc in manifests():
        if doc["kind"] == "ConfigMap":
            names |= set(doc["data"])
        for container in containers(doc):
            names |= {variable["name"] for variable in container.get("env", [])}
    unknown = {name for name in names if name.startswith("ONCUE") and name not in SOURCES}
    assert not unknown, f"oncue reads none of {unknown}"


# -- compose -----------------------------------------------------------------------------------


def test_compose_runs_a_server_two_workers_and_postgres(monkeypatch) -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["worker"]["deploy"]["replicas"] == 2
    grace = float(docker_env()["ONCUE_GRACE"])
    for name in ("server", "worker"):
        service = services[name]
        environment = {**docker_env(), **service["environment"]}
        assert service["command"][0] == ("serve" if name == "server" else "worker")
        options = parses(service["command"], environment, monkeypatch)
        assert options.store.startswith("postgresql://")
        assert service["read_only"] is True
        assert seconds(service["stop_grace_period"]) > grace + HTTP_CLOSE
    assert services["worker"]["environment"]["ONCUE_HEALTH_PORT"]


def seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+)s", text)
    assert match, f"write stop_grace_period in seconds, got {text!r}"
    return float(match[1])


# -- Kubernetes --------------------------------------------------------------------------------


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] != "Deployment":
        return []
    return doc["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]


def test_the_manifests_hold_what_a_cluster_needs() -> None:
    kinds = sorted(doc["kind"] for doc in manifests())
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "PodDisruptionBudget",
        "Service",
    ]
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}


@pytest.mark.parametrize("name", ["oncue-server", "oncue-worker"])
def test_each_deployment_runs_oncue_probes_health_and_outlives_its_grace(
    name: str, monkeypatch
) -> None:
    [deployment] = [d for d in of_kind("Deployment") if d["metadata"]["name"] == name]
    [config] = of_kind("ConfigMap")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    environment = {**docker_env(), **config["data"]}
    environment |= {v["name"]: v["value"] for v in container.get("env", []) if "value" in v}
    environment["ONCUE_STORE"] = "postgresql://user@db/oncue"  # from the Secret
    options = parses(container["args"], environment, monkeypatch)
    port = options.port if container["args"][0] == "serve" else options.health_port
    assert port is not None, "a worker needs --health-port for its probes"
    ports = {entry["name"]: entry["containerPort"] for entry in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        check = container[probe]["httpGet"]
        assert check["path"] == "/health"
        assert ports[check["port"]] == port
    liveness = container["livenessProbe"]
    # a draining pod answers 503: liveness must not kill it before the grace has passed
    assert liveness["periodSeconds"] * liveness["failureThreshold"] > options.grace
    assert pod["terminationGracePeriodSeconds"] > options.grace + HTTP_CLOSE
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_the_service_and_budgets_select_real_pods() -> None:
    labels = [d["spec"]["template"]["metadata"]["labels"] for d in of_kind("Deployment")]
    [service] = of_kind("Service")
    assert service["spec"]["selector"] in labels
    for budget in of_kind("PodDisruptionBudget"):
        assert budget["spec"]["selector"]["matchLabels"] in labels


def test_the_autoscaler_scales_workers_on_a_metric_oncue_exports() -> None:
    [autoscaler] = of_kind("HorizontalPodAutoscaler")
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == "oncue-worker"
    [metric] = autoscaler["spec"]["metrics"]
    name = metric["external"]["metric"]["name"]
    exported = Metrics().render().decode()
    assert re.search(rf"^{name} ", exported, re.MULTILINE), f"{name} is not on /metrics"


def test_the_build_context_holds_every_package_folder() -> None:
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    folders = {
        path.split("/")[0] for path in pyproject["tool"]["setuptools"]["package-dir"].values()
    }
    allowed = {
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert folders <= allowed, f".dockerignore leaves out {folders - allowed}: the image lacks them"
    assert {"pyproject.toml", "README.md"} <= allowed
