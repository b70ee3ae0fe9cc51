"""deploy/kubernetes renders with kubectl kustomize into valid objects that agree with the code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.manifests import (
    BASE,
    OVERLAY,
    Manifest,
    containers,
    find,
    pod_templates,
    render,
    schema_problems,
)
from worker.cli import main
from worker.converter import parse_config

LAYOUTS = pytest.mark.parametrize("layout", [BASE, OVERLAY], ids=["base", "overlay"])
SECRETS = {"imageledger-database", "imageledger-amqp", "imageledger-registry"}


def config_map(objects: list[Manifest]) -> Manifest:
    (found,) = [o for o in objects if o["kind"] == "ConfigMap"]
    return found


def config_document(objects: list[Manifest]) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(config_map(objects)["data"]["config.yaml"])
    return loaded


@LAYOUTS
def test_renders_the_expected_objects(layout: Path) -> None:
    kinds = sorted(o["kind"] for o in render(layout))
    assert kinds == sorted(
        [
            *("Namespace", "ServiceAccount", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"),
            *("Role", "RoleBinding", "ConfigMap", "Job", "Deployment", "Deployment"),
            *("PodDisruptionBudget", "Service", "Service", "ServiceMonitor", "PrometheusRule"),
        ]
    )


@LAYOUTS
def test_every_object_validates_against_its_schema(layout: Path) -> None:
    problems = {f"{o['kind']}/{o['metadata']['name']}": schema_problems(o) for o in render(layout)}
    assert {k: v for k, v in problems.items() if v} == {}


def test_the_validation_catches_bad_objects() -> None:
    objects = render(BASE)
    worker = find(objects, "Deployment", "imageledger-worker")
    worker["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsUser"] = "app"
    monitor = find(objects, "ServiceMonitor", "imageledger")
    monitor["spec"]["endpoints"][0]["portName"] = "http"
    rule = find(objects, "PrometheusRule", "imageledger")
    rule["spec"]["groups"][0]["rules"][0]["for"] = "ten minutes"
    assert "runAsUser" in " ".join(schema_problems(worker))
    assert "portName" in " ".join(schema_problems(monitor))
    assert "ten minutes" in " ".join(schema_problems(rule))


@LAYOUTS
def test_the_config_loads_and_names_the_namespace(layout: Path) -> None:
    objects = render(layout)
    document = config_document(objects)
    config = parse_config(document, source="ConfigMap imageledger-config")
    assert config.images.docker_credentials_path == "/etc/imageledger/registry/.dockerconfigjson"
    namespace = document["kube"]["namespace"]
    (ns,) = [o for o in objects if o["kind"] == "Namespace"]
    assert ns["metadata"]["name"] == namespace
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    for obj in objects:
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"].get("namespace") == namespace, obj["metadata"]["name"]


@LAYOUTS
def test_the_mounted_files_are_where_the_config_says(layout: Path) -> None:
    objects = render(layout)
    document = config_document(objects)
    config_name = config_map(objects)["metadata"]["name"]
    for workload, pod in pod_templates(objects):
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in containers(pod):
            mounts = {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", [])}
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            argv = container["command"]
            config_file = env.get("IMAGELEDGER_CONFIG") or (
                argv[argv.index("--config") + 1] if "--config" in argv else None
            )
            if config_file is None:
                continue
            folder, key = config_file.rsplit("/", 1)
            assert mounts[folder]["configMap"]["name"] == config_name, workload["metadata"]
            assert key in config_map(objects)["data"]
            if workload["metadata"]["name"] == "imageledger-worker":
                folder, key = document["images"]["dockerCredentialsPath"].rsplit("/", 1)
                secret = mounts[folder]["secret"]
                assert secret["secretName"] == "imageledger-registry"
                assert {"key": ".dockerconfigjson", "path": key} in secret["items"]


@LAYOUTS
def test_secrets_are_referenced_never_inlined(layout: Path) -> None:
    objects = render(layout)
    assert not [o for o in objects if o["kind"] == "Secret"]
    used: dict[str, set[str]] = {}
    for workload, pod in pod_templates(objects):
        names = used.setdefault(workload["metadata"]["name"], set())
        names |= {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
        for container in containers(pod):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref is not None:
                    names.add(ref["name"])
                else:
                    assert "://" not in env.get("value", ""), env["name"]
    assert used == {
        "imageledger-migrate": {"imageledger-database"},
        "imageledger-worker": SECRETS,
        "imageledger-bridge": {"imageledger-amqp"},
    }
    assert config_document(objects)["kube"]["imagePullSecret"] in SECRETS


@LAYOUTS
def test_containers_run_commands_of_the_cli(layout: Path) -> None:
    commands = {
        (w["metadata"]["name"], c["name"]): c["command"] for w, p in pod_templates(render(layout))
        for c in containers(p)
    }  # fmt: skip
    assert commands[("imageledger-migrate", "migrate")] == ["imageledger", "migrate"]
    assert commands[("imageledger-worker", "worker")] == ["imageledger", "run"]
    assert commands[("imageledger-bridge", "bridge")][:2] == ["imageledger", "kube"]
    for argv in commands.values():
        assert argv[0] == "imageledger"
        command = main.commands[argv[1]]
        options = {opt for param in command.params for opt in param.opts}
        assert {arg for arg in argv[2:] if arg.startswith("--")} <= options, argv


def test_the_overlay_sets_one_image_everywhere() -> None:
    kustomization = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    (image,) = kustomization["images"]
    expected = f"{image['newName']}:{image['newTag']}"
    images = {c["image"] for _, pod in pod_templates(render(OVERLAY)) for c in containers(pod)}
    assert images == {expected}


@LAYOUTS
def test_services_and_monitor_find_their_pods(layout: Path) -> None:
    objects = render(layout)
    pods = {w["metadata"]["name"]: (w["spec"]["template"], p) for w, p in pod_templates(objects)}
    services = [o for o in objects if o["kind"] == "Service"]
    for service in services:
        name = service["metadata"]["name"]
        template, pod = pods[name]
        selector = service["spec"]["selector"]
        assert selector.items() <= template["metadata"]["labels"].items()
        port_names = {p["name"] for c in pod["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    monitor = find(objects, "ServiceMonitor", "imageledger")
    wanted = monitor["spec"]["selector"]["matchLabels"].items()
    selected = [s for s in services if wanted <= s["metadata"]["labels"].items()]
    assert {s["metadata"]["name"] for s in selected} == {"imageledger-worker", "imageledger-bridge"}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["path"] == "/metrics"
        for service in selected:
            assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
