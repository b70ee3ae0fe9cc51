"""The bridge's RBAC is what issue 13 asks and nothing more, and lets it create its prepull pods."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.manifests import BASE, OVERLAY, Manifest, render, schema_problems
from tests.support.rbac import WILDCARD, Access, ServiceAccount, allowed, grants, prepull_pod, rules
from worker.converter import parse_config

LAYOUTS = pytest.mark.parametrize("layout", [BASE, OVERLAY], ids=["base", "overlay"])
DIGEST = "sha256:" + "ab" * 32
NODE_VERBS = ("get", "list", "watch")
POD_VERBS = ("create", "get", "list", "watch", "delete")


def namespace_of(objects: list[Manifest]) -> str:
    (ns,) = [str(o["metadata"]["name"]) for o in objects if o["kind"] == "Namespace"]
    return ns


def bridge(objects: list[Manifest]) -> ServiceAccount:
    return ServiceAccount(namespace_of(objects), "imageledger-bridge")


def the_pod(objects: list[Manifest], node: str = "node-1.example.org") -> Manifest:
    """The pod the bridge creates (its own builder) for the rendered config."""
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap"]
    config = parse_config(yaml.safe_load(config_map["data"]["config.yaml"]))
    seconds = int(config.images.prepull_timeout.total_seconds())
    return prepull_pod(config, tag="w_2077_43", digest=DIGEST, node=node, seconds=seconds)


@LAYOUTS
def test_roles_grant_no_wildcard(layout: Path) -> None:
    found = rules(render(layout))
    for role, rule in found:
        for field in ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs"):
            assert WILDCARD not in (rule.get(field) or []), (role["metadata"]["name"], field)


@LAYOUTS
def test_the_bridge_gets_exactly_what_it_needs(layout: Path) -> None:
    objects = render(layout)
    namespace = namespace_of(objects)
    expected = {Access(v, "", "nodes", None) for v in NODE_VERBS}
    expected |= {Access(v, "", "pods", namespace) for v in POD_VERBS}
    assert grants(objects, bridge(objects)) == expected


@LAYOUTS
def test_the_worker_gets_no_access_and_no_token(layout: Path) -> None:
    objects = render(layout)
    worker = ServiceAccount(namespace_of(objects), "imageledger-worker")
    assert grants(objects, worker) == set()
    (account,) = [
        o for o in objects
        if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == worker.name
    ]  # fmt: skip
    assert account["automountServiceAccountToken"] is False


@LAYOUTS
def test_the_bridge_may_create_its_prepull_pod(layout: Path) -> None:
    objects = render(layout)
    pod = the_pod(objects)
    assert schema_problems(pod) == []
    namespace = pod["metadata"]["namespace"]
    assert namespace == namespace_of(objects)
    account = bridge(objects)
    for verb in POD_VERBS:
        assert allowed(objects, account, Access(verb, "", "pods", namespace)), verb
    for verb in NODE_VERBS:
        assert allowed(objects, account, Access(verb, "", "nodes", None)), verb


@LAYOUTS
def test_what_the_bridge_may_not_do(layout: Path) -> None:
    objects = render(layout)
    account = bridge(objects)
    namespace = namespace_of(objects)
    forbidden = [
        Access("create", "", "pods", "default"),
        Access("list", "", "pods", None),
        Access("update", "", "pods", namespace),
        Access("patch", "", "nodes", None),
        Access("delete", "", "nodes", None),
        Access("get", "", "secrets", namespace),
        Access("create", "", "pods/exec", namespace),
        Access("create", "apps", "deployments", namespace),
    ]
    assert [a for a in forbidden if allowed(objects, account, a)] == []
    stranger = ServiceAccount("default", "imageledger-bridge")
    assert not allowed(objects, stranger, Access("create", "", "pods", namespace))


def test_the_evaluator_sees_wildcards_and_cluster_roles() -> None:
    """A Role with ``*`` or a ClusterRole bound cluster-wide would be caught."""
    objects = render(BASE)
    (role,) = [o for o in objects if o["kind"] == "Role"]
    role["rules"][0]["verbs"] = [WILDCARD]
    account = bridge(objects)
    namespace = namespace_of(objects)
    assert allowed(objects, account, Access("update", "", "pods", namespace))
    assert WILDCARD in {a.verb for a in grants(objects, account)}
    (cluster_role,) = [o for o in objects if o["kind"] == "ClusterRole"]
    cluster_role["rules"].append({"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]})
    assert allowed(objects, account, Access("create", "", "pods", "kube-system"))


@LAYOUTS
def test_the_prepull_pod_has_the_issue_shape(layout: Path) -> None:
    objects = render(layout)
    long_node = "ip-10-0-0-1." + "a" * 240 + ".internal"
    pod = the_pod(objects, long_node)
    assert schema_problems(pod) == []
    name = pod["metadata"]["name"]
    assert len(name) <= 253
    assert all(part and part[0].isalnum() and part[-1].isalnum() for part in name.split("."))
    assert name == the_pod(objects, long_node)["metadata"]["name"]
    assert name != the_pod(objects, long_node + "x")["metadata"]["name"]
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert container["name"] == "prepull"
    assert container["command"] == ["/bin/true"]
    assert container["image"].endswith("@" + DIGEST)
    assert spec["nodeName"] == long_node
    assert spec["restartPolicy"] == "Never"
    assert container["resources"]["limits"] == {"cpu": "1m", "memory": "16Mi"}
    assert container["resources"]["requests"] == {"cpu": "1m", "memory": "16Mi"}
    assert 0 < spec["activeDeadlineSeconds"] <= 600
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "imageledger"
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap"]
    document = yaml.safe_load(config_map["data"]["config.yaml"])
    assert spec["imagePullSecrets"] == [{"name": document["kube"]["imagePullSecret"]}]
    wanted = [{k: v for k, v in t.items() if v is not None} for t in document["lab"]["tolerations"]]
    assert spec.get("tolerations", []) == wanted
