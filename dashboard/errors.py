"""The one family of domain errors.

Services raise these; pages turn them into a message on the form, the API into
``{"error": {"code", "message"}}`` with the ``status`` below.
"""

from __future__ import annotations


class BerthError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field  # the form field the message belongs to, when there is one


class Malformed(BerthError):
    code = "malformed"
    status = 400


class Unauthorized(BerthError):
    code = "unauthorized"
    status = 401


class Forbidden(BerthError):
    code = "forbidden"
    status = 403


class NotFound(BerthError):
    code = "not_found"
    status = 404


class Conflict(BerthError):
    code = "conflict"
    status = 409


class RuleBroken(BerthError):
    code = "invalid"
    status = 422


class TooManyRequests(BerthError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
