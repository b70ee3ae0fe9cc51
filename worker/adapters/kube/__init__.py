"""The Kubernetes adapter (kubernetes_asyncio): nodes, and the bridge's prepull pods.

Everything it returns is a domain value (``worker.domain.cluster``); every failure is a
``worker.domain.errors.KubeError``.
"""

from worker.adapters.kube.connection import KubeConnection, connect
from worker.adapters.kube.nodes import KubeNodes
from worker.adapters.kube.pods import KubePods
from worker.adapters.kube.podspec import POD_SELECTOR, PodSettings, prepull_pod

__all__ = [
    "POD_SELECTOR",
    "KubeConnection",
    "KubeNodes",
    "KubePods",
    "PodSettings",
    "connect",
    "prepull_pod",
]
