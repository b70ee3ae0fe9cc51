"""Kubernetes RBAC over rendered manifests: what a service account may do, as the API server's
RBAC authorizer decides it (bindings, role references, rule matching); and the bridge's
prepull pod as it sends it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from attrs import frozen
from kubernetes_asyncio.client import ApiClient

from tests.support.manifests import Manifest
from worker import factory
from worker.adapters.kube import prepull_pod as build_prepull_pod
from worker.config import Config
from worker.domain.messages import PrepullRequestedMessage
from worker.domain.references import DockerReference

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


def prepull_pod(config: Config, *, tag: str, digest: str, node: str, seconds: int) -> Manifest:
    """The pod the bridge creates for a request of ``tag`` at ``digest`` on ``node`` due in
    ``seconds``: ``worker.adapters.kube.prepull_pod`` with the settings the bridge's factory
    derives from ``config``, as the JSON the client sends."""
    now = datetime.now(UTC)
    request = PrepullRequestedMessage(
        image=DockerReference.parse(config.images.repository.reference(tag, digest)),
        tag=tag,
        digest=digest,
        node=node,
        attempt=1,
        deadline=now + timedelta(seconds=seconds),
    )
    pod = build_prepull_pod(request, now, factory.pod_settings(config))

    async def serialize() -> Manifest:
        api = ApiClient()
        try:
            sent: Manifest = api.sanitize_for_serialization(pod)
            return sent
        finally:
            await api.close()

    return asyncio.run(serialize())
