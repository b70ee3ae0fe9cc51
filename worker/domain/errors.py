"""The one family of our errors: what each means to an HTTP client and to the command line.

Every error the project raises descends from `ImageLedgerError`, the adapters' too (the
database's ``LedgerError``, the registry's ``RegistryError``, the broker's ``BrokerError``)
and the configuration's ``ConfigError``. Each class says on itself how the edges show it:
``http_status`` and ``error_code`` for the HTTP API (the reference's ``type`` of an error
detail), ``exit_code`` for ``imageledger``. So the HTTP API has one handler for all of them,
and the command one mapping.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILURE",
    "EXIT_REGISTRY",
    "EXIT_UNKNOWN",
    "AmbiguousImageError",
    "ImageLedgerError",
    "InvalidDockerReferenceError",
    "InvalidImageClassError",
    "InvalidInputError",
    "KubeError",
    "KubeForbiddenError",
    "KubeRejectedError",
    "KubeUnavailableError",
    "KubeWatchExpiredError",
    "MessageRejected",
    "RegistryUnavailableError",
    "ResolveRateLimitedError",
    "SourceUnavailableError",
    "TransientError",
    "UnknownError",
    "UnknownImageError",
    "UnknownNodeError",
]

EXIT_FAILURE = 1
"""Something outside failed (the database, RabbitMQ), or an unexpected error."""
EXIT_BAD_INPUT = 2
"""A bad file, option, argument or reference."""
EXIT_UNKNOWN = 3
"""The image, tag or node named is not known."""
EXIT_REGISTRY = 4
"""The registry could not answer."""


class ImageLedgerError(Exception):
    """Base of our own errors; the message is one clear line for operators."""

    http_status: ClassVar[int] = 500
    """The status of an HTTP answer that reports this error."""
    error_code: ClassVar[str] = "internal_error"
    """The ``type`` of the answer's error detail."""
    exit_code: ClassVar[int] = EXIT_FAILURE
    """The exit status of ``imageledger`` when a command fails with this error."""


class TransientError(ImageLedgerError):
    """The work failed for a reason outside it that will pass (the database away, a lost
    serialization conflict, RabbitMQ unreachable): the same work, retried as is, succeeds
    later. The consumer holds a batch that fails so instead of counting an attempt."""


class InvalidInputError(ImageLedgerError):
    """Input from an operator or a client that is malformed: a file, an option, a name."""

    http_status = 422
    error_code = "invalid_input"
    exit_code = EXIT_BAD_INPUT


class InvalidDockerReferenceError(InvalidInputError):
    """A reference that does not parse, or has no tag and no known digest (the reference's
    ``invalid_docker_reference``)."""

    error_code = "invalid_docker_reference"


class InvalidImageClassError(InvalidInputError):
    """No image class of that name (``enum``, as the reference's validation says it)."""

    error_code = "enum"


class AmbiguousImageError(InvalidInputError):
    """A name that stands for images of several repositories; the full reference is needed."""


class MessageRejected(InvalidInputError):
    """An inbound message that cannot be decoded or validated; it is dead-lettered, never
    retried. ``reason`` is one readable line naming the bad field path."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownError(ImageLedgerError):
    """The thing named is not known to the ledger."""

    http_status = 404
    error_code = "not_found"
    exit_code = EXIT_UNKNOWN


class UnknownImageError(UnknownError):
    """No such tag, reference, digest or image class in the repository (the reference's
    ``unknown_image``, HTTP 400)."""

    http_status = 400
    error_code = "unknown_image"


class UnknownNodeError(UnknownError):
    """No node of that name ever reported an inventory."""


class RegistryUnavailableError(ImageLedgerError):
    """The registry could not answer the request a use case needed (HTTP 502)."""

    http_status = 502
    error_code = "registry_error"
    exit_code = EXIT_REGISTRY
    reason_class: str = "registry"
    """What kind of failure, for metrics: one of ``figures.REFRESH_FAILURE_REASONS``."""


class ResolveRateLimitedError(ImageLedgerError):
    """Resolving needs a fresh registry HEAD, but the worker's budget of HEADs per minute is
    spent (HTTP 429); ``retry_after`` is the number of seconds until one is free."""

    http_status = 429
    error_code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SourceUnavailableError(RegistryUnavailableError):
    """The registry could not be listed; the last known state stays."""

    def __init__(self, message: str, reason_class: str = "registry") -> None:
        super().__init__(message)
        self.reason_class = reason_class


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
