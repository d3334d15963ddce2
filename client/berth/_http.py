"""The HTTP layer: auth header, the error shape, and bounded retries.

Which requests are retried, and on what:

- A connection that could not be made (nothing was sent) is retried for every request.
- A connection that broke after the request went out (a read error or timeout, a dropped
  connection) is retried only for requests that are safe to repeat: GET, PUT, PATCH, DELETE,
  and a POST that carries an ``Idempotency-Key`` (the same key on every attempt, so the server
  answers the retry from its first answer instead of creating a second object). A plain POST
  (``exec``) is not repeated: the command may already have run.
- 429, 502, 503 and 504, and 409 ``idempotency_key_in_use``, are retried for the same safe
  requests, after ``Retry-After`` when the server sends one.

Waits grow exponentially from ``backoff`` seconds, with jitter, capped at 10 s.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from berth.errors import BerthError, ConnectionFailed, error_from_response

SAFE_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_WAIT = 10.0


class Http:
    """A thin wrapper around ``httpx.Client`` that speaks the API's conventions."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        timeout: float,
        retries: int,
        backoff: float,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.retries = max(0, retries)
        self.backoff = backoff
        self.sleep = sleep
        self.client = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v2",
            headers={"Authorization": f"Bearer {token}", "User-Agent": "berth-client/0.1"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self.client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send one request, retrying as the module docstring says; raise the API's error."""
        method = method.upper()
        headers = dict(headers or {})
        if content is not None:
            headers.setdefault("Content-Type", "application/octet-stream")
        repeatable = method in SAFE_METHODS or "Idempotency-Key" in headers
        clean_params = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        attempt = 0
        while True:
            try:
                response = self.client.request(
                    method, path, params=clean_params, json=json, content=content, headers=headers, **extra
                )
            except httpx.TransportError as error:
                never_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
                if attempt < self.retries and (never_sent or repeatable):
                    self._wait(attempt, None)
                    attempt += 1
                    continue
                raise ConnectionFailed(
                    f"Could not reach {self.client.base_url}: {error or type(error).__name__}"
                ) from error
            if response.is_success:
                return response
            if attempt < self.retries and repeatable and self._retryable(response):
                self._wait(attempt, response.headers.get("Retry-After"))
                attempt += 1
                continue
            raise self._error(response)

    @staticmethod
    def _retryable(response: httpx.Response) -> bool:
        if response.status_code in RETRY_STATUSES:
            return True
        return response.status_code == 409 and _code(response) == "idempotency_key_in_use"

    def _wait(self, attempt: int, retry_after: str | None) -> None:
        try:
            seconds = float(retry_after) if retry_after else None
        except ValueError:
            seconds = None
        if seconds is None:
            seconds = self.backoff * (2**attempt) * (0.5 + random.random() / 2)
        self.sleep(min(seconds, MAX_WAIT))

    @staticmethod
    def _error(response: httpx.Response) -> BerthError:
        try:
            body = response.json()
        except ValueError:
            body = None
        return error_from_response(response.status_code, body)


def _code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None
