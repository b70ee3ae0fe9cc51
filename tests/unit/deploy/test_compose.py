"""compose.yaml: a valid Compose file whose services, files, secrets and commands agree with the
repository and the code."""

from __future__ import annotations

import ast
import copy
import importlib.metadata
import importlib.util
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml
from compose_spec import PyCompose
from packaging.utils import canonicalize_name

from tests.support.compose_checks import (
    bind_sources,
    provisioned_reads,
    secret_problems,
    secret_targets,
)
from tests.support.constraints import pyproject, runtime_closure
from tests.support.manifests import ROOT
from worker import factory
from worker.cli import main
from worker.config import DockerSource
from worker.converter import load_config
from worker.logs import LOG_LEVEL_ENV

TEXT = (ROOT / "compose.yaml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(TEXT)
SERVICES: dict[str, Any] = COMPOSE["services"]
ONE_SHOTS = {"seed", "migrate", "refresh", "reader-login"}


def known_environment() -> set[str]:
    """Every IMAGELEDGER_* name the code reads: CLI options and module constants."""
    names = {factory.CONFIG_ENV, factory.USERNAME_ENV, factory.PASSWORD_ENV, LOG_LEVEL_ENV}
    for command in main.commands.values():
        for param in command.params:
            if isinstance(param, click.Option) and isinstance(param.envvar, str):
                names.add(param.envvar)
    return names


def test_the_compose_specification_parser_accepts_it() -> None:
    parsed = PyCompose.from_yaml(TEXT)
    parsed.validate()
    assert parsed.name == "imageledger"
    assert set(parsed.service_names()) == set(SERVICES)


def test_the_parser_would_catch_mistakes() -> None:
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["worker"]["depends_on"]["migrate"]["condition"] = "service_done"
    with pytest.raises(ValueError, match="service_done"):
        PyCompose.from_yaml(yaml.safe_dump(broken)).validate()
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["worker"]["secrets"].append("registry_password")
    with pytest.raises(ValueError, match="registry_password"):
        PyCompose.from_yaml(yaml.safe_dump(broken)).validate()


def test_services_health_checks_and_restarts() -> None:
    assert set(SERVICES) == {
        "postgres", "rabbitmq", "registry", "seed", "migrate", "worker", "refresh", "cluster",
        "bridge", "reader-login", "prometheus", "grafana",
    }  # fmt: skip
    for name, service in SERVICES.items():
        if name in ONE_SHOTS:
            assert service["restart"] == "no", name
        else:
            assert "healthcheck" in service, name
    assert SERVICES["rabbitmq"]["image"].endswith("-management")


def test_dependencies_wait_for_the_right_conditions() -> None:
    conditions = {
        (name, dependency): spec["condition"]
        for name, service in SERVICES.items()
        for dependency, spec in service.get("depends_on", {}).items()
    }
    for (name, dependency), condition in conditions.items():
        expected = (
            "service_completed_successfully" if dependency in ONE_SHOTS else "service_healthy"
        )
        assert condition == expected, (name, dependency)
    worker = set(SERVICES["worker"]["depends_on"])
    assert worker == {"rabbitmq", "migrate", "seed"}
    assert set(SERVICES["migrate"]["depends_on"]) == {"postgres"}
    assert set(SERVICES["refresh"]["depends_on"]) == {"worker"}
    assert set(SERVICES["bridge"]["depends_on"]) == {"rabbitmq", "cluster"}
    assert "depends_on" not in SERVICES["cluster"]
    assert set(SERVICES["reader-login"]["depends_on"]) == {"migrate"}
    assert set(SERVICES["grafana"]["depends_on"]) == {"reader-login", "prometheus"}


def test_commands_exist() -> None:
    assert SERVICES["migrate"]["command"] == ["imageledger", "migrate"]
    assert SERVICES["worker"]["command"] == ["imageledger", "run"]
    assert SERVICES["refresh"]["command"] == ["imageledger", "refresh"]
    assert SERVICES["bridge"]["command"] == ["imageledger", "kube"]
    assert {"migrate", "run", "refresh", "kube"} <= set(main.commands)
    for name in ("seed", "cluster"):
        argv = SERVICES[name]["command"]
        assert argv[:2] == ["python", "-m"], name
        assert importlib.util.find_spec(entry_module(argv[2])) is not None, argv


def entry_module(module: str) -> str:
    """What ``python -m module`` runs: the module, or a package's ``__main__``."""
    spec = importlib.util.find_spec(module)
    assert spec is not None, module
    return f"{module}.__main__" if spec.submodule_search_locations else module


def loaded_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports a module makes when it is loaded: not those inside functions, which run
    only on their path (the stand-in's TLS, unused by the compose cluster, needs
    ``cryptography``)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from loaded_imports(node)


def imports(module: str) -> tuple[Path, set[str]]:
    """The file of ``module`` and the absolute imports it makes when loaded."""
    spec = importlib.util.find_spec(module)
    assert spec is not None, module
    assert spec.origin is not None, module
    names: set[str] = set()
    for node in loaded_imports(ast.parse(Path(spec.origin).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return Path(spec.origin), names


def demo_modules(module: str) -> tuple[set[Path], set[str]]:
    """Repository files (outside the installed ``worker``) that ``module`` needs, with their
    packages' ``__init__``; and the third-party distributions they import."""
    files: set[Path] = set()
    distributions: set[str] = set()
    owners = importlib.metadata.packages_distributions()
    todo, seen = [module], set()
    while todo:
        name = todo.pop()
        top = name.split(".")[0]
        if name in seen or top == "worker" or top in sys.stdlib_module_names:
            continue
        seen.add(name)
        if top not in {"livedemo", "tests"}:
            distributions |= {canonicalize_name(d) for d in owners.get(top, [top])}
            continue
        path, names = imports(name)
        files.add(path.relative_to(ROOT))
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))] + sorted(names)
    return files, distributions


def test_the_demo_image_holds_what_seed_and_cluster_import() -> None:
    """The ``demo`` stage copies every repository module the two entry points import, and
    they import nothing the image does not install (the runtime dependencies)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    stage = dockerfile.split("AS demo", 1)[1].split("\nFROM ", 1)[0]
    copied = [src for line in re.findall(r"^COPY (.+)$", stage, re.M) for src in line.split()[:-1]]
    project = pyproject()["project"]
    assert isinstance(project, dict)
    installed = set(runtime_closure(list(project["dependencies"])))
    for name in ("seed", "cluster"):
        files, distributions = demo_modules(entry_module(SERVICES[name]["command"][2]))
        assert Path("tests/support/push.py") in files or name == "cluster"
        assert Path("tests/support/kube/server.py") in files or name == "seed"
        for path in files:
            assert any(path.is_relative_to(src) or str(path) == src for src in copied), path
        assert distributions <= installed, distributions - installed
    for service in ("seed", "cluster", "migrate", "worker", "refresh", "bridge"):
        target = SERVICES[service]["build"]["target"]
        assert re.search(rf"^FROM \S+ AS {target}$", dockerfile, re.M), target


def test_environment_names_are_the_codes() -> None:
    known = known_environment()
    used = set()
    for service in SERVICES.values():
        for key in service.get("environment", {}):
            if key.startswith("IMAGELEDGER_"):
                used.add(key.removesuffix("_FILE"))
    assert used <= known, used - known
    assert {"IMAGELEDGER_DATABASE_URL", "IMAGELEDGER_AMQP_URL", factory.CONFIG_ENV} <= used


def test_worker_port_and_health_check_agree() -> None:
    worker = SERVICES["worker"]
    port = worker["environment"]["IMAGELEDGER_PORT"]
    assert f"127.0.0.1:{port}:{port}" in worker["ports"]
    assert f"127.0.0.1:{port}/readyz" in " ".join(worker["healthcheck"]["test"])


def test_mounted_files_and_build_contexts_exist() -> None:
    for name, service in SERVICES.items():
        for source in bind_sources(service):
            assert (ROOT / source).is_file(), (name, source)
        if "build" in service:
            assert (ROOT / service["build"]["context"] / "Dockerfile").is_file()
    assert "compose.secrets/" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_workers_config_points_at_the_seeded_registry() -> None:
    (mount,) = SERVICES["worker"]["volumes"]
    assert SERVICES["bridge"]["volumes"] == [mount]
    source, target, _ = mount.split(":")
    assert SERVICES["worker"]["environment"]["IMAGELEDGER_CONFIG"] == target
    assert SERVICES["bridge"]["environment"]["IMAGELEDGER_CONFIG"] == target
    config = load_config(ROOT / source)
    assert isinstance(config.images.source, DockerSource)
    assert config.images.source.insecure
    host, port = config.images.source.registry.split(":")
    assert host in SERVICES
    assert f"127.0.0.1:{port}:{port}" in SERVICES[host]["ports"]
    seed = SERVICES["seed"]["command"]
    assert seed[seed.index("--registry") + 1] == f"http://{host}:{port}"
    assert config.kube.namespace == "imageledger"  # the stand-in's default namespace


def test_the_kubeconfig_names_the_stand_in_service(tmp_path: Path) -> None:
    script = ROOT / "deploy" / "compose" / "make-secrets"
    subprocess.run([str(script), str(tmp_path)], check=True, capture_output=True, timeout=30)
    kubeconfig = yaml.safe_load((tmp_path / "kubeconfig").read_text())
    server = urlsplit(kubeconfig["clusters"][0]["cluster"]["server"])
    assert server.scheme == "http"
    assert server.hostname in SERVICES
    assert server.hostname == "cluster"
    assert f"{server.port})" in " ".join(SERVICES["cluster"]["healthcheck"]["test"])
    (context,) = kubeconfig["contexts"]
    assert context["context"]["namespace"] == "imageledger"
    assert len(kubeconfig["users"][0]["user"]["token"]) >= 32


def test_every_services_secrets_are_its_own() -> None:
    assert secret_problems(COMPOSE) == []
    owners = {n: set(secret_targets(s)) for n, s in SERVICES.items() if secret_targets(s)}
    assert owners == {
        "postgres": {"postgres_password"},
        "rabbitmq": {"rabbitmq_conf"},
        "migrate": {"database_url"},
        "worker": {"database_url", "amqp_url"},
        "refresh": {"amqp_url"},
        "cluster": {"kubeconfig"},
        "bridge": {"amqp_url", "kubeconfig"},
        "reader-login": {"postgres_password", "reader_password"},
        "grafana": {"reader_password"},
    }


def test_the_secret_check_catches_what_it_should() -> None:
    shared_env = copy.deepcopy(COMPOSE)  # the old stack: one env file for everyone
    for name in ("rabbitmq", "worker"):
        shared_env["services"][name]["env_file"] = ["compose.env"]
    assert len(secret_problems(shared_env)) == 2
    unread = copy.deepcopy(COMPOSE)  # a kubeconfig mounted but not named by KUBECONFIG
    del unread["services"]["bridge"]["environment"]["KUBECONFIG"]
    assert secret_problems(unread) == [
        "bridge: mounts secret kubeconfig at /run/secrets/kubeconfig but does not read it"
    ]
    stray = copy.deepcopy(COMPOSE)
    stray["services"]["rabbitmq"]["secrets"].append("database_url")
    stray["services"]["bridge"]["environment"]["IMAGELEDGER_DATABASE_URL_FILE"] = (
        "/run/secrets/database_url"
    )
    stray["services"]["registry"]["environment"]["REGISTRY_HTTP_SECRET"] = "s3cret"
    stray["services"]["seed"]["environment"] = {"URL": "amqp://u:pw@rabbitmq:5672/"}
    stray["secrets"]["unused"] = {"file": "./compose.secrets/unused"}
    problems = " | ".join(secret_problems(stray))
    assert "rabbitmq: mounts secret database_url" in problems
    assert "bridge: reads /run/secrets/database_url" in problems
    assert "registry: environment REGISTRY_HTTP_SECRET" in problems
    assert "seed: environment URL" in problems
    assert "secret unused is mounted by no service" in problems


def test_make_secrets_writes_every_secret_consistently(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    script = ROOT / "deploy" / "compose" / "make-secrets"
    subprocess.run([str(script), str(folder)], check=True, capture_output=True, timeout=30)
    files = {Path(d["file"]).name for d in COMPOSE["secrets"].values()}
    assert {p.name for p in folder.iterdir()} == files
    read = {name: (folder / name).read_text() for name in files}
    database, amqp = urlsplit(read["database_url"]), urlsplit(read["amqp_url"])
    assert database.password == read["postgres_password"]
    assert database.username == SERVICES["postgres"]["environment"]["POSTGRES_USER"]
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert database.path == "/" + SERVICES["postgres"]["environment"]["POSTGRES_DB"]
    settings = dict(line.split(" = ", 1) for line in read["rabbitmq.conf"].splitlines())
    assert (amqp.username, amqp.password) == (settings["default_user"], settings["default_pass"])
    assert (amqp.hostname, amqp.port) == ("rabbitmq", 5672)
    assert read["postgres_password"] != settings["default_pass"]
    (folder / "amqp_url").unlink()
    subprocess.run([str(script), str(folder)], check=True, capture_output=True, timeout=30)
    assert (folder / "amqp_url").read_text() == read["amqp_url"]  # same password kept
    assert (folder / "database_url").read_text() == read["database_url"]


def test_grafana_reads_the_reader_password_its_provisioning_names() -> None:
    grafana = SERVICES["grafana"]
    assert provisioned_reads(grafana) == {"/run/secrets/reader_password"}
    without = copy.deepcopy(COMPOSE)
    without["services"]["grafana"]["secrets"] = []
    assert secret_problems(without) == [
        "grafana: reads /run/secrets/reader_password, which is not one of its secrets"
    ]


def test_no_secrets_in_the_file() -> None:
    assert not re.search(r"PASSWORD\s*:\s*[^/\s]", TEXT)
    assert not re.search(r"://[^/\s:]+:[^@\s]+@", TEXT)
