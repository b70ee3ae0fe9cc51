"""Exceptions raised by the Docker registry client; none carries a credential."""

from __future__ import annotations

import json
from collections.abc import Mapping

from yarl import URL

from worker.domain.errors import EXIT_BAD_INPUT, RegistryUnavailableError

from .wire import parse_retry_after

__all__ = [
    "ManifestUnknownError",
    "RegistryAuthError",
    "RegistryConnectionError",
    "RegistryCredentialsError",
    "RegistryError",
    "RegistryInvalidUrlError",
    "RegistryProtocolError",
    "RegistryRateLimitedError",
    "RegistryRetryBudgetExhaustedError",
    "RegistryServerError",
    "RegistryTimeoutError",
    "RegistryTlsError",
    "RepositoryUnknownError",
    "error_for_status",
    "safe_url",
]


_MAX_ERROR_DETAIL = 200


def safe_url(url: URL | str) -> str:
    """Render a URL for logs and errors: no user, no password, no fragment."""
    parsed = URL(url) if isinstance(url, str) else url
    if parsed.is_absolute():
        parsed = parsed.with_user(None).with_password(None)
    return str(parsed.with_fragment(None))


class RegistryError(RegistryUnavailableError):
    """A request to a Docker registry failed.

    Carries the HTTP method, the URL (without credentials) and the status, when known. The
    message never contains a credential or a token.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: URL | str | None = None,
        status: int | None = None,
    ) -> None:
        self.message = message
        self.method = method
        self.url = safe_url(url) if url is not None else None
        self.status = status
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [self.message]
        if self.method and self.url:
            request = f"{self.method} {self.url}"
            if self.status is not None:
                request += f" -> {self.status}"
            parts.append(f"({request})")
        elif self.status is not None:
            parts.append(f"(status {self.status})")
        return " ".join(parts)


class RegistryAuthError(RegistryError):
    """The registry or its token service refused us (401/403, bad challenge, bad token)."""

    reason_class = "auth"


class RegistryCredentialsError(RegistryError):
    """Credentials could not be loaded (missing or malformed ``.dockerconfigjson``)."""

    reason_class = "auth"
    exit_code = EXIT_BAD_INPUT


class RegistryInvalidUrlError(RegistryError):
    """A URL the registry handed us is unacceptable (other host or scheme, or a loop)."""

    reason_class = "protocol"


class ManifestUnknownError(RegistryError):
    """The registry has no manifest under that tag or digest (404)."""

    reason_class = "not_found"


class RepositoryUnknownError(RegistryError):
    """The registry has no such repository (404 on the tag list)."""

    reason_class = "not_found"


class RegistryRateLimitedError(RegistryError):
    """The registry answered 429 and retries did not get past it."""

    reason_class = "rate_limited"
    retry_after: float | None = None


class RegistryServerError(RegistryError):
    """The registry answered with a 5xx status and retries did not help."""

    reason_class = "server_error"


class RegistryTimeoutError(RegistryError):
    """The request did not complete within the per-request timeout."""

    reason_class = "timeout"


class RegistryConnectionError(RegistryError):
    """The connection failed: refused, reset, dropped, or TLS verification failed."""

    reason_class = "connection"


class RegistryProtocolError(RegistryError):
    """The registry answered something we cannot use (bad JSON, missing field, too large)."""

    reason_class = "protocol"


class RegistryRetryBudgetExhaustedError(RegistryError):
    """A transient failure could not be retried: the refresh's retry budget is spent."""

    reason_class = "retry_budget"


class RegistryTlsError(RegistryConnectionError):
    """TLS failed (certificate not trusted, wrong host name); never retried."""

    reason_class = "tls"


def error_for_status(
    method: str,
    url: URL | str,
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    not_found: type[RegistryError],
) -> RegistryError:
    """The error for a non-2xx answer, with the registry's error codes when it gave some."""
    detail = _error_detail(body)
    error_type: type[RegistryError] = RegistryError
    message = "unexpected answer"
    if status == 404:
        error_type, message = not_found, "not found"
    elif status in (401, 403):
        error_type, message = RegistryAuthError, "access denied"
    elif status == 429:
        error_type, message = RegistryRateLimitedError, "rate limited"
    elif status >= 500:
        error_type, message = RegistryServerError, "server error"
    error = error_type(f"{message}{detail}", method=method, url=url, status=status)
    if isinstance(error, RegistryRateLimitedError):
        error.retry_after = parse_retry_after(headers.get("Retry-After"))
    return error


def _error_detail(body: bytes) -> str:
    """``": CODE: message"`` from a registry error body, if it has the standard shape."""
    try:
        data = json.loads(body)
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            google = data["error"]  # Google APIs: {"error": {"code", "status", "message"}}
            errors = [{"code": google["status"], "message": google.get("message", "")}]
        else:
            errors = data["errors"]
        parts = [f"{error['code']}: {error.get('message', '')}".strip() for error in errors]
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""
    text = "; ".join(parts)[:_MAX_ERROR_DETAIL]
    return f": {text}" if text else ""
