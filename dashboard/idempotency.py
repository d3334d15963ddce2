"""``Idempotency-Key`` for POST endpoints of the API: a retry gets the first answer.

Use it on a ninja operation with ``decorate_view``, below the route decorator::

    @router.post("/volumes", response=...)
    @decorate_view(idempotent)
    def volume_create_api(request, payload: VolumeIn): ...

It wraps the operation's whole run (authentication, validation, the endpoint and the
error handlers), so what it stores is the exact response the client got.

What it decides:

- The key is scoped to the token: the same key sent with two tokens means two requests.
  The cache key is a hash of the token's digest and the key, so it never holds a secret and
  an old answer cannot leak to a token that later reuses a database id.
- Stored for 24 hours (``IDEMPOTENCY_TTL``): 2xx answers, and 422 (a rule broken: the same
  body breaks the same rule again). Not stored: 400 (malformed; nothing ran), 401/403 (the
  caller may fix the token), 404/409 (they depend on the state of the moment; retrying after
  fixing it should run again) and 5xx (rolled back; safe to run again).
- A retry with the same key and the same body (same method, path and JSON, key order and
  whitespace aside) gets the stored status and body byte for byte, with
  ``Idempotent-Replayed: true``; nothing runs.
- The same key with a different body: 422 ``idempotency_key_reused`` (as the IETF
  Idempotency-Key draft recommends); nothing runs.
- Concurrent requests with one key: one takes a lock (an atomic ``cache.add``); the others
  poll for its answer for up to ``IDEMPOTENCY_WAIT`` seconds and return it. If the first one
  ends with an answer that is not stored, the next waiter takes the lock and runs. A waiter
  that runs out of time gets 409 ``idempotency_key_in_use`` and may retry.
- The key is 1-255 printable ASCII characters; anything else is 400 ``malformed``.
- A request without a valid token is left to the operation, which answers 401; nothing is
  replayed to a revoked or expired token.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase

from dashboard.services import token_authenticate

HEADER = "Idempotency-Key"
KEY_MAX = 255
IDEMPOTENCY_TTL = timedelta(hours=24)
LOCK_TTL = 60  # seconds; longer than any create should take, short enough to heal a crashed holder
IDEMPOTENCY_WAIT = 10.0  # seconds a concurrent duplicate waits for the first answer
POLL = 0.05

Run = Callable[..., HttpResponseBase]


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def _bearer(request: HttpRequest) -> str:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def _fingerprint(request: HttpRequest) -> str:
    """The request as a hash: method, path and body, with JSON compared by meaning, not bytes."""
    body: bytes = request.body
    with contextlib.suppress(ValueError):  # not JSON: compare the bytes
        body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(f"{request.method}\n{request.path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def worth_storing(status: int) -> bool:
    return 200 <= status < 300 or status == 422


def _replay(stored: dict[str, Any], fingerprint: str) -> HttpResponse:
    if stored["fingerprint"] != fingerprint:
        return _error(
            422,
            "idempotency_key_reused",
            f"This {HEADER} was already used with a different request; use a new key for a new request",
        )
    response = HttpResponse(stored["content"], status=stored["status"], content_type=stored["content_type"])
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(run: Run) -> Run:
    """Make a POST operation answer retries (same token, same ``Idempotency-Key``) from the cache."""

    @wraps(run)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        key = request.headers.get(HEADER)
        if key is None:
            return run(request, *args, **kwargs)
        if not 1 <= len(key) <= KEY_MAX or not key.isascii() or not key.isprintable():
            return _error(400, "malformed", f"{HEADER} must be 1-{KEY_MAX} printable ASCII characters")
        token = token_authenticate(_bearer(request))
        if token is None:
            return run(request, *args, **kwargs)  # the operation answers 401
        scope = hashlib.sha256(f"{token.digest}\n{key}".encode()).hexdigest()
        return _once(f"idempotency:{scope}", _fingerprint(request), lambda: run(request, *args, **kwargs))

    return wrapper


def _once(cache_key: str, fingerprint: str, call: Callable[[], HttpResponseBase]) -> HttpResponseBase:
    """Run ``call`` at most once per ``cache_key`` while its answer is stored.

    The lock is a ``cache.add`` (Redis SET NX): atomic, so of any number of concurrent
    requests exactly one runs; the rest poll for the answer it stores.
    """
    answer_key, lock_key = f"{cache_key}:answer", f"{cache_key}:lock"
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + IDEMPOTENCY_WAIT
    while True:
        stored = cache.get(answer_key)
        if stored is not None:
            return _replay(stored, fingerprint)
        if cache.add(lock_key, owner, LOCK_TTL):
            try:
                stored = cache.get(answer_key)  # stored between our look and our lock
                if stored is not None:
                    return _replay(stored, fingerprint)
                response = call()
                if worth_storing(response.status_code) and isinstance(response, HttpResponse):
                    cache.set(
                        answer_key,
                        {
                            "fingerprint": fingerprint,
                            "status": response.status_code,
                            "content": response.content,
                            "content_type": response.get("Content-Type", "application/json"),
                        },
                        IDEMPOTENCY_TTL.total_seconds(),
                    )
                return response
            finally:
                if cache.get(lock_key) == owner:
                    cache.delete(lock_key)
        if time.monotonic() > deadline:
            return _error(
                409,
                "idempotency_key_in_use",
                f"A request with this {HEADER} is still running; retry in a moment",
            )
        time.sleep(POLL)
