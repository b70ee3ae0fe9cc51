"""A stand-in Kubernetes API server with simulated kubelets, for the bridge's tests (and, as
``python -m tests.support.kube``, the cluster of the demo and the compose stack).

It speaks the real REST wire format (objects built with kubernetes_asyncio's models) for
what the bridge uses: nodes get/list/watch, pods create/get/list/watch/delete in
namespaces with label selectors, watches from a resource version with bookmarks and 410
for an expired version, 401/403/404/409/422 Status answers, and an outage on demand. It
is not a Kubernetes: no scheduler, no admission, no field selectors, no patch or update,
no set-based label selectors, immediate deletion, one kubelet behaviour for all nodes.
"""

from __future__ import annotations

import secrets
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import yaml
from attrs import define, field
from kubernetes_asyncio.client import V1ContainerImage, V1Node, V1Pod, V1Taint

from tests.support.kube.kubelet import IMAGE_SIZE, Kubelet, KubeletTiming
from tests.support.kube.objects import Wire, make_node, now
from tests.support.kube.rbac import BRIDGE_USER, Role
from tests.support.kube.server import ApiServer
from tests.support.kube.store import Selector, Store

__all__ = ["BRIDGE_USER", "KubeStandIn", "KubeletTiming", "Role", "kube_standin"]

_ALL = Selector()


@define
class KubeStandIn:
    """The API server, its store and kubelets, and helpers to change the cluster."""

    directory: Path
    namespace: str = "imageledger"
    tls: bool = True
    role: Role | None = None
    timing: KubeletTiming = field(factory=KubeletTiming)
    history_limit: int | None = None
    bookmark_seconds: float = 0.5
    token: str = field(factory=lambda: secrets.token_urlsafe(24))
    host: str = "127.0.0.1"
    port: int = 0
    server_url: str | None = None
    """The URL the kubeconfig names (default: ``url``), e.g. a host name of a network."""
    flaky: Callable[[V1Pod], bool] | None = None
    """Pods whose pull fails (as for an unpullable image), chosen per pod."""
    kubeconfig: Path = field(init=False)
    created: list[tuple[str, str]] = field(factory=list, init=False)
    """(name, node) of every pod created, in order."""
    _wire: Wire = field(init=False)
    _server: ApiServer = field(init=False)
    _kubelet: Kubelet = field(init=False)

    async def start(self) -> None:
        """Listen on a free loopback port and write ``kubeconfig``."""
        self._wire = Wire()
        store = Store(self._wire.dump, self.history_limit)
        self._kubelet = Kubelet(
            lambda name: store.get("Node", None, name),
            lambda pod: store.write("Pod", pod.metadata.namespace, pod),
            lambda node: store.write("Node", None, node),
            self.timing,
            flaky=self.flaky,
        )
        self._server = ApiServer(
            store,
            self._wire,
            self.token,
            self._admit,
            self._kubelet.forget,
            role=self.role,
            bookmark_seconds=self.bookmark_seconds,
            tls=self._ssl_context(),
            host=self.host,
            port=self.port,
        )
        await self._server.start()
        self.kubeconfig = self._write_kubeconfig()

    def _admit(self, pod: V1Pod) -> None:
        self.created.append((pod.metadata.name, pod.spec.node_name or ""))
        self._kubelet.admit(pod)

    async def stop(self) -> None:
        """Stop the kubelets and the server."""
        await self._kubelet.stop()
        await self._server.stop()
        await self._wire.close()

    @property
    def store(self) -> Store:
        """Everything the API server holds."""
        return self._server.store

    @property
    def url(self) -> str:
        """The API server's URL."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self._server.port}"

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path and query) of every request received."""
        return self._server.requests

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        from tests.support.certs import make_server_tls  # cryptography: only with TLS

        files = make_server_tls(self.directory / "tls")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(files.cert_path, files.key_path)
        return context

    def _write_kubeconfig(self) -> Path:
        cluster: dict[str, str] = {"server": self.server_url or self.url}
        if self.tls:
            cluster["certificate-authority"] = str(self.directory / "tls" / "ca.pem")
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "standin", "cluster": cluster}],
            "users": [{"name": "bridge", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "standin",
                    "context": {
                        "cluster": "standin",
                        "user": "bridge",
                        "namespace": self.namespace,
                    },
                }
            ],
            "current-context": "standin",
        }
        path = self.directory / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        return path

    # ------------------------------------------------------------------ outages

    async def go_away(self) -> None:
        """Stop answering: open connections are reset, new ones refused."""
        await self._server.stop()

    async def come_back(self) -> None:
        """Answer again, on the same port, with everything as it was."""
        await self._server.start()

    def watches(self, kind: str) -> int:
        """How many watches of ``kind`` (``"Node"``, ``"Pod"``) are open."""
        return sum(1 for w in self.store.watchers if w.kind == kind)

    def end_watches(self) -> None:
        """End every open watch cleanly, as the API server does when one times out."""
        self.store.end_watches()

    def compact(self) -> None:
        """Expire every resource version handed out so far and end open watches (a
        resumed watch gets 410 and must list again)."""
        self.store.compact()

    # ------------------------------------------------------------------ nodes

    def node(self, name: str) -> V1Node | None:
        """The stored node."""
        node: V1Node | None = self.store.get("Node", None, name)
        return node

    def add_node(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        taints: Iterable[tuple[str, str, str | None]] = (),
        images: Iterable[str] = (),
    ) -> V1Node:
        """Register a node; ``taints`` as (key, effect, value), ``images`` as names."""
        node = make_node(
            name,
            labels or {},
            [V1Taint(key=k, effect=e, value=v) for k, e, v in taints],
            [V1ContainerImage(names=[i], size_bytes=IMAGE_SIZE) for i in images],
        )
        self.store.write("Node", None, node)
        return node

    def remove_node(self, name: str) -> None:
        """Delete a node from the cluster."""
        node = self._existing(name)
        node.metadata.deletion_timestamp = now()
        self.store.write("Node", None, node, delete=True)

    def taint_node(
        self, name: str, key: str, effect: str = "NoSchedule", value: str | None = None
    ) -> None:
        """Add a taint to a node."""
        node = self._existing(name)
        node.spec.taints = [*(node.spec.taints or []), V1Taint(key=key, effect=effect, value=value)]
        self.store.write("Node", None, node)

    def label_node(self, name: str, labels: Mapping[str, str | None]) -> None:
        """Set (or, with None, remove) labels of a node."""
        node = self._existing(name)
        merged = {**(node.metadata.labels or {}), **labels}
        node.metadata.labels = {k: v for k, v in merged.items() if v is not None}
        self.store.write("Node", None, node)

    def heartbeat(self, name: str) -> None:
        """The kubelet renews its Ready condition: a change nobody but Kubernetes cares for."""
        node = self._existing(name)
        node.status.conditions[0].last_heartbeat_time = now()
        self.store.write("Node", None, node)

    def node_images(self, name: str) -> list[str]:
        """Every image name in the node's ``status.images``."""
        node = self._existing(name)
        return [n for image in node.status.images or [] for n in image.names or []]

    def _existing(self, name: str) -> V1Node:
        node = self.node(name)
        if node is None:
            raise KeyError(f"no node {name}")
        return node

    # ------------------------------------------------------------------ pods

    def mark_unpullable(self, image: str) -> None:
        """Pulls of ``image`` (as the pod names it) fail: ErrImagePull, ImagePullBackOff."""
        self._kubelet.unpullable.add(image)

    def pods(self) -> list[V1Pod]:
        """The pods in the namespace, as stored."""
        return list(self.store.items("Pod", self.namespace, _ALL))

    def pod(self, name: str) -> V1Pod | None:
        """A pod of the namespace, as stored."""
        pod: V1Pod | None = self.store.get("Pod", self.namespace, name)
        return pod


@asynccontextmanager
async def kube_standin(
    directory: Path,
    *,
    namespace: str = "imageledger",
    role: Role | None = None,
    admin: bool = False,
    tls: bool = True,
    timing: KubeletTiming | None = None,
    history_limit: int | None = None,
    bookmark_seconds: float = 0.5,
) -> AsyncIterator[KubeStandIn]:
    """A started stand-in, stopped afterwards. Its token is bound to ``role``, by default
    the bridge's least-privilege Role in ``namespace``; ``admin`` allows everything."""
    standin = KubeStandIn(
        directory,
        namespace=namespace,
        tls=tls,
        role=None if admin else role or Role.bridge(namespace),
        timing=timing or KubeletTiming(),
        history_limit=history_limit,
        bookmark_seconds=bookmark_seconds,
    )
    await standin.start()
    try:
        yield standin
    finally:
        await standin.stop()
