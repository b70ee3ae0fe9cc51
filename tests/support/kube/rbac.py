"""Who may do what on the stand-in: a bearer token and the Role bound to it."""

from __future__ import annotations

from attrs import define, field

__all__ = ["BRIDGE_USER", "Role"]

BRIDGE_USER = "system:serviceaccount:imageledger:imageledger-bridge"
"""The user name the stand-in's token authenticates as."""


@define
class Role:
    """Granted (resource, verb) pairs at cluster scope and per namespace; ``None`` as the
    role of the stand-in means everything is allowed."""

    cluster: set[tuple[str, str]] = field(factory=set)
    namespaced: dict[str, set[tuple[str, str]]] = field(factory=dict)

    @classmethod
    def bridge(cls, namespace: str) -> Role:
        """What issue 13 grants the bridge: nodes get/list/watch at cluster scope, pods
        create/get/list/watch/delete in its namespace."""
        return cls(
            cluster={("nodes", v) for v in ("get", "list", "watch")},
            namespaced={
                namespace: {("pods", v) for v in ("create", "get", "list", "watch", "delete")}
            },
        )

    def allows(self, resource: str, verb: str, namespace: str | None) -> bool:
        """Whether the verb on the resource (in ``namespace``, or cluster-wide) is granted;
        a cluster-scope grant covers every namespace, as a ClusterRoleBinding does."""
        if (resource, verb) in self.cluster:
            return True
        return namespace is not None and (resource, verb) in self.namespaced.get(namespace, set())

    def revoke(self, resource: str, verb: str) -> None:
        """Take the verb on the resource away, at every scope."""
        self.cluster.discard((resource, verb))
        for grants in self.namespaced.values():
            grants.discard((resource, verb))

    def grant(self, resource: str, verb: str, namespace: str | None = None) -> None:
        """Grant the verb on the resource in ``namespace`` (cluster-wide when None)."""
        if namespace is None:
            self.cluster.add((resource, verb))
        else:
            self.namespaced.setdefault(namespace, set()).add((resource, verb))
