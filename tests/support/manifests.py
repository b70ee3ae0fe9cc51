"""Kubernetes manifests for tests: rendered by ``kubectl kustomize``, validated against schemas."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

__all__ = [
    "BASE",
    "KUBERNETES_VERSION",
    "OVERLAY",
    "ROOT",
    "Manifest",
    "containers",
    "find",
    "kubectl",
    "pod_templates",
    "render",
    "schema_problems",
]

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "kubernetes" / "base"
OVERLAY = ROOT / "deploy" / "kubernetes" / "overlays" / "example"
CRD_SCHEMAS = ROOT / "tests" / "data" / "prometheus-operator"
KUBERNETES_VERSION = "1.30.0"
"""The Kubernetes release whose OpenAPI schema the objects must satisfy (strict: no unknown
fields)."""

Manifest = dict[str, Any]

_CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.v1.schema.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.v1.schema.json",
}


def kubectl() -> str:
    """Path of ``kubectl`` (Debian package kubernetes-client); fails clearly if absent."""
    path = shutil.which("kubectl")
    if path is None:
        raise RuntimeError("kubectl not found: apt-get install -y kubernetes-client")
    return path


@functools.cache
def _render(path: Path) -> str:
    result = subprocess.run(
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed: {result.stderr.strip()}")
    return result.stdout


def render(path: Path) -> list[Manifest]:
    """The objects ``kubectl kustomize path`` prints (a fresh copy each call)."""
    return [obj for obj in yaml.safe_load_all(_render(path)) if obj is not None]


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    """The one object of ``kind`` named ``name``."""
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} named {name}"
    return found[0]


def pod_templates(objects: list[Manifest]) -> Iterator[tuple[Manifest, Manifest]]:
    """``(workload, pod spec)`` for every Deployment and Job."""
    for obj in objects:
        if obj["kind"] in {"Deployment", "Job"}:
            yield obj, obj["spec"]["template"]["spec"]


def containers(pod_spec: Manifest) -> list[Manifest]:
    """Init containers and containers of a pod spec."""
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def schema_problems(obj: Manifest) -> list[str]:
    """Why ``obj`` does not validate: the Kubernetes OpenAPI schema (strict) for built-in
    kinds, the CRD's own schema for the Prometheus Operator's; empty when it is valid."""
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    if key in _CUSTOM_KINDS:
        return _custom_problems(obj, _CUSTOM_KINDS[key])
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(p) for p in exc.path)
        return [f"{where}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"no schema: {exc}"]
    return []


def _custom_problems(obj: Manifest, schema_file: str) -> list[str]:
    validator = _crd_validator(schema_file)
    problems = [
        f"{'/'.join(str(p) for p in error.path)}: {error.message}"
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.path)))
    ]
    # The CRD schema says only "metadata: object"; check it as the API server does, as the
    # ObjectMeta of a built-in kind.
    holder = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj.get("metadata", {})}
    return problems + schema_problems(holder)


@functools.cache
def _crd_validator(schema_file: str) -> jsonschema.protocols.Validator:
    schema = json.loads((CRD_SCHEMAS / schema_file).read_text())
    return jsonschema.Draft7Validator(_strict(schema))


def _strict(node: Any) -> Any:
    """The CRD schema with unknown fields rejected (what ``kubectl apply``'s strict field
    validation reports), except where the schema keeps unknown fields on purpose."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    strict = {key: _strict(value) for key, value in node.items()}
    if (
        "properties" in strict
        and "additionalProperties" not in strict
        and not strict.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict
