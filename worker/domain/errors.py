"""Errors that cross layers: what services raise and entry points explain."""

from __future__ import annotations

__all__ = [
    "ImageLedgerError",
    "InvalidDockerReferenceError",
    "MessageRejected",
    "RegistryUnavailableError",
    "SourceUnavailableError",
    "StorageUnavailableError",
    "UnknownImageError",
]


class ImageLedgerError(Exception):
    """Base of our own errors; the message is one clear line for operators."""


class SourceUnavailableError(ImageLedgerError):
    """The registry could not be listed; the last known state stays."""


class StorageUnavailableError(ImageLedgerError):
    """The database could not be reached or refused the work."""


class MessageRejected(ImageLedgerError):
    """An inbound message that cannot be decoded or validated; it is dead-lettered, never
    retried. ``reason`` is one readable line naming the bad field path."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidDockerReferenceError(ImageLedgerError):
    """A reference that does not parse, or has no tag and no known digest (the reference's
    ``invalid_docker_reference``, HTTP 422)."""


class UnknownImageError(ImageLedgerError):
    """No such tag, reference or image class in the repository (``unknown_image``, HTTP 400)."""


class RegistryUnavailableError(ImageLedgerError):
    """The registry could not answer the request needed to resolve an image (HTTP 502)."""
