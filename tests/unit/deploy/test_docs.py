"""Every command of docs/kubernetes.md: run where it needs no cluster, checked against the
rendered manifests and the CLI where it does."""

from __future__ import annotations

import base64
import json
import re
import shlex
import subprocess
from pathlib import Path

import click
import pytest
import yaml

from tests.support.manifests import ROOT, Manifest, containers, kubectl, pod_templates, render
from tests.support.rbac import prepull_pod
from worker.cli import main
from worker.converter import parse_config

DOC = ROOT / "docs" / "kubernetes.md"


def commands() -> list[list[str]]:
    """The commands of the page's ``sh`` blocks, continuation lines joined, split as a shell
    would."""
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True) for line in lines if line.split("#")[0].strip()]


COMMANDS = commands()
CLUSTER_VERBS = {"wait", "logs", "rollout", "delete", "get", "exec"}
"""What the page asks of a cluster; ``kustomize``, ``apply`` and ``create`` are run here."""


def verb(argv: list[str]) -> str:
    """The kubectl verb of ``argv`` (after an optional ``-n NAMESPACE``)."""
    assert argv[0] == "kubectl", argv
    return argv[3] if argv[1] == "-n" else argv[1]


RUN_KUSTOMIZE = [c for c in COMMANDS if verb(c) == "kustomize"]
CREATES = [c for c in COMMANDS if verb(c) == "create"]


def overlay_path(argv: list[str]) -> Path:
    """The folder a ``kubectl kustomize`` or ``apply -k`` command names."""
    return ROOT / (argv[argv.index("-k") + 1] if "-k" in argv else argv[2])


def namespace_flag(argv: list[str]) -> str | None:
    return argv[argv.index("-n") + 1] if "-n" in argv else None


def dry_run(argv: list[str]) -> Manifest:
    """Run a ``kubectl create`` command client-side only; the object it would create."""
    result = subprocess.run(
        [kubectl(), *argv[1:], "--dry-run=client", "-o", "yaml"],
        capture_output=True, text=True, timeout=30, cwd=ROOT, env={"KUBECONFIG": "/dev/null"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    created: Manifest = yaml.safe_load(result.stdout)
    return created


def referenced_secrets(objects: list[Manifest]) -> dict[str, set[str]]:
    """Secret name → the keys the workloads read from it."""
    keys: dict[str, set[str]] = {}
    for _, pod in pod_templates(objects):
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                names = {item["key"] for item in volume["secret"].get("items", [])}
                keys.setdefault(volume["secret"]["secretName"], set()).update(names)
        for container in containers(pod):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    keys.setdefault(ref["name"], set()).add(ref["key"])
    return keys


def test_the_page_has_the_steps() -> None:
    verbs = [verb(c) for c in COMMANDS]
    for step in ("create", "kustomize", "apply", "wait", "rollout", "exec"):
        assert step in verbs, step
    assert set(verbs) <= {"create", "kustomize", "apply"} | CLUSTER_VERBS
    assert any("imageledger" in c and "status" in c for c in COMMANDS)
    assert RUN_KUSTOMIZE
    assert CREATES


@pytest.mark.parametrize("argv", RUN_KUSTOMIZE, ids=shlex.join)
def test_kustomize_commands_run(argv: list[str]) -> None:
    result = subprocess.run(
        [kubectl(), *argv[1:]], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    kinds = {o["kind"] for o in yaml.safe_load_all(result.stdout) if o}
    assert {"Deployment", "Job", "Role", "ConfigMap"} <= kinds


def test_create_commands_make_what_the_manifests_reference() -> None:
    applied = {overlay_path(c) for c in COMMANDS if verb(c) == "apply"}
    (overlay,) = applied
    objects = render(overlay)
    (namespace,) = [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"]
    wanted = referenced_secrets(objects)
    made: dict[str, list[Manifest]] = {}
    for argv in CREATES:
        created = dry_run(argv)
        if created["kind"] == "Namespace":
            assert created["metadata"]["name"] == namespace
            continue
        assert created["kind"] == "Secret"
        assert created["metadata"]["namespace"] == namespace
        made.setdefault(created["metadata"]["name"], []).append(created)
    assert set(made) == set(wanted)
    for name, variants in made.items():
        for secret in variants:
            assert wanted[name] <= set(secret["data"]), (name, secret["data"].keys())
    for secret in made["imageledger-registry"]:
        assert secret["type"] == "kubernetes.io/dockerconfigjson"
        assert "auths" in json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))


def object_names(objects: list[Manifest]) -> set[str]:
    """``kind/name`` as kubectl accepts them, for the Jobs and Deployments."""
    names = set()
    for obj in objects:
        name = obj["metadata"]["name"]
        if obj["kind"] == "Job":
            names.add(f"job/{name}")
        elif obj["kind"] == "Deployment":
            names |= {f"deployment/{name}", f"deploy/{name}"}
    return names


def references(argv: list[str]) -> list[str]:
    """The objects a command names: ``kind/name`` words, or ``delete KIND NAME``."""
    rest = argv[4:] if argv[1] == "-n" else argv[2:]
    refs = [a for a in rest if re.fullmatch(r"[a-z]+/[\w-]+", a)]
    if verb(argv) == "delete":
        kind, name = [a for a in rest if not a.startswith("-")]
        refs.append(f"{kind}/{name}")
    return refs


def check_options(command: click.Command, argv: list[str]) -> None:
    """Every option in ``argv`` is one ``command`` has."""
    options = {opt for p in command.params for opt in p.opts}
    for arg in argv:
        if arg.startswith("-"):
            assert arg.split("=")[0] in options, (command.name, arg)


def test_cluster_commands_name_what_exists() -> None:
    (overlay,) = {overlay_path(c) for c in COMMANDS if verb(c) == "apply"}
    objects = render(overlay)
    names = object_names(objects)
    (namespace,) = [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"]
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap"]
    config = parse_config(yaml.safe_load(config_map["data"]["config.yaml"]))
    pod = prepull_pod(config, tag="t", digest="sha256:" + "0" * 64, node="n", seconds=60)
    assert pod["metadata"]["namespace"] == namespace
    checked = 0
    for argv in COMMANDS:
        if verb(argv) not in CLUSTER_VERBS:
            continue
        checked += 1
        assert namespace_flag(argv) == namespace, argv
        refs = references(argv)
        if verb(argv) == "get":
            assert argv[4] == "pods"
            assert "-l" in argv
        else:
            assert refs, argv
            assert [r for r in refs if r not in names] == [], argv
        if "-l" in argv:
            key, value = argv[argv.index("-l") + 1].split("=")
            assert pod["metadata"]["labels"][key] == value
        if verb(argv) == "exec":
            assert refs == ["deploy/imageledger-worker"]
            program = argv[argv.index("--") + 1 :]
            assert program[0] == "imageledger"
            check_options(main.commands[program[1]], program[2:])
    assert checked >= 8


def test_the_overlay_readme_lists_the_secrets() -> None:
    (overlay,) = {overlay_path(c) for c in COMMANDS if verb(c) == "apply"}
    text = (overlay / "README.md").read_text()
    rows = re.findall(r"^\| `(imageledger-[\w-]+)` \| `([^`]+)` \|", text, re.M)
    wanted = referenced_secrets(render(overlay))
    assert {name: {key} for name, key in rows} == wanted
