"""Push test images to a registry over plain HTTP: blobs, manifests, indexes, tags, deletes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar

import aiohttp
from attrs import define, field, frozen
from yarl import URL

__all__ = [
    "DOCKER_MANIFEST",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Descriptor",
    "RegistryPusher",
    "basic_authorization",
    "sha256_digest",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

ImageKind = Literal["oci", "docker"]
T = TypeVar("T")
_LAYER = b"imageledger test layer: not a real tarball, the registry does not look\n"


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def basic_authorization(user: str, password: str) -> str:
    """An HTTP Basic ``Authorization`` value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


@frozen
class Descriptor:
    """An OCI descriptor: media type, digest and size of some content."""

    media_type: str
    digest: str
    size: int

    def to_json(self) -> dict[str, object]:
        """The descriptor as it appears in a manifest."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@define
class RegistryPusher:
    """Pushes small images: one shared layer, a config per kind, manifests varied on demand.

    ``variant`` makes digests distinct: an OCI manifest carries it as an annotation (the config
    blob is shared); a Docker manifest gets its own config blob with the variant as a label.
    """

    session: aiohttp.ClientSession
    base_url: URL
    ssl: ssl.SSLContext | bool = True
    authorize: Callable[[str], str | None] = lambda _repository: None
    concurrency: int = 8
    _blobs: set[tuple[str, str]] = field(factory=set, init=False)
    _manifests: dict[str, tuple[bytes, str]] = field(factory=dict, init=False)

    async def blob(self, repository: str, data: bytes, media_type: str) -> Descriptor:
        """Upload a blob (POST, then PUT ?digest=) unless this pusher already did."""
        descriptor = Descriptor(media_type, sha256_digest(data), len(data))
        if (repository, descriptor.digest) in self._blobs:
            return descriptor
        start = self.base_url / "v2" / repository / "blobs/uploads/"
        async with self._request("POST", start, repository) as response:
            await _expect(response, 202)
            location = self.base_url.join(URL(response.headers["Location"]))
        target = location.update_query(digest=descriptor.digest)
        headers = {"Content-Type": "application/octet-stream"}
        async with self._request("PUT", target, repository, data=data, headers=headers) as response:
            await _expect(response, 201)
        self._blobs.add((repository, descriptor.digest))
        return descriptor

    async def put_manifest(
        self, repository: str, reference: str, body: bytes, media_type: str
    ) -> str:
        """PUT a manifest under a tag or its digest; returns its digest."""
        url = self.base_url / "v2" / repository / "manifests" / reference
        headers = {"Content-Type": media_type}
        async with self._request("PUT", url, repository, data=body, headers=headers) as response:
            await _expect(response, 201)
        digest = sha256_digest(body)
        self._manifests[digest] = (body, media_type)
        return digest

    async def push_image(
        self,
        repository: str,
        tags: Iterable[str] = (),
        *,
        variant: str = "",
        kind: ImageKind = "oci",
        architecture: str = "amd64",
    ) -> str:
        """Push one image manifest under each of ``tags`` (or untagged); returns its digest."""
        layer_type = OCI_LAYER if kind == "oci" else DOCKER_LAYER
        layer = await self.blob(repository, _LAYER, layer_type)
        config = await self._config(repository, kind, architecture, variant)
        manifest: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST if kind == "oci" else DOCKER_MANIFEST,
            "config": config.to_json(),
            "layers": [layer.to_json()],
        }
        if kind == "oci" and variant:
            manifest["annotations"] = {"org.imageledger.test.variant": variant}
        media_type = str(manifest["mediaType"])
        return await self._put_everywhere(repository, tags, _encode(manifest), media_type)

    async def push_index(
        self, repository: str, tags: Iterable[str], architectures: Sequence[str]
    ) -> str:
        """Push one OCI image per architecture (untagged) and an OCI index over them."""
        entries = []
        for architecture in architectures:
            digest = await self.push_image(
                repository, architecture=architecture, variant=architecture
            )
            body, media_type = self._manifests[digest]
            entry = Descriptor(media_type, digest, len(body)).to_json()
            entry["platform"] = {"architecture": architecture, "os": "linux"}
            entries.append(entry)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        return await self._put_everywhere(repository, tags, _encode(index), OCI_INDEX)

    async def tag(self, repository: str, tag: str, digest: str) -> None:
        """Point ``tag`` at a manifest this pusher pushed before (an alias, or a move)."""
        body, media_type = self._manifests[digest]
        await self.put_manifest(repository, tag, body, media_type)

    async def push_tags(
        self, repository: str, tags: Sequence[str], *, distinct: bool = True
    ) -> dict[str, str]:
        """Push many tags concurrently: one image each (``distinct``) or all on one image."""
        if not distinct:
            digest = await self.push_image(repository, tags[:1])
            await self._gather(self.tag(repository, tag, digest) for tag in tags[1:])
            return dict.fromkeys(tags, digest)
        await self.push_image(repository)
        digests = await self._gather(
            self.push_image(repository, [tag], variant=tag) for tag in tags
        )
        return dict(zip(tags, digests, strict=True))

    async def delete(self, repository: str, digest: str) -> None:
        """Delete a manifest by digest (removes every tag pointing to it)."""
        url = self.base_url / "v2" / repository / "manifests" / digest
        async with self._request("DELETE", url, repository) as response:
            await _expect(response, 202)

    async def _config(
        self, repository: str, kind: ImageKind, architecture: str, variant: str
    ) -> Descriptor:
        config: dict[str, object] = {
            "architecture": architecture,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(_LAYER)]},
        }
        if kind == "docker":
            config["config"] = {"Labels": {"org.imageledger.test.variant": variant}}
        media_type = OCI_CONFIG if kind == "oci" else DOCKER_CONFIG
        return await self.blob(repository, _encode(config), media_type)

    async def _put_everywhere(
        self, repository: str, tags: Iterable[str], body: bytes, media_type: str
    ) -> str:
        digest = sha256_digest(body)
        tags = list(tags)
        for tag in tags or [digest]:
            await self.put_manifest(repository, tag, body, media_type)
        return digest

    async def _gather(self, jobs: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
        """Run ``jobs`` with at most ``concurrency`` at once."""
        semaphore = asyncio.Semaphore(self.concurrency)

        async def run(job: Coroutine[Any, Any, T]) -> T:
            async with semaphore:
                return await job

        return list(await asyncio.gather(*(run(job) for job in jobs)))

    @asynccontextmanager
    async def _request(
        self,
        method: str,
        url: URL,
        repository: str,
        *,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        all_headers = dict(headers or {})
        authorization = self.authorize(repository)
        if authorization is not None:
            all_headers["Authorization"] = authorization
        async with self.session.request(
            method, url, data=data, headers=all_headers, ssl=self.ssl
        ) as response:
            yield response


def _encode(document: dict[str, object]) -> bytes:
    return json.dumps(document, indent=3, sort_keys=True).encode()


async def _expect(response: aiohttp.ClientResponse, status: int) -> None:
    if response.status != status:
        body = await response.text()
        raise AssertionError(f"{response.method} {response.url} -> {response.status}: {body}")
