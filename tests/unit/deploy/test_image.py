"""The Dockerfile: a numeric user, the HTTP port, pinned packages, a secret-file entrypoint."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import click
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.constraints import parse_constraints, pyproject, runtime_closure
from tests.support.manifests import BASE, ROOT, containers, pod_templates, render
from worker.cli import main

DOCKERFILE = (ROOT / "Dockerfile").read_text()
ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.sh"
PINS = parse_constraints((ROOT / "constraints.txt").read_text())


def instructions(name: str) -> list[str]:
    """The arguments of every ``name`` instruction (continuation lines joined)."""
    joined = DOCKERFILE.replace("\\\n", " ")
    return re.findall(rf"^{name}\s+(.+)$", joined, re.MULTILINE)


def project_list(*keys: str) -> list[str]:
    node: object = pyproject()
    for key in keys:
        assert isinstance(node, dict)
        node = node[key]
    assert isinstance(node, list)
    return [str(item) for item in node]


def test_the_user_is_numeric_and_the_manifests_use_it() -> None:
    (user,) = instructions("USER")
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user), user
    uid, gid = (int(part) for part in user.split(":"))
    assert f"--uid {uid}" in DOCKERFILE
    assert f"--gid {gid}" in DOCKERFILE
    for _, pod in pod_templates(render(BASE)):
        assert pod["securityContext"]["runAsUser"] == uid
        assert pod["securityContext"]["runAsGroup"] == gid
        for container in containers(pod):
            assert container["securityContext"]["runAsUser"] == uid


def test_the_exposed_port_is_the_workers() -> None:
    run = main.commands["run"]
    (port_option,) = [p for p in run.params if isinstance(p, click.Option) and p.name == "port"]
    assert instructions("EXPOSE") == [str(port_option.default)]
    worker = [
        c for w, p in pod_templates(render(BASE)) for c in containers(p) if c["name"] == "worker"
    ]
    assert worker[0]["ports"][0]["containerPort"] == port_option.default


def test_pip_installs_with_the_constraints() -> None:
    (install,) = [line for line in instructions("RUN") if "pip install" in line]
    assert "-c constraints.txt" in install
    assert "PIP_CONSTRAINT=/app/constraints.txt" in install
    assert any("constraints.txt" in line for line in instructions("COPY"))


def test_every_runtime_dependency_is_pinned_within_its_range() -> None:
    for text in project_list("project", "dependencies"):
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in PINS, f"{name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(PINS[name], prereleases=True), (name, PINS[name])


def test_everything_the_dependencies_need_is_pinned() -> None:
    closure = runtime_closure(project_list("project", "dependencies"))
    assert sorted(set(closure) - set(PINS)) == []


def test_the_build_backend_is_pinned() -> None:
    for text in project_list("build-system", "requires"):
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in PINS
        assert requirement.specifier.contains(PINS[name]), name


def test_only_packages_are_pinned() -> None:
    """No dev-only package in the image's constraints."""
    dev = {
        canonicalize_name(Requirement(t).name)
        for t in project_list("project", "optional-dependencies", "dev")
    }
    assert sorted(dev & set(PINS)) == []


def entrypoint(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *argv], env=env, capture_output=True, text=True, timeout=10
    )


def test_the_entrypoint_reads_secret_files(tmp_path: Path) -> None:
    secret = tmp_path / "database_url"
    url = "postgresql+asyncpg://imageledger:s3cret@postgres:5432/imageledger"
    secret.write_text(url + "\n")
    env = {"PATH": os.environ["PATH"], "IMAGELEDGER_DATABASE_URL_FILE": str(secret)}
    result = entrypoint(env, "env")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"IMAGELEDGER_DATABASE_URL={url}" in lines
    assert not [line for line in lines if line.startswith("IMAGELEDGER_DATABASE_URL_FILE=")]
    assert os.access(ENTRYPOINT, os.X_OK)


def test_the_entrypoint_refuses_ambiguous_or_missing_files(tmp_path: Path) -> None:
    base = {"PATH": os.environ["PATH"]}
    both = {**base, "IMAGELEDGER_AMQP_URL": "amqp://x", "IMAGELEDGER_AMQP_URL_FILE": "/dev/null"}
    result = entrypoint(both, "true")
    assert result.returncode == 2
    assert "both IMAGELEDGER_AMQP_URL" in result.stderr
    missing = {**base, "IMAGELEDGER_AMQP_URL_FILE": str(tmp_path / "absent")}
    result = entrypoint(missing, "true")
    assert result.returncode == 2
    assert "cannot read" in result.stderr
    result = entrypoint(base, "sh", "-c", "exit 7")
    assert result.returncode == 7
