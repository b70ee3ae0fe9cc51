"""Kubernetes RBAC over rendered manifests: what a service account may do, as the API server's
RBAC authorizer decides it (bindings, role references, rule matching); and the prepull pod."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

from attrs import frozen

from tests.support.manifests import Manifest

__all__ = [
    "Access",
    "ServiceAccount",
    "allowed",
    "grants",
    "prepull_pod",
    "rules",
]

WILDCARD = "*"
RBAC_GROUP = "rbac.authorization.k8s.io"


@frozen
class ServiceAccount:
    """A service account, the subject of bindings."""

    namespace: str
    name: str


@frozen
class Access:
    """A request: ``verb`` on ``resource`` of API ``group``, in ``namespace`` (None: a
    cluster-scoped resource, or every namespace at once)."""

    verb: str
    group: str
    resource: str
    namespace: str | None


@frozen
class _Grant:
    rule: Manifest
    namespace: str | None
    """Where the rule applies: the RoleBinding's namespace, or None for everywhere."""


def rules(objects: list[Manifest]) -> Iterator[tuple[Manifest, Manifest]]:
    """``(role, rule)`` for every rule of every Role and ClusterRole."""
    for obj in objects:
        if obj["kind"] in {"Role", "ClusterRole"}:
            for rule in obj.get("rules") or []:
                yield obj, rule


def _subject_matches(subject: Manifest, account: ServiceAccount, namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        return name == account.name and subject.get("namespace", namespace) == account.namespace
    if kind == "Group":
        groups = {
            "system:authenticated",
            "system:serviceaccounts",
            f"system:serviceaccounts:{account.namespace}",
        }
        return name in groups
    if kind == "User":
        return name == f"system:serviceaccount:{account.namespace}:{account.name}"
    return False


def _role(objects: list[Manifest], ref: Manifest, namespace: str | None) -> Manifest | None:
    for obj in objects:
        meta = obj["metadata"]
        if obj["kind"] != ref["kind"] or meta["name"] != ref["name"]:
            continue
        if obj["kind"] == "ClusterRole" or meta.get("namespace") == namespace:
            return obj
    return None


def _grants(objects: list[Manifest], account: ServiceAccount) -> Iterator[_Grant]:
    for binding in objects:
        if binding["kind"] not in {"RoleBinding", "ClusterRoleBinding"}:
            continue
        namespace = binding["metadata"].get("namespace")
        scope = namespace if binding["kind"] == "RoleBinding" else None
        subjects = binding.get("subjects") or []
        if not any(_subject_matches(s, account, namespace or "") for s in subjects):
            continue
        role = _role(objects, binding["roleRef"], namespace)
        for rule in (role or {}).get("rules") or []:
            yield _Grant(rule, scope)


def _matches(rule: Manifest, access: Access) -> bool:
    if rule.get("resourceNames"):  # named objects only: never a create, list or watch
        return False

    def has(field: str, value: str) -> bool:
        values = rule.get(field) or []
        return value in values or WILDCARD in values

    return (
        has("verbs", access.verb)
        and has("apiGroups", access.group)
        and has("resources", access.resource)
    )


def allowed(objects: list[Manifest], account: ServiceAccount, access: Access) -> bool:
    """Whether the RBAC in ``objects`` lets ``account`` make the request ``access``."""
    for grant in _grants(objects, account):
        in_scope = grant.namespace is None or grant.namespace == access.namespace
        if in_scope and _matches(grant.rule, access):
            return True
    return False


def grants(objects: list[Manifest], account: ServiceAccount) -> set[Access]:
    """Every (verb, group, resource, namespace) the bindings give ``account``, spelled out
    as the rules spell them (a ``*`` stays a ``*``)."""
    return {
        Access(verb, group, resource, grant.namespace)
        for grant in _grants(objects, account)
        for verb in grant.rule.get("verbs") or []
        for group in grant.rule.get("apiGroups") or []
        for resource in grant.rule.get("resources") or []
    }


def _dns_label(text: str, limit: int) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return cleaned[:limit].rstrip("-")


def prepull_pod(
    *,
    namespace: str,
    image: str,
    tag: str,
    digest: str,
    node: str,
    tolerations: list[dict[str, Any]],
    pull_secret: str | None,
    deadline_seconds: int,
) -> Manifest:
    """The prepull pod of issue 13: one container ``prepull`` running ``/bin/true`` from
    ``image`` (a reference pinned by ``digest``) on ``node``, never restarted, tiny requests
    and limits, the config's tolerations, labels marking it as imageledger's, a
    deterministic DNS-1123 name.

    The bridge (``imageledger kube``) builds the real one; until its builder can be imported
    here this is the shape it must have.
    """
    short = digest.removeprefix("sha256:")[:12]
    suffix = hashlib.sha256(f"{digest}/{node}".encode()).hexdigest()[:8]
    name = f"prepull-{_dns_label(tag, 40)}-{_dns_label(node, 150)}-{suffix}"
    resources = {"cpu": "1m", "memory": "16Mi"}
    spec: Manifest = {
        "nodeName": node,
        "restartPolicy": "Never",
        "activeDeadlineSeconds": deadline_seconds,
        "automountServiceAccountToken": False,
        "tolerations": tolerations,
        "containers": [
            {
                "name": "prepull",
                "image": image,
                "command": ["/bin/true"],
                "imagePullPolicy": "IfNotPresent",
                "resources": {"requests": resources, "limits": resources},
            }
        ],
    }
    if pull_secret is not None:
        spec["imagePullSecrets"] = [{"name": pull_secret}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "imageledger",
                "app.kubernetes.io/component": "prepull",
                "imageledger.io/digest": short,
                "imageledger.io/node": _dns_label(node, 63),
            },
        },
        "spec": spec,
    }
