"""Docker references: ``registry/repository[:tag][@digest]``."""

from __future__ import annotations

import re

from attrs import frozen

from worker.domain.errors import InvalidDockerReferenceError

__all__ = ["DockerReference", "InvalidReferenceError", "registry_problem", "repository_problem"]

_REGISTRY = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d{1,5})?|\[[0-9a-fA-F:.]+\](?::\d{1,5})?"
)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[A-Za-z0-9=_-]+")


def registry_problem(host: str) -> str | None:
    """Why ``host`` is not a registry host (``host[:port]``), or None."""
    if not _REGISTRY.fullmatch(host):
        return f"{host!r} is not a registry host (host or host:port)"
    return None


def repository_problem(name: str) -> str | None:
    """Why ``name`` is not a repository path of the distribution grammar (lowercase
    components separated by '/', each of letters and digits joined by '.', '_', '__' or
    '-'), or None."""
    if len(name) > 255 or not _REPOSITORY.fullmatch(name):
        return (
            f"{name!r} is not a repository path (lowercase components such as"
            " 'lsstsqre/sciplat-lab', at most 255 characters)"
        )
    return None


class InvalidReferenceError(InvalidDockerReferenceError, ValueError):
    """A string that is not a valid Docker reference; the message says why."""


@frozen
class DockerReference:
    """A parsed reference; printing re-assembles the same shape."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> DockerReference:
        """Parse ``registry/repository[:tag][@digest]`` (reference 5.5), validating each part."""
        if "/" not in text:
            raise InvalidReferenceError(
                f'Docker reference "{text}" has no registry (expected registry/repository:tag)'
            )
        registry, rest = text.split("/", 1)
        rest, _, digest = rest.partition("@")
        repository, _, tag = rest.partition(":")
        if not _REGISTRY.fullmatch(registry):
            raise InvalidReferenceError(f'Docker reference "{text}" has an invalid registry')
        if not _REPOSITORY.fullmatch(repository):
            raise InvalidReferenceError(f'Docker reference "{text}" has an invalid repository')
        if ":" in rest and not _TAG.fullmatch(tag):
            raise InvalidReferenceError(f'Docker reference "{text}" has an invalid tag')
        if "@" in text and not _DIGEST.fullmatch(digest):
            raise InvalidReferenceError(f'Docker reference "{text}" has an invalid digest')
        return cls(registry, repository, tag or None, digest or None)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text
