"""Kubernetes objects of the stand-in, built with kubernetes_asyncio's own model classes."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from kubernetes_asyncio.client import (
    ApiClient,
    V1ContainerImage,
    V1ListMeta,
    V1Node,
    V1NodeCondition,
    V1NodeSpec,
    V1NodeStatus,
    V1NodeSystemInfo,
    V1ObjectMeta,
    V1Status,
    V1StatusCause,
    V1StatusDetails,
    V1Taint,
)

__all__ = [
    "Wire",
    "expired",
    "failure",
    "forbidden",
    "invalid",
    "make_node",
    "name_problem",
    "now",
    "pod_problems",
]

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def now() -> datetime:
    """The current time as the API server writes it (UTC, whole seconds)."""
    return datetime.now(tz=UTC).replace(microsecond=0)


class Wire:
    """JSON in and out through the client's own ApiClient, so shapes are the real ones."""

    def __init__(self) -> None:
        self._api = ApiClient()

    async def close(self) -> None:
        """Close the client's (unused) HTTP session."""
        await self._api.close()

    def dump(self, obj: Any) -> Any:
        """A model as the API server sends it (camelCase keys, no nulls)."""
        return self._api.sanitize_for_serialization(obj)

    def load(self, data: Any, model: str) -> Any:
        """JSON (already parsed) as an instance of ``model`` (e.g. ``"V1Pod"``)."""
        response: Any = SimpleNamespace(data=json.dumps(data))
        return self._api.deserialize(response, model)


def make_node(
    name: str,
    labels: Mapping[str, str],
    taints: Sequence[V1Taint],
    images: Sequence[V1ContainerImage],
) -> V1Node:
    """A Ready node as a kubelet registers it."""
    at = now()
    return V1Node(
        api_version="v1",
        kind="Node",
        metadata=V1ObjectMeta(
            name=name,
            uid=str(uuid.uuid4()),
            labels={"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", **labels},
            creation_timestamp=at,
        ),
        spec=V1NodeSpec(taints=list(taints) or None),
        status=V1NodeStatus(
            conditions=[
                V1NodeCondition(
                    type="Ready",
                    status="True",
                    reason="KubeletReady",
                    message="kubelet is posting ready status",
                    last_heartbeat_time=at,
                    last_transition_time=at,
                )
            ],
            images=list(images),
            node_info=V1NodeSystemInfo(
                architecture="amd64",
                boot_id=str(uuid.uuid4()),
                container_runtime_version="containerd://1.7.0",
                kernel_version="6.1.0",
                kube_proxy_version="",
                kubelet_version="v1.30.0",
                machine_id=uuid.uuid4().hex,
                operating_system="linux",
                os_image="Debian GNU/Linux 12 (bookworm)",
                system_uuid=str(uuid.uuid4()),
            ),
        ),
    )


def failure(
    code: int,
    reason: str,
    message: str,
    *,
    kind: str | None = None,
    name: str | None = None,
    causes: Sequence[V1StatusCause] = (),
) -> V1Status:
    """The Status object the API server sends with an error."""
    details = None
    if kind is not None or name is not None or causes:
        details = V1StatusDetails(kind=kind, name=name, causes=list(causes) or None)
    return V1Status(
        api_version="v1",
        kind="Status",
        metadata=V1ListMeta(),
        status="Failure",
        message=message,
        reason=reason,
        details=details,
        code=code,
    )


def forbidden(user: str, verb: str, resource: str, namespace: str | None) -> V1Status:
    """403 in the words of the RBAC authorizer."""
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (
        f'{resource} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "" {scope}'
    )
    return failure(403, "Forbidden", message, kind=resource)


def expired(requested: int, oldest: int) -> V1Status:
    """410 for a watch from a resource version older than the kept history."""
    return failure(410, "Expired", f"too old resource version: {requested} ({oldest})")


def invalid(kind: str, name: str, causes: Sequence[tuple[str, str]]) -> V1Status:
    """422 for an object that fails validation; ``causes`` are (field, message)."""
    listed = ", ".join(f"{f}: Invalid value: {m}" for f, m in causes)
    return failure(
        422,
        "Invalid",
        f'{kind} "{name}" is invalid: {listed}',
        kind=kind.lower() + "s",
        name=name,
        causes=[V1StatusCause(field=f, message=m, reason="FieldValueInvalid") for f, m in causes],
    )


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a DNS-1123 subdomain of at most 253 characters, if it is not."""
    if len(name) > 253:
        return "must be no more than 253 characters"
    if not _SUBDOMAIN.fullmatch(name):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
            "characters, '-' or '.', and must start and end with an alphanumeric character"
        )
    return None


def _label_problems(labels: Mapping[str, str]) -> list[tuple[str, str]]:
    problems = []
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if (prefix and name_problem(prefix)) or len(name) > 63 or not _LABEL_NAME.fullmatch(name):
            problems.append((f"metadata.labels[{key}]", "not a valid label key"))
        if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
            problems.append((f"metadata.labels[{key}]", f'"{value}": not a valid label value'))
    return problems


def pod_problems(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Validation errors of a pod to create, as (field path, message)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    problems: list[tuple[str, str]] = []
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        problems.append(("metadata.name", "name or generateName is required"))
    elif (why := name_problem(name)) is not None:
        problems.append(("metadata.name", f'"{name}": {why}'))
    problems.extend(_label_problems(meta.get("labels") or {}))
    containers = spec.get("containers") or []
    if not containers:
        problems.append(("spec.containers", "Required value"))
    for i, container in enumerate(containers):
        if not container.get("image"):
            problems.append((f"spec.containers[{i}].image", "Required value"))
    node_name = spec.get("nodeName")
    if node_name and (why := name_problem(node_name)) is not None:
        problems.append(("spec.nodeName", f'"{node_name}": {why}'))
    if spec.get("restartPolicy", "Always") not in ("Always", "OnFailure", "Never"):
        problems.append(("spec.restartPolicy", "Unsupported value"))
    return problems
