"""Retries and the Idempotency-Key, at the network boundary.

These use ``httpx.MockTransport``: the point is what the client does when the network fails
(a dropped connection, a refused one), which a live server cannot be made to do on cue.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from berth import Client, ConfigurationError, ConnectionFailed, NotFound, ServerError

VOLUME = {
    "id": "9b2f6c1e-5d7a-4f43-9a51-3f0c2e7d8a11",
    "slug": "data",
    "region": "ord",
    "capacity": 10**9,
    "resizing_to": None,
    "used": None,
    "used_at": None,
    "status": "creating",
    "labels": {},
    "description": "",
    "created_at": "2025-01-01T00:00:00Z",
    "attached_to": [],
    "error": "",
}


def client_with(handler: Callable[[httpx.Request], httpx.Response], retries: int = 3) -> Client:
    return Client(
        token="berth_test",
        base_url="http://berth.test",
        transport=httpx.MockTransport(handler),
        retries=retries,
        backoff=0,
    )


def test_a_create_retried_after_a_dropped_connection_sends_the_same_idempotency_key() -> None:
    """The first attempt reaches the server but its answer is lost; the retry must not make a second volume.

    The network boundary is mocked (httpx.MockTransport): the server side is tested live elsewhere.
    """
    keys: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["Idempotency-Key"])
        if len(keys) < 3:
            raise httpx.ReadError("connection reset by peer", request=request)
        assert json.loads(request.content) == {
            "slug": "data",
            "region": "ord",
            "capacity": "1GB",
            "description": "",
        }
        return httpx.Response(201, json=VOLUME)

    volume = client_with(handler).volumes.create(slug="data", region="ord")
    assert volume.slug == "data"
    assert len(keys) == 3 and len(set(keys)) == 1


def test_each_create_gets_a_key_of_its_own() -> None:
    keys: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["Idempotency-Key"])
        return httpx.Response(201, json=VOLUME)

    client = client_with(handler)
    client.volumes.create(slug="data", region="ord")
    client.volumes.create(slug="data", region="ord")
    assert len(set(keys)) == 2


def test_exec_is_not_repeated_once_the_request_went_out() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if request.method == "GET":
            return httpx.Response(200, json={"id": "s1", "status": "running"})
        raise httpx.ReadError("connection reset by peer", request=request)

    sandbox = client_with(handler).sandboxes.get("s1")
    with pytest.raises(ConnectionFailed):
        sandbox.exec("make deploy")
    assert [r.method for r in calls] == ["GET", "POST"]


def test_retries_are_bounded_and_end_in_connection_failed() -> None:
    attempts: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ConnectionFailed) as failed:
        client_with(handler, retries=2).regions()
    assert len(attempts) == 3
    assert "Could not reach http://berth.test/api/v2" in failed.value.message


def test_errors_are_named_after_the_code_and_fall_back_on_the_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/gone"):
            return httpx.Response(404, json={"error": {"code": "not_found", "message": 'No volume "gone"'}})
        if request.url.path.endswith("/new-code"):
            return httpx.Response(404, json={"error": {"code": "volume_vanished", "message": "Gone"}})
        return httpx.Response(500, text="Internal Server Error")

    client = client_with(handler, retries=0)
    with pytest.raises(NotFound) as gone:
        client.volumes.get("gone")
    assert (gone.value.code, gone.value.status, gone.value.message) == ("not_found", 404, 'No volume "gone"')
    with pytest.raises(NotFound) as new:
        client.volumes.get("new-code")
    assert new.value.code == "volume_vanished"
    with pytest.raises(ServerError):
        client.volumes.get("boom")


def test_a_missing_token_or_url_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BERTH_TOKEN", raising=False)
    monkeypatch.setenv("BERTH_URL", "http://berth.test")
    with pytest.raises(ConfigurationError, match="set BERTH_TOKEN"):
        Client()
    monkeypatch.setenv("BERTH_TOKEN", "berth_x")
    monkeypatch.delenv("BERTH_URL")
    with pytest.raises(ConfigurationError, match="set BERTH_URL"):
        Client()
    monkeypatch.setenv("BERTH_URL", "http://berth.test/")
    assert Client().base_url == "http://berth.test"
