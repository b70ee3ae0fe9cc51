"""The prepull pod the bridge creates, and what it reads back from one."""

from __future__ import annotations

import math
from datetime import datetime

from attrs import asdict, frozen
from kubernetes_asyncio.client import (
    V1Container,
    V1LocalObjectReference,
    V1ObjectMeta,
    V1Pod,
    V1PodSpec,
    V1ResourceRequirements,
    V1Toleration,
)

from worker.domain.cluster import MANAGED_BY, PrepullPod, label_value, prepull_pod_name
from worker.domain.messages import PrepullRequestedMessage
from worker.domain.nodes import Toleration

__all__ = [
    "ANNOTATION_DEADLINE",
    "ANNOTATION_IMAGE",
    "LABEL_COMPONENT",
    "LABEL_DIGEST",
    "LABEL_MANAGED_BY",
    "LABEL_NODE",
    "POD_SELECTOR",
    "PodSettings",
    "prepull_pod",
    "read_prepull_pod",
]

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_DIGEST = "imageledger.io/digest"
LABEL_NODE = "imageledger.io/node"
ANNOTATION_IMAGE = "imageledger.io/image"
ANNOTATION_DEADLINE = "imageledger.io/deadline"
ANNOTATION_ATTEMPT = "imageledger.io/attempt"
COMPONENT = "prepull"
POD_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_COMPONENT}={COMPONENT}"
"""The label selector of every prepull pod the bridge created."""

_RESOURCES = {"cpu": "1m", "memory": "16Mi"}


@frozen
class PodSettings:
    """Where prepull pods go and what they carry besides the request: the namespace, the
    lab's tolerations and an optional image pull secret (by name)."""

    namespace: str
    tolerations: tuple[Toleration, ...] = ()
    pull_secret: str | None = None


def _toleration(t: Toleration) -> V1Toleration:
    """The domain's toleration has the pod spec's fields, under the client's names."""
    return V1Toleration(**asdict(t))


def prepull_pod(request: PrepullRequestedMessage, now: datetime, settings: PodSettings) -> V1Pod:
    """The pod that pulls ``request.image`` on ``request.node``: one container ``prepull``
    running ``/bin/true`` from the image pinned by digest, bound to the node, never
    restarted, 1m CPU / 16Mi, active for at most the time left until the deadline."""
    image = request.image
    pinned = f"{image.registry}/{image.repository}@{request.digest}"
    seconds = max(1, math.ceil((request.deadline - now).total_seconds()))
    secrets = [V1LocalObjectReference(name=settings.pull_secret)] if settings.pull_secret else None
    return V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=V1ObjectMeta(
            name=prepull_pod_name(request.tag, request.node, request.digest, request.attempt),
            namespace=settings.namespace,
            labels={
                LABEL_MANAGED_BY: MANAGED_BY,
                LABEL_COMPONENT: COMPONENT,
                LABEL_DIGEST: label_value(request.digest),
                LABEL_NODE: label_value(request.node),
            },
            annotations={
                ANNOTATION_IMAGE: str(image),
                ANNOTATION_DEADLINE: request.deadline.isoformat(),
                ANNOTATION_ATTEMPT: str(request.attempt),
            },
        ),
        spec=V1PodSpec(
            containers=[
                V1Container(
                    name="prepull",
                    image=pinned,
                    command=["/bin/true"],
                    working_dir="/tmp",
                    resources=V1ResourceRequirements(
                        requests=dict(_RESOURCES), limits=dict(_RESOURCES)
                    ),
                )
            ],
            node_name=request.node,
            restart_policy="Never",
            active_deadline_seconds=seconds,
            tolerations=[_toleration(t) for t in settings.tolerations] or None,
            image_pull_secrets=secrets,
            automount_service_account_token=False,
            enable_service_links=False,
        ),
    )


def _deadline(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def read_prepull_pod(pod: V1Pod) -> PrepullPod:
    """What the completion reporter needs of a pod the API server returned."""
    meta = pod.metadata
    spec = pod.spec
    status = pod.status
    annotations = meta.annotations or {}
    containers = (spec.containers or []) if spec is not None else []
    image = annotations.get(ANNOTATION_IMAGE) or (containers[0].image if containers else "")
    waiting_reason = waiting_message = None
    exit_code: int | None = None
    finished_at: datetime | None = None
    statuses = (status.container_statuses if status is not None else None) or []
    for container in statuses:
        state = container.state
        if state is not None and state.waiting is not None and waiting_reason is None:
            waiting_reason, waiting_message = state.waiting.reason, state.waiting.message
        if state is not None and state.terminated is not None:
            exit_code = state.terminated.exit_code
            finished_at = state.terminated.finished_at
    return PrepullPod(
        name=meta.name,
        uid=meta.uid or "",
        node=(spec.node_name if spec is not None else None) or "",
        image=image or "",
        phase=(status.phase if status is not None else None) or "Pending",
        reason=status.reason if status is not None else None,
        message=status.message if status is not None else None,
        waiting_reason=waiting_reason,
        waiting_message=waiting_message,
        exit_code=exit_code,
        finished_at=finished_at,
        deadline=_deadline(annotations.get(ANNOTATION_DEADLINE)),
        deleting=meta.deletion_timestamp is not None,
    )
