"""The API server away or refusing: one log line, back-off, and the watches resume."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from tests.integration.kube.conftest import QUICK_BACKOFF, now, pinned, request
from tests.support.bridge import MemoryBroker, running, until
from tests.support.kube import KubeStandIn
from worker.adapters.kube import KubeConnection, PodSettings, connect
from worker.domain.errors import KubeForbiddenError, KubeUnavailableError
from worker.domain.messages import NodeInventory, PodCompleted
from worker.services.kube import (
    CompletionReporter,
    CompletionSettings,
    NodeReporter,
    PrepullLauncher,
    ReporterSettings,
)

SETTINGS = PodSettings("imageledger")


async def test_watches_resume_after_the_api_server_was_away(
    kube: KubeStandIn, connection: KubeConnection, broker: MemoryBroker
) -> None:
    kube.add_node("node-1")
    kube.timing.pull_seconds = 0.5
    nodes = NodeReporter(
        connection.nodes(), broker, clock=now, settings=ReporterSettings(backoff=QUICK_BACKOFF)
    )
    settings = CompletionSettings(backoff=QUICK_BACKOFF)
    pods = CompletionReporter(connection.pods(SETTINGS), broker, clock=now, settings=settings)
    launcher = PrepullLauncher(connection.pods(SETTINGS), broker, clock=now)
    with structlog.testing.capture_logs() as logs:
        async with running(nodes.run(), pods.run()):
            await until(lambda: kube.watches("Node") == kube.watches("Pod") == 1)
            await launcher.launch(request("node-1"))
            await kube.go_away()
            with pytest.raises(KubeUnavailableError, match="unreachable"):
                await launcher.launch(request("node-1", attempt=2))
            kube.label_node("node-1", {"zone": "b"})
            await asyncio.sleep(2.0)  # the pod finishes while the bridge cannot see it
            assert broker.of(PodCompleted) == []
            await kube.come_back()
            (done,) = await broker.wait_for(PodCompleted, within=5)
            await broker.wait_for(NodeInventory, lambda m: m.labels.get("zone") == "b")
            await until(lambda: not kube.pods())
    assert done.succeeded
    warned = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert sorted(warned) == [
        "nodes: list and watch failed; retrying with back-off",
        "pods: list and watch failed; retrying with back-off",
    ]
    recovered = [e["event"] for e in logs if str(e["event"]).endswith("works again")]
    assert sorted(recovered) == [
        "nodes: list and watch works again",
        "pods: list and watch works again",
    ]
    assert nodes.counters.watch_restarts[("nodes", "expired")] == 0
    assert nodes.counters.watch_restarts[("nodes", "error")] >= 2


async def test_a_forbidden_list_backs_off_until_the_role_allows_it(
    kube: KubeStandIn, connection: KubeConnection, broker: MemoryBroker
) -> None:
    assert kube.role is not None
    kube.role.revoke("nodes", "list")
    kube.add_node("node-1", images=[pinned()])
    nodes = NodeReporter(
        connection.nodes(), broker, clock=now, settings=ReporterSettings(backoff=QUICK_BACKOFF)
    )
    with structlog.testing.capture_logs() as logs:
        async with running(nodes.run()):
            await asyncio.sleep(1.0)
            assert broker.published == []
            kube.role.grant("nodes", "list")
            await broker.wait_for(NodeInventory)
    (warning,) = [e for e in logs if e["log_level"] == "warning"]
    assert warning["hint"] == "check the bridge's Role and binding"
    assert 'cannot list resource "nodes"' in str(warning["error"])
    assert "403" in str(warning["error"])
    lists = [path for _, path in kube.requests if path == "/api/v1/nodes"]
    assert 2 <= len(lists) <= 12  # backed off, not a hot loop


async def test_a_wrong_token_is_refused_as_forbidden(kube: KubeStandIn) -> None:
    kube.kubeconfig.write_text(kube.kubeconfig.read_text().replace(kube.token, "not-the-token"))
    async with connect(kube.kubeconfig) as other:
        with pytest.raises(KubeForbiddenError, match="401"):
            await other.nodes().list_nodes()
