"""Errors that cross layers: what services raise and entry points explain."""

from __future__ import annotations

__all__ = [
    "ImageLedgerError",
    "MessageRejected",
    "SourceUnavailableError",
    "StorageUnavailableError",
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
