"""What a Compose parser cannot see: files that must exist, and who gets which secret.

A service's secrets are *its own* when all of these hold:

1. It gets credentials only as secrets: it loads no ``env_file`` (an env file hands every
   line to every service that names it), and no ``environment`` value holds a credential
   (a URL with ``user:password@``, or a literal under a name saying PASSWORD, PASS, SECRET
   or TOKEN; a ``*_FILE`` name pointing into ``/run/secrets/`` is a reference, not a value).
2. Every secret it mounts is read by it: the secret's path in the container is the value of
   one of its ``*_FILE`` environment variables (or of ``KUBECONFIG``, the standard variable
   naming a kubeconfig file), or the secret is mounted at an absolute path inside a folder
   that the service's image reads its configuration from (``CONFIG_FOLDERS``, e.g.
   RabbitMQ's ``conf.d``).
3. Everything it is told to read is mounted: each such value under ``/run/secrets/``
   names a secret the service mounts.
4. Every top-level secret is mounted by some service and comes from a file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = [
    "CONFIG_FOLDERS",
    "FILE_VARIABLES",
    "bind_sources",
    "provisioned_reads",
    "secret_problems",
    "secret_targets",
]

SECRETS_DIR = "/run/secrets/"
REPOSITORY = Path(__file__).resolve().parents[2]
"""Where compose.yaml's relative bind-mount sources start."""
CONFIG_FOLDERS = {"rabbitmq": ("/etc/rabbitmq/conf.d/",)}
"""Image name (without tag) → folders whose every file the image's program reads."""
FILE_VARIABLES = {"KUBECONFIG"}
"""Environment variables besides ``*_FILE`` whose value is a file the program reads."""
_CREDENTIAL_NAME = re.compile(r"PASSWORD|PASS$|SECRET|TOKEN", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"://[^/\s:@]+:[^@\s]+@")


def secret_targets(service: dict[str, Any]) -> dict[str, str]:
    """Secret name → where the service sees it (``/run/secrets/<target or name>``)."""
    targets = {}
    for entry in service.get("secrets", []):
        if isinstance(entry, str):
            targets[entry] = SECRETS_DIR + entry
            continue
        target = entry.get("target", entry["source"])
        targets[entry["source"]] = target if target.startswith("/") else SECRETS_DIR + target
    return targets


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _names_a_file(variable: str) -> bool:
    return variable.endswith("_FILE") or variable in FILE_VARIABLES


def _image_name(service: dict[str, Any]) -> str:
    image = str(service.get("image", ""))
    return image.rsplit("/", 1)[-1].split(":", 1)[0]


def _credential_problems(name: str, service: dict[str, Any]) -> list[str]:
    problems = []
    if service.get("env_file"):
        problems.append(f"{name}: loads env_file {service['env_file']}")
    for key, value in _environment(service).items():
        if _names_a_file(key) and value.startswith(SECRETS_DIR):
            continue
        if _URL_CREDENTIALS.search(value) or (_CREDENTIAL_NAME.search(key) and value):
            problems.append(f"{name}: environment {key} holds a credential")
    return problems


def _reading_problems(name: str, service: dict[str, Any]) -> list[str]:
    problems = []
    targets = secret_targets(service)
    read_paths = {v for k, v in _environment(service).items() if _names_a_file(k)}
    read_paths |= provisioned_reads(service)
    folders = CONFIG_FOLDERS.get(_image_name(service), ())
    for secret, target in targets.items():
        in_config = target.startswith(folders) if folders else False
        if target not in read_paths and not in_config:
            problems.append(f"{name}: mounts secret {secret} at {target} but does not read it")
    for path in sorted(read_paths):
        if path.startswith(SECRETS_DIR) and path not in targets.values():
            problems.append(f"{name}: reads {path}, which is not one of its secrets")
    return problems


_FILE_EXPANSION = re.compile(r"\$__file\{([^}]+)\}")


def provisioned_reads(service: dict[str, Any]) -> set[str]:
    """Files a service's bind-mounted configuration names as Grafana's ``$__file{path}``
    (the provisioning reads them): the mounted repository files, folders searched."""
    found: set[str] = set()
    for source in bind_sources(service):
        path = REPOSITORY / source
        files = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
        for file in files:
            if file.is_file() and file.suffix in (".yaml", ".yml"):
                found.update(_FILE_EXPANSION.findall(file.read_text()))
    return found


def secret_problems(compose: dict[str, Any]) -> list[str]:
    """Every way in which some service's secrets are not its own (empty: all are)."""
    services: dict[str, Any] = compose.get("services", {})
    problems = []
    for name, service in services.items():
        problems += _credential_problems(name, service)
        problems += _reading_problems(name, service)
    mounted = {secret for service in services.values() for secret in secret_targets(service)}
    for secret, definition in (compose.get("secrets") or {}).items():
        if secret not in mounted:
            problems.append(f"secret {secret} is mounted by no service")
        if "file" not in definition:
            problems.append(f"secret {secret} does not come from a file")
    return problems


def bind_sources(service: dict[str, Any]) -> list[str]:
    """Host paths the service bind-mounts (short ``./x:/y`` and long ``type: bind``)."""
    sources = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/", "~")):
                sources.append(source)
        elif volume.get("type") == "bind":
            sources.append(volume["source"])
    return sources
