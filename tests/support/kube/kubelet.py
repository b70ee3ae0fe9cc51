"""A simulated kubelet per node: runs prepull pods through the phases a real one reports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from attrs import define, field
from kubernetes_asyncio.client import (
    V1ContainerImage,
    V1ContainerState,
    V1ContainerStateRunning,
    V1ContainerStateTerminated,
    V1ContainerStateWaiting,
    V1ContainerStatus,
    V1Node,
    V1Pod,
    V1PodCondition,
)

from tests.support.kube.objects import now

__all__ = ["Kubelet", "KubeletTiming"]

IMAGE_SIZE = 1_500_000_000
MAX_IMAGES = 50
"""The kubelet's default ``--node-status-max-images``."""


@define
class KubeletTiming:
    """How long the simulated kubelet takes: to start a pod, to pull an image (unless
    the node has it), to run ``/bin/true``, and between pull back-off reports."""

    start_seconds: float = 0.05
    pull_seconds: float = 0.3
    run_seconds: float = 0.05
    backoff_seconds: float = 0.5


@define
class Kubelet:
    """Runs every pod bound to an existing node: Pending (ContainerCreating) -> pull ->
    Running -> Succeeded, adding the image to the node's ``status.images``; an image in
    ``unpullable`` goes to ``ErrImagePull`` then ``ImagePullBackOff`` and stays Pending;
    ``activeDeadlineSeconds`` fails the pod with ``DeadlineExceeded``.

    ``write`` records a changed pod or node in the store (and tells the watches).
    """

    nodes: Callable[[str], V1Node | None]
    write_pod: Callable[[V1Pod], None]
    write_node: Callable[[V1Node], None]
    timing: KubeletTiming = field(factory=KubeletTiming)
    unpullable: set[str] = field(factory=set)
    flaky: Callable[[V1Pod], bool] | None = None
    """Pods whose pull fails as if their image were unpullable (chosen per pod)."""
    _tasks: dict[str, asyncio.Task[None]] = field(factory=dict, init=False)

    def admit(self, pod: V1Pod) -> None:
        """A pod was created: run it on its node (none: it stays Pending forever)."""
        task = asyncio.create_task(self._run(pod), name=f"kubelet {pod.metadata.name}")
        self._tasks[pod.metadata.uid] = task
        task.add_done_callback(lambda _: self._tasks.pop(pod.metadata.uid, None))

    def forget(self, pod: V1Pod) -> None:
        """A pod was deleted: stop running it."""
        task = self._tasks.pop(pod.metadata.uid, None)
        if task is not None:
            task.cancel()

    async def stop(self) -> None:
        """Stop every pod (the test is over)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, pod: V1Pod) -> None:
        await asyncio.sleep(self.timing.start_seconds)
        node = self.nodes(pod.spec.node_name or "")
        if node is None:
            return
        deadline = pod.spec.active_deadline_seconds
        try:
            async with asyncio.timeout(deadline):
                await self._start_and_run(pod, node)
        except TimeoutError:
            pod.status.phase = "Failed"
            pod.status.reason = "DeadlineExceeded"
            pod.status.message = "Pod was active on the node longer than the specified deadline"
            self.write_pod(pod)

    async def _start_and_run(self, pod: V1Pod, node: V1Node) -> None:
        container = pod.spec.containers[0]
        image = container.image
        status = pod.status
        status.host_ip = "10.0.0.1"
        status.start_time = now()
        status.conditions = [_condition("PodScheduled", "True"), _condition("Ready", "False")]
        status.container_statuses = [_container_status(container.name, image, "ContainerCreating")]
        self.write_pod(pod)
        if not _holds(node, image):
            await asyncio.sleep(self.timing.pull_seconds)
        if image in self.unpullable or (self.flaky is not None and self.flaky(pod)):
            await self._fail_pulls(pod, image)
            return
        self._add_image(node, image)
        started = now()
        state = V1ContainerState(running=V1ContainerStateRunning(started_at=started))
        status.container_statuses[0].state = state
        status.container_statuses[0].ready = status.container_statuses[0].started = True
        status.container_statuses[0].image_id = image
        status.phase = "Running"
        status.conditions = [_condition("PodScheduled", "True"), _condition("Ready", "True")]
        self.write_pod(pod)
        await asyncio.sleep(self.timing.run_seconds)
        status.container_statuses[0].state = V1ContainerState(
            terminated=V1ContainerStateTerminated(
                exit_code=0, reason="Completed", started_at=started, finished_at=now()
            )
        )
        status.container_statuses[0].ready = status.container_statuses[0].started = False
        status.phase = "Succeeded"
        status.conditions = [_condition("PodScheduled", "True"), _condition("Ready", "False")]
        self.write_pod(pod)

    async def _fail_pulls(self, pod: V1Pod, image: str) -> None:
        """ErrImagePull, then ImagePullBackOff, alternating, with doubling back-off."""
        backoff = self.timing.backoff_seconds
        pulled = f'failed to pull and unpack image "{image}": not found'
        while True:
            self._wait(pod, "ErrImagePull", f"rpc error: code = NotFound desc = {pulled}")
            await asyncio.sleep(self.timing.pull_seconds)
            self._wait(pod, "ImagePullBackOff", f'Back-off pulling image "{image}"')
            await asyncio.sleep(backoff)
            backoff *= 2

    def _wait(self, pod: V1Pod, reason: str, message: str) -> None:
        state = V1ContainerState(waiting=V1ContainerStateWaiting(reason=reason, message=message))
        pod.status.container_statuses[0].state = state
        self.write_pod(pod)

    def _add_image(self, node: V1Node, image: str) -> None:
        if self.nodes(node.metadata.name) is not node or _holds(node, image):
            return
        images = [*(node.status.images or []), V1ContainerImage([image], IMAGE_SIZE)]
        images.sort(key=lambda i: -(i.size_bytes or 0))
        node.status.images = images[:MAX_IMAGES]
        self.write_node(node)


def _holds(node: V1Node, image: str) -> bool:
    return any(image in (i.names or ()) for i in node.status.images or ())


def _condition(kind: str, status: str) -> V1PodCondition:
    return V1PodCondition(type=kind, status=status, last_transition_time=now())


def _container_status(name: str, image: str, waiting: str) -> V1ContainerStatus:
    return V1ContainerStatus(
        name=name,
        image=image,
        image_id="",
        ready=False,
        started=False,
        restart_count=0,
        state=V1ContainerState(waiting=V1ContainerStateWaiting(reason=waiting)),
    )
