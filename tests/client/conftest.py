"""A live Berth for the client to talk to: the live server, a real worker and the real data plane."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from berth import Client

from dashboard.models import Organization, Role
from tests.sandboxes import conftest as sandbox_fixtures

data_plane = sandbox_fixtures.data_plane


@dataclass(frozen=True)
class Server:
    url: str
    token: str


@pytest.fixture
def server(
    live_server: Any,
    celery_worker: subprocess.Popen[bytes],
    data_plane: None,
    org: Organization,
    token_for: Callable[[Organization, str], str],
) -> Server:
    """The live server's URL and a member token of ``org``; regions and nodes are seeded."""
    return Server(url=live_server.url, token=token_for(org, Role.MEMBER))


@pytest.fixture
def berth(server: Server) -> Iterator[Client]:
    with Client(token=server.token, base_url=server.url) as client:
        yield client
