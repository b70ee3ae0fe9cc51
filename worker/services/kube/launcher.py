"""The prepull pod launcher: one ``prepull.requested`` becomes one prepull pod."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime

import structlog

from worker.domain.cluster import prepull_pod_name
from worker.domain.errors import KubeRejectedError
from worker.domain.messages import PodCompleted, PrepullRequestedMessage
from worker.services.kube.ports import BridgeCounters, PodCreator, Publisher

__all__ = ["LaunchResult", "PrepullLauncher"]

log = structlog.get_logger("imageledger.kube.launcher")


class LaunchResult(enum.Enum):
    """What became of a request: its pod exists, its deadline had passed (nothing to
    do: the worker times it out), or the API server rejected the pod (reported failed)."""

    CREATED = "created"
    EXPIRED = "expired"
    REJECTED = "rejected"


class PrepullLauncher:
    """Creates the pod of each prepull request; acknowledge the request once ``launch``
    returned (the pod exists by then, created now or before)."""

    def __init__(
        self,
        pods: PodCreator,
        publisher: Publisher,
        *,
        clock: Callable[[], datetime],
        counters: BridgeCounters | None = None,
    ) -> None:
        self._pods = pods
        self._publisher = publisher
        self._clock = clock
        self.counters = counters or BridgeCounters()

    async def launch(self, request: PrepullRequestedMessage) -> LaunchResult:
        """Create the request's prepull pod (a pod existing already is fine).

        A pod the API server rejects as invalid is reported as a failed prepull at once,
        so the worker retries or parks it instead of waiting for its deadline.

        Raises
        ------
        KubeUnavailableError
            The API server cannot be reached or refused (``KubeForbiddenError``): leave
            the request unacknowledged and try it again later.
        ImageLedgerError
            Reporting a rejected pod failed (the broker is away): try again later.
        """
        now = self._clock()
        fields = {"node": request.node, "tag": request.tag, "digest": request.digest}
        if request.deadline <= now:
            self.counters.requests_expired += 1
            log.info("prepull request past its deadline; no pod", **fields)
            return LaunchResult.EXPIRED
        try:
            name = await self._pods.create_prepull_pod(request, now)
        except KubeRejectedError as exc:
            await self._report_rejected(request, str(exc))
            return LaunchResult.REJECTED
        self.counters.pods_created += 1
        log.info("prepull pod created", pod=name, attempt=request.attempt, **fields)
        return LaunchResult.CREATED

    async def _report_rejected(self, request: PrepullRequestedMessage, problem: str) -> None:
        name = prepull_pod_name(request.tag, request.node, request.digest, request.attempt)
        log.warning("prepull pod rejected by the API server", pod=name, error=problem)
        message = PodCompleted(
            node=request.node,
            image=request.image,
            pod=name,
            succeeded=False,
            finished_at=self._clock(),
            reason=f"PodRejected: {problem}",
        )
        await self._publisher.publish_message(message, message_id=f"pod.rejected:{name}")
        self.counters.completions[("failed", "PodRejected")] += 1
        self.counters.published[PodCompleted.ROUTING_KEY] += 1
