"""Feeding the reference's test data to a real registry and ledger, and serving the spawner API."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import yaml
from attrs import define, field

from tests.support import conformance as c
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RunningRegistry
from worker import factory
from worker.adapters.ledger.eventlog import EventLog
from worker.adapters.ledger.stores.prepull import WorkStore
from worker.config import Config
from worker.converter import parse_config
from worker.domain.images import TagEntry
from worker.domain.messages import Delivery, NodeInventory
from worker.domain.node_observation import NodeRules
from worker.domain.nodes import KubeletImage, Taint
from worker.domain.refresh import tags_to_head
from worker.services.evaluate import evaluate
from worker.services.nodes import record_inventories
from worker.services.refresh import RefreshReport
from worker.web import serve

__all__ = [
    "REFERENCE_REGISTRY",
    "REPO",
    "Fixture",
    "refresh",
    "report_node_data",
    "serving",
    "spawner_config",
]

REFERENCE_REGISTRY = "lighthouse.ceres"
REPO = "library/sketchbook"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
"""When the nodes report: a minute ago, as the worker would record it."""
_DIGEST = re.compile(r"sha256:[0-9a-f]+")


def spawner_config(name: str, registry: str, **images: Any) -> Config:
    """A reference controller config (``config-<name>.yaml``) pointed at our registry."""
    data = yaml.safe_load((c.DATA / "controller" / f"config-{name}.yaml").read_text())
    source = {"type": "docker", "registry": registry, "repository": REPO, "insecure": True}
    data["images"] = {**data["images"], "source": source, **images}
    return parse_config(data)


@define
class Fixture:
    """One conformance case in a real registry: the reference's digests mapped to ours."""

    host: str
    digests: dict[str, str] = field(factory=dict)
    """The reference's (fake) digest -> the digest of the image we pushed for it."""

    async def push(
        self, registry: RunningRegistry, session: aiohttp.ClientSession, name: str
    ) -> None:
        """Push ``registry/<name>.json``: one image per reference digest, under its tags."""
        groups: dict[str | None, list[str]] = {}
        for tag, digest in c.read_json(f"registry/{name}.json").items():
            groups.setdefault(digest, []).append(tag)
        pusher = registry.pusher(session)
        for digest, tags in groups.items():
            pushed = await pusher.push_image(REPO, tags, variant=str(digest))
            if digest is not None:
                self.digests[digest] = pushed

    def translate(self, value: Any) -> Any:
        """A reference document with our registry host and our digests."""
        if isinstance(value, dict):
            return {k: self.translate(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.translate(v) for v in value]
        if isinstance(value, str):
            value = value.replace(REFERENCE_REGISTRY, self.host)
            return _DIGEST.sub(lambda m: self.digests.get(m.group(0), m.group(0)), value)
        return value

    def entries(self, name: str) -> list[TagEntry]:
        """``registry/<name>.json`` with our digests."""
        data = c.read_json(f"registry/{name}.json")
        return [TagEntry(t, self.digests.get(d) if d else None) for t, d in data.items()]

    def refuse_beyond_reference(self, proxy: FaultProxy, config: Config, name: str) -> list[str]:
        """Make the proxy refuse (403) the HEADs our refresh makes beyond the prepull set.

        The reference's Docker source knows the digests of the prepull set only (reference
        4.3). With ``resolveBudget: 0`` our refresh still HEADs every possible alias
        (difference 8); refused, those tags keep an unknown digest, as in the reference.
        """
        entries = self.entries(name)
        candidates = set(evaluate(config, entries, ()).candidates)
        listed = [e.tag for e in entries]
        heads = tags_to_head({}, listed, config.images.policy(), 0)
        extra = [t for t in heads if t not in candidates]
        for tag in extra:
            proxy.respond(f"/v2/{REPO}/manifests/{re.escape(tag)}$", 403, times=None, method="HEAD")
        return extra

    async def report_nodes(self, log: EventLog, config: Config, name: str) -> dict[str, int]:
        """Record ``controller/nodes/<name>.json`` as ``node.inventory`` messages would."""
        data = self.translate(c.read_json(f"controller/nodes/{name}.json"))
        return await report_node_data(log, config, data)


async def report_node_data(
    log: EventLog, config: Config, data: Any, *, at: datetime = T0, key: str = "inventory"
) -> dict[str, int]:
    """Record nodes given as a nodes file's ``{name: {images, labels, taints}}`` as
    ``node.inventory`` messages observed ``at`` would (message ids ``<key>-<node>``)."""
    deliveries = []
    for node, entry in data.items():
        listed = entry.get("images", [])
        images = tuple(KubeletImage(tuple(i["names"]), i.get("size_bytes")) for i in listed)
        message = NodeInventory(
            node=node,
            observed_at=at,
            labels=entry.get("labels") or {},
            taints=tuple(Taint(**t) for t in entry.get("taints", [])),
            images=images,
        )
        deliveries.append(Delivery(message, f"{key}-{node}", "node.inventory"))
    rules = NodeRules(
        node_selector=dict(config.lab.node_selector),
        tolerations=config.lab.tolerations,
        max_images=config.images.node_status_max_images,
    )
    async with WorkStore(log).transaction() as unit:
        return await record_inventories(unit, deliveries, rules)


async def refresh(config: Config, url: str) -> RefreshReport:
    """One refresh through the production graph."""
    async with factory.application(config, url) as app:
        return await app.refresh_now()


@asynccontextmanager
async def serving(config: Config, url: str, token: str | None = None) -> AsyncIterator[str]:
    """The worker's HTTP server on a free port (the broker is built but never connected;
    the spawner API behind ``token`` when given); yields its base URL."""
    settings = factory.broker_settings(config, "amqp://guest:guest@127.0.0.1:5672/", "il-web")
    async with (
        factory.runtime(config, settings, url) as runtime,
        serve(runtime, "127.0.0.1", 0, token) as port,
    ):
        yield f"http://127.0.0.1:{port}"
