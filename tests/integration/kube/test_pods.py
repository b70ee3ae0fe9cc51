"""Prepull pods through the real client: the pod built, idempotent create, 403, 422."""

from __future__ import annotations

import pytest
import structlog

from tests.integration.kube.conftest import DIGEST, NAMESPACE, now, pinned, request
from tests.support.bridge import MemoryBroker
from tests.support.kube import KubeStandIn
from worker.adapters.kube import KubeConnection, PodSettings
from worker.domain.errors import KubeForbiddenError
from worker.domain.messages import PodCompleted
from worker.domain.nodes import Toleration
from worker.services.kube import LaunchResult, PrepullLauncher

SETTINGS = PodSettings(
    NAMESPACE,
    tolerations=(Toleration(key="gpu", operator="Exists", effect="NoSchedule"),),
    pull_secret="pull-secret",
)


def launcher(connection: KubeConnection, broker: MemoryBroker) -> PrepullLauncher:
    return PrepullLauncher(connection.pods(SETTINGS), broker, clock=now)


async def test_the_pod_is_the_prepuller_pod(kube: KubeStandIn, connection: KubeConnection) -> None:
    kube.add_node("node-1")
    name = await connection.pods(SETTINGS).create_prepull_pod(request("node-1", seconds=120), now())
    pod = kube.pod(name)
    assert pod is not None
    assert pod.metadata.labels == {
        "app.kubernetes.io/managed-by": "imageledger",
        "app.kubernetes.io/component": "prepull",
        "imageledger.io/digest": pod.metadata.labels["imageledger.io/digest"],
        "imageledger.io/node": "node-1",
    }
    assert pod.metadata.labels["imageledger.io/digest"].startswith("sha256-5f0c5f0c")
    (container,) = pod.spec.containers
    assert (container.name, container.image, container.command) == (
        "prepull",
        pinned(),
        ["/bin/true"],
    )
    assert (
        container.resources.requests
        == container.resources.limits
        == {
            "cpu": "1m",
            "memory": "16Mi",
        }
    )
    assert (pod.spec.node_name, pod.spec.restart_policy) == ("node-1", "Never")
    assert 118 <= pod.spec.active_deadline_seconds <= 120
    (toleration,) = pod.spec.tolerations
    assert (toleration.key, toleration.operator, toleration.effect) == (
        "gpu",
        "Exists",
        "NoSchedule",
    )
    assert [s.name for s in pod.spec.image_pull_secrets] == ["pull-secret"]


async def test_a_long_tag_and_node_give_a_name_the_api_server_accepts(
    kube: KubeStandIn, connection: KubeConnection
) -> None:
    node = "n" * 60 + "." + "node-with-a-very-long-name." * 6 + "example"
    kube.add_node(node)
    tag = "exp_W_2077_01_" + "x" * 100
    name = await connection.pods(SETTINGS).create_prepull_pod(request(node, tag=tag), now())
    assert 240 <= len(name) <= 253
    pod = kube.pod(name)
    assert pod is not None
    assert pod.spec.node_name == node


async def test_create_is_idempotent(
    kube: KubeStandIn, connection: KubeConnection, broker: MemoryBroker
) -> None:
    kube.add_node("node-1")
    bridge = launcher(connection, broker)
    prepull = request("node-1")
    assert await bridge.launch(prepull) is LaunchResult.CREATED
    assert await bridge.launch(prepull) is LaunchResult.CREATED
    assert len(kube.pods()) == 1
    posts = [path for method, path in kube.requests if method == "POST"]
    assert len(posts) == 2
    assert await bridge.launch(request("node-1", attempt=2)) is LaunchResult.CREATED
    assert len(kube.pods()) == 2


async def test_forbidden_create_raises_the_forbidden_error(
    kube: KubeStandIn, connection: KubeConnection, broker: MemoryBroker
) -> None:
    assert kube.role is not None
    kube.role.revoke("pods", "create")
    with pytest.raises(KubeForbiddenError, match=r'403.*cannot create resource "pods"'):
        await launcher(connection, broker).launch(request("node-1"))
    assert kube.pods() == []


async def test_pods_outside_the_namespace_are_forbidden(
    kube: KubeStandIn, connection: KubeConnection
) -> None:
    elsewhere = connection.pods(PodSettings("kube-system"))
    with pytest.raises(KubeForbiddenError, match='in the namespace "kube-system"'):
        await elsewhere.list_prepull_pods()


async def test_a_rejected_pod_is_reported_failed_at_once(
    kube: KubeStandIn, connection: KubeConnection, broker: MemoryBroker
) -> None:
    with structlog.testing.capture_logs() as logs:
        result = await launcher(connection, broker).launch(request("Node_1"))
    assert result is LaunchResult.REJECTED
    # The worker refuses the report at its edge (a node name Kubernetes refuses, issue 12
    # fault 6); a node it knows always has a valid name, so this is what a request that
    # did not come from a worker gets.
    assert broker.published == []
    ((refused, why),) = broker.refused
    assert why.endswith("is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.',"
                        " starting and ending with a letter or digit) @ $.node")  # fmt: skip
    completed = refused.message
    assert isinstance(completed, PodCompleted)
    assert not completed.succeeded
    assert completed.reason is not None
    assert completed.reason.startswith("PodRejected: create pod imageledger/")
    assert "422" in completed.reason
    assert "spec.nodeName" in completed.reason
    assert (completed.node, completed.image.digest) == ("Node_1", DIGEST)
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "prepull pod rejected by the API server"
    ]


async def test_a_request_past_its_deadline_creates_no_pod(
    kube: KubeStandIn, connection: KubeConnection, broker: MemoryBroker
) -> None:
    kube.add_node("node-1")
    result = await launcher(connection, broker).launch(request("node-1", seconds=-1))
    assert result is LaunchResult.EXPIRED
    assert kube.pods() == []
    assert broker.published == []


async def test_deleting_a_missing_pod_is_fine(
    kube: KubeStandIn, connection: KubeConnection
) -> None:
    await connection.pods(SETTINGS).delete_pod("prepull-nothing-here")
    assert ("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/prepull-nothing-here") in kube.requests
