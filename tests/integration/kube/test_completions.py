"""Completion reporting against the stand-in: success, pull failure, adoption, deadline."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.integration.kube.conftest import (
    DIGEST,
    OTHER_DIGEST,
    QUICK_BACKOFF,
    now,
    pinned,
    request,
)
from tests.support.bridge import MemoryBroker, running, until
from tests.support.kube import KubeStandIn
from worker.adapters.kube import KubeConnection, PodSettings
from worker.domain.messages import NodeInventory, PodCompleted
from worker.services.kube import (
    CompletionReporter,
    CompletionSettings,
    NodeReporter,
    PrepullLauncher,
    ReporterSettings,
)

SETTINGS = PodSettings("imageledger")


def completions(connection: KubeConnection, broker: MemoryBroker) -> CompletionReporter:
    settings = CompletionSettings(sweep_interval=timedelta(seconds=0.1), backoff=QUICK_BACKOFF)
    return CompletionReporter(connection.pods(SETTINGS), broker, clock=now, settings=settings)


def launcher(connection: KubeConnection, broker: MemoryBroker) -> PrepullLauncher:
    return PrepullLauncher(connection.pods(SETTINGS), broker, clock=now)


async def gone(kube: KubeStandIn) -> None:
    """Wait until the namespace holds no pod."""
    await until(lambda: not kube.pods())


async def test_a_pulled_image_is_reported_succeeded_and_its_pod_deleted(
    kube: KubeStandIn, connection: KubeConnection, broker: MemoryBroker
) -> None:
    kube.add_node("node-1")
    nodes = NodeReporter(
        connection.nodes(), broker, clock=now, settings=ReporterSettings(backoff=QUICK_BACKOFF)
    )
    reporter = completions(connection, broker)
    async with running(nodes.run(), reporter.run()):
        await reporter.synced.wait()
        await launcher(connection, broker).launch(request("node-1"))
        (done,) = await broker.wait_for(PodCompleted)
        await gone(kube)
        await broker.wait_for(NodeInventory, lambda m: bool(m.images))
    assert done.succeeded
    assert (done.node, str(done.image)) == ("node-1", str(request("node-1").image))
    assert done.pod.startswith("prepull-w-2077-01-node-1-")
    assert kube.node_images("node-1") == [pinned()]
    assert reporter.counters.completions == {("succeeded", ""): 1}
    assert broker.ids(PodCompleted)[0].startswith("pod.completed:")


async def test_the_first_pull_failure_is_reported_without_waiting_through_back_off(
    kube: KubeStandIn, connection: KubeConnection, broker: MemoryBroker
) -> None:
    kube.add_node("node-1")
    kube.mark_unpullable(pinned())
    reporter = completions(connection, broker)
    async with running(reporter.run()):
        await reporter.synced.wait()
        await launcher(connection, broker).launch(request("node-1"))
        (failed,) = await broker.wait_for(PodCompleted)
        await gone(kube)
        await asyncio.sleep(0.5)  # the back-off the kubelet would report next
    assert not failed.succeeded
    assert failed.reason is not None
    assert failed.reason.startswith("ErrImagePull: rpc error: code = NotFound")  # not BackOff
    assert len(broker.of(PodCompleted)) == 1
    assert kube.node_images("node-1") == []


async def test_a_restarted_reporter_adopts_pods_left_behind(
    kube: KubeStandIn, connection: KubeConnection, broker: MemoryBroker
) -> None:
    kube.add_node("node-1", images=[pinned(DIGEST)])
    kube.add_node("node-2")
    kube.timing.pull_seconds = 1.0
    first = completions(connection, broker)
    async with running(first.run()):
        await first.synced.wait()
        await launcher(connection, broker).launch(request("node-1", DIGEST))
        await launcher(connection, broker).launch(request("node-2", OTHER_DIGEST))
    # the first reporter is gone; node-1 held its image, so its pod finishes meanwhile
    await until(lambda: any(p.status.phase == "Succeeded" for p in kube.pods()))
    assert broker.of(PodCompleted) == []
    second = completions(connection, broker)
    async with running(second.run()):
        await broker.wait_for(PodCompleted, count=2)
        await gone(kube)
    reported = {(m.node, m.image.digest, m.succeeded) for m in broker.of(PodCompleted)}
    assert reported == {("node-1", DIGEST, True), ("node-2", OTHER_DIGEST, True)}


async def test_a_pod_whose_node_never_runs_it_fails_at_its_deadline(
    kube: KubeStandIn, connection: KubeConnection, broker: MemoryBroker
) -> None:
    reporter = completions(connection, broker)
    async with running(reporter.run()):
        await reporter.synced.wait()
        await launcher(connection, broker).launch(request("node-9", seconds=0.5))
        (failed,) = await broker.wait_for(PodCompleted)
        await gone(kube)
    assert not failed.succeeded
    assert failed.reason is not None
    assert failed.reason.startswith("DeadlineExceeded: ")


async def test_a_pod_deleted_by_someone_else_is_reported_failed(
    kube: KubeStandIn, connection: KubeConnection, broker: MemoryBroker
) -> None:
    reporter = completions(connection, broker)
    async with running(reporter.run()):
        await reporter.synced.wait()
        name = await connection.pods(SETTINGS).create_prepull_pod(request("node-9"), now())
        await until(lambda: reporter.pods_running == 1)
        await connection.pods(SETTINGS).delete_pod(name)
        (failed,) = await broker.wait_for(PodCompleted)
    assert failed.reason == "PodDeleted: the pod was deleted before it finished"


async def test_bookmarks_keep_a_quiet_pod_watch_resumable(
    kube: KubeStandIn, connection: KubeConnection, broker: MemoryBroker
) -> None:
    kube.add_node("node-1")
    kube.store.history_limit = 3
    reporter = completions(connection, broker)
    async with running(reporter.run()):
        await until(lambda: kube.watches("Pod") == 1)
        for _ in range(6):
            kube.heartbeat("node-1")  # versions move on; no pod changes
        await asyncio.sleep(0.8)  # a bookmark brings the pod watch's version along
        kube.end_watches()
        await until(lambda: kube.watches("Pod") == 1)
        await launcher(connection, broker).launch(request("node-1"))
        await broker.wait_for(PodCompleted)
    assert reporter.counters.watch_restarts[("pods", "expired")] == 0
