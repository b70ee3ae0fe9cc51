"""The completion reporter: ``prepull.pod_completed`` for each prepull pod that ended, then
the pod is deleted; pods left by an earlier run are adopted by their labels."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from attrs import field, frozen

from worker.domain.cluster import PodEvent, PodOutcome, PrepullPod, WatchEventKind, pod_outcome
from worker.domain.errors import ImageLedgerError, KubeError
from worker.domain.messages import PodCompleted
from worker.domain.references import DockerReference, InvalidReferenceError
from worker.services.kube.ports import BridgeCounters, PodTracker, Publisher
from worker.services.kube.retry import Backoff, follow

__all__ = ["CompletionReporter", "CompletionSettings"]

log = structlog.get_logger("imageledger.kube.pods")

_DELETED = "PodDeleted: the pod was deleted before it finished"


@frozen
class CompletionSettings:
    """Deadlines and failed deletions are checked every ``sweep_interval``; failed list
    and watch requests back off by ``backoff``."""

    sweep_interval: timedelta = timedelta(seconds=5)
    backoff: Backoff = field(factory=Backoff)


class CompletionReporter:
    """Follows the bridge's prepull pods: reports each outcome once, then deletes the pod.

    The report's message id is the pod's uid, so a report repeated after a crash (between
    publishing and deleting) is recognised by the worker. ``synced`` is set once the
    first listing (the adoption of earlier pods) is done.
    """

    def __init__(
        self,
        pods: PodTracker,
        publisher: Publisher,
        *,
        clock: Callable[[], datetime],
        settings: CompletionSettings | None = None,
        counters: BridgeCounters | None = None,
    ) -> None:
        self._pods = pods
        self._publisher = publisher
        self._clock = clock
        self._settings = settings or CompletionSettings()
        self.counters = counters or BridgeCounters()
        self.synced = asyncio.Event()
        self._running: dict[str, PrepullPod] = {}
        self._reported: dict[str, PrepullPod] = {}
        self._undeleted: set[str] = set()

    @property
    def pods_running(self) -> int:
        """Prepull pods that have not finished yet."""
        return len(self._running)

    async def run(self) -> None:
        """Follow the pods and sweep for deadlines, until cancelled."""
        await follow(
            "pods",
            self._relist,
            self._pods.watch_prepull_pods,
            self._apply,
            self._sweep_periodically,
            backoff=self._settings.backoff,
            counters=self.counters,
        )

    async def _relist(self) -> str:
        listing = await self._pods.list_prepull_pods()
        listed = {pod.uid for pod in listing.pods}
        for uid in [u for u in self._reported if u not in listed]:
            self._forget(uid)
        for pod in [p for u, p in self._running.items() if u not in listed]:
            await self._finish(pod, PodOutcome(False, self._clock(), _DELETED))
            self._forget(pod.uid)
        for pod in listing.pods:
            await self._seen(pod)
        if not self.synced.is_set():
            log.info("prepull pods listed", pods=len(listing.pods), running=len(self._running))
            self.synced.set()
        return listing.resource_version

    async def _apply(self, event: PodEvent) -> str:
        pod = event.pod
        if pod is not None and event.kind is WatchEventKind.DELETED:
            if pod.uid in self._running:
                outcome = pod_outcome(pod, self._clock())
                await self._finish(pod, outcome or PodOutcome(False, self._clock(), _DELETED))
            self._forget(pod.uid)
        elif pod is not None:
            await self._seen(pod)
        return event.resource_version

    def _forget(self, uid: str) -> None:
        self._running.pop(uid, None)
        self._reported.pop(uid, None)
        self._undeleted.discard(uid)

    async def _seen(self, pod: PrepullPod) -> None:
        if pod.uid in self._reported:
            return
        outcome = pod_outcome(pod, self._clock())
        if outcome is None:
            self._running[pod.uid] = pod
            return
        await self._finish(pod, outcome)
        await self._delete(pod)

    async def _finish(self, pod: PrepullPod, outcome: PodOutcome) -> None:
        """Publish the outcome (once per pod); on failure the pod stays to be tried again."""
        self._running.pop(pod.uid, None)
        self._reported[pod.uid] = pod
        try:
            await self._report(pod, outcome)
        except BaseException:
            self._reported.pop(pod.uid, None)
            self._running[pod.uid] = pod
            raise
        kind = "succeeded" if outcome.succeeded else "failed"
        cause = (outcome.reason or "").partition(":")[0]
        self.counters.completions[(kind, cause)] += 1
        log.info(
            f"prepull {kind}", pod=pod.name, node=pod.node, image=pod.image, reason=outcome.reason
        )

    async def _report(self, pod: PrepullPod, outcome: PodOutcome) -> None:
        try:
            image = DockerReference.parse(pod.image)
        except InvalidReferenceError as exc:
            log.warning(
                "prepull pod names no valid image; not reported", pod=pod.name, error=str(exc)
            )
            return
        if not image.digest or not pod.node:
            log.warning("prepull pod has no digest or node; not reported", pod=pod.name)
            return
        message = PodCompleted(
            node=pod.node,
            image=image,
            pod=pod.name,
            succeeded=outcome.succeeded,
            finished_at=outcome.finished_at,
            reason=outcome.reason,
        )
        await self._publisher.publish_message(message, message_id=f"pod.completed:{pod.uid}")
        self.counters.published[PodCompleted.ROUTING_KEY] += 1

    async def _delete(self, pod: PrepullPod) -> None:
        try:
            await self._pods.delete_pod(pod.name)
        except KubeError as exc:
            log.warning("prepull pod not deleted; trying again later", pod=pod.name, error=str(exc))
            self._undeleted.add(pod.uid)
            return
        self._undeleted.discard(pod.uid)

    async def _sweep_periodically(self) -> None:
        await self.synced.wait()
        while True:
            await asyncio.sleep(self._settings.sweep_interval.total_seconds())
            try:
                await self.sweep()
            except ImageLedgerError as exc:
                log.warning("prepull pod sweep failed", error=str(exc))

    async def sweep(self) -> None:
        """Fail the running pods whose deadline passed (their kubelet may be gone), and
        delete the reported pods a failed request left behind."""
        now = self._clock()
        for pod in list(self._running.values()):
            outcome = pod_outcome(pod, now)
            if outcome is not None and pod.uid in self._running:
                await self._finish(pod, outcome)
                await self._delete(pod)
        for uid in list(self._undeleted):
            undeleted = self._reported.get(uid)
            if undeleted is not None:
                await self._delete(undeleted)
