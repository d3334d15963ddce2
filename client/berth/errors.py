"""Exceptions named after the API's error codes.

Every error the API answers with (``{"error": {"code", "message"}}``) becomes an instance of
the class registered for its ``code``, or, for a code this client does not know yet, of the
class for its HTTP status, so ``except NotFound`` keeps working when the server grows new
codes.
"""

from __future__ import annotations

from typing import Any


class BerthError(Exception):
    """Base of every error this package raises.

    ``code`` is the API's machine-readable code, ``status`` the HTTP status (0 when no answer
    came), ``message`` the API's sentence for a person, ``details`` any extra fields it sent.
    """

    code: str = "error"
    status: int = 0

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None, details: Any = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status}, message={self.message!r})"


class ConfigurationError(BerthError):
    """The client is missing its token or URL."""

    code = "configuration"


class ConnectionFailed(BerthError):
    """No answer from the server, even after the retries."""

    code = "connection_failed"


class Malformed(BerthError):
    """400: the request is not what the API reads (wrong JSON type, unknown field, …)."""

    code, status = "malformed", 400


class Unauthorized(BerthError):
    """401: no token, or a token that is unknown, revoked or expired."""

    code, status = "unauthorized", 401


class Forbidden(BerthError):
    """403: the token's role does not allow this (a viewer token writing, …)."""

    code, status = "forbidden", 403


class NotFound(BerthError):
    """404: no such object in the token's organization."""

    code, status = "not_found", 404


class Conflict(BerthError):
    """409: the state of the moment refuses it (the volume is attached, the slug is taken, …)."""

    code, status = "conflict", 409


class IdempotencyKeyInUse(Conflict):
    """409: a request with the same ``Idempotency-Key`` is still running."""

    code = "idempotency_key_in_use"


class Invalid(BerthError):
    """422: a rule is broken (slug, capacity, region, mount path, …)."""

    code, status = "invalid", 422


class IdempotencyKeyReused(Invalid):
    """422: the ``Idempotency-Key`` was already used with a different request."""

    code = "idempotency_key_reused"


class RateLimited(BerthError):
    """429: too many requests; wait and retry."""

    code, status = "rate_limited", 429


class ServerError(BerthError):
    """5xx: the server failed."""

    code, status = "server_error", 500


class SandboxFailed(BerthError):
    """The sandbox did not reach ``running``; ``sandbox`` is its last known state."""

    code = "sandbox_failed"

    def __init__(self, message: str, *, sandbox: Any = None) -> None:
        super().__init__(message)
        self.sandbox = sandbox


class WaitTimeout(BerthError):
    """A wait (for a sandbox to start or stop) ran out of time."""

    code = "timeout"


_BY_CODE: dict[str, type[BerthError]] = {
    cls.code: cls
    for cls in (
        Malformed,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        IdempotencyKeyInUse,
        Invalid,
        IdempotencyKeyReused,
        RateLimited,
    )
}
_BY_STATUS: dict[int, type[BerthError]] = {
    400: Malformed,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
    429: RateLimited,
}


def error_from_response(status: int, body: Any) -> BerthError:
    """The exception for an error answer: by its ``code``, else by its status."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or "error")
        message = str(error.get("message") or f"HTTP {status}")
        details = {k: v for k, v in error.items() if k not in {"code", "message"}} or None
    else:
        code, message, details = "error", f"The server answered HTTP {status}", None
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status) or (ServerError if status >= 500 else BerthError)
    return cls(message, code=code, status=status, details=details)
