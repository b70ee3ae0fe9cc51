"""Errors that cross layers: what services raise and entry points explain."""

from __future__ import annotations

__all__ = [
    "ImageLedgerError",
    "InvalidDockerReferenceError",
    "KubeError",
    "KubeForbiddenError",
    "KubeRejectedError",
    "KubeUnavailableError",
    "KubeWatchExpiredError",
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


class KubeError(ImageLedgerError):
    """A request to the Kubernetes API server failed."""


class KubeUnavailableError(KubeError):
    """The API server cannot be reached or cannot answer now; retry later, with back-off."""


class KubeForbiddenError(KubeUnavailableError):
    """The API server refused the bridge's credentials or its Role does not grant the verb
    (HTTP 401 or 403); retried with back-off, since an operator may fix the Role."""


class KubeWatchExpiredError(KubeError):
    """A watch's resource version is too old (HTTP 410 Gone): list again, then watch."""


class KubeRejectedError(KubeError):
    """The API server rejected a request as invalid (HTTP 4xx other than the above);
    sending it again cannot succeed."""
