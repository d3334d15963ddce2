"""The REST API at ``/api/v2/``: bearer-token auth, one error shape, the served schema.

Built on django-ninja: endpoints are typed functions whose pydantic schemas are also the
published OpenAPI document, so the contract and the code cannot drift apart.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError
from ninja.security import HttpBearer

from dashboard.errors import BerthError, Forbidden, TooManyRequests
from dashboard.models import ApiToken, Role, Via, role_allows
from dashboard.services import Actor, token_authenticate


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = token_authenticate(token)
        if found is not None:
            rate_limit(found)
        return found


def rate_limit(token: ApiToken) -> None:
    """At most ``API_RATE_LIMIT`` requests a minute per token, counted in Redis (fixed windows)."""
    now = time.time()
    key = f"berth:rate:{token.digest[:24]}:{int(now // 60)}"
    cache.add(key, 0, timeout=120)
    if cache.incr(key) > settings.API_RATE_LIMIT:
        wait = 60 - int(now % 60)
        raise TooManyRequests(
            f"This token may make {settings.API_RATE_LIMIT} requests a minute; try again in {wait} s",
            retry_after=wait,
        )


api = NinjaAPI(
    title="Berth API",
    version="2",
    description="Volumes and the sandboxes that mount them. Send `Authorization: Bearer berth_…`.",
    auth=TokenAuth(),
    urls_namespace="api",
    docs_url="/docs",
)


def api_token(request: HttpRequest) -> ApiToken:
    token = request.auth  # type: ignore[attr-defined]
    assert isinstance(token, ApiToken)
    return token


def api_actor(request: HttpRequest, needed: str = Role.VIEWER) -> Actor:
    """The caller as an audit actor, after checking its token's role allows ``needed``."""
    token = api_token(request)
    if not role_allows(token.role, needed):
        raise Forbidden(f"This needs a token with the {needed} role; this one is {token.role}")
    return Actor(user=token.created_by, token=token, via=Via.API, ip=request.META.get("REMOTE_ADDR"))


def error_response(request: HttpRequest, status: int, code: str, message: str, **extra: Any) -> HttpResponse:
    return api.create_response(request, {"error": {"code": code, "message": message, **extra}}, status=status)


@api.exception_handler(BerthError)
def _berth_error(request: HttpRequest, exc: BerthError) -> HttpResponse:
    extra = {"field": exc.field} if exc.field else {}
    response = error_response(request, exc.status, exc.code, exc.message, **extra)
    if isinstance(exc, TooManyRequests):
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(ValidationError)
def _malformed(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    first = exc.errors[0] if exc.errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in {"body", "payload"})
    message = (
        f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "Malformed request"))
    )
    return error_response(request, 400, "malformed", message, details=exc.errors)


@api.exception_handler(AuthenticationError)
def _unauthorized(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(
        request, 401, "unauthorized", "Send a valid, unexpired token as Authorization: Bearer berth_…"
    )


@api.exception_handler(AuthorizationError)
def _forbidden(request: HttpRequest, exc: AuthorizationError) -> HttpResponse:
    return error_response(request, 403, "forbidden", str(exc) or "Your token's role does not allow this")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """Ninja's own refusals (a body that is not JSON, …) in the one error shape."""
    code = {400: "malformed", 404: "not_found", 429: "rate_limited"}.get(exc.status_code, "error")
    return error_response(request, exc.status_code, code, exc.message)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(request, 404, "not_found", str(exc) or "Not found")


@api.exception_handler(DataError)
def _unstorable_text(request: HttpRequest, exc: DataError) -> HttpResponse:
    """A NUL character in any text (a slug, a label, a search, a path segment) reaches the
    database as a lookup or a value, and PostgreSQL can neither store nor compare it: the driver
    refuses before sending (or PostgreSQL, inside JSON, and the statement's transaction is rolled
    back), so nothing ran. Any other DataError is a bug and stays a 500."""
    if "NUL" not in str(exc) and "\\u0000" not in str(exc):
        raise exc
    return error_response(request, 422, "invalid", "Text cannot contain the NUL character (\\u0000)")
