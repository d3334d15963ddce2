"""The shared cast: one organization with an admin, a member and a viewer, and a stranger
who belongs to another organization. Plus a real Celery worker for tests that need one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard.models import Membership, Organization, Role, Via
from dashboard.services import Actor, token_create

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    engine = str(settings.DATABASES["default"]["ENGINE"])
    if "postgresql" not in engine:
        pytest.exit(
            "The test suite runs on PostgreSQL: use `make test`, or set DATABASE_URL=postgres://...",
            returncode=2,
        )


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture
def org(db: None) -> Organization:
    return Organization.objects.create(slug="acme", name="Acme")


@pytest.fixture
def other_org(db: None) -> Organization:
    return Organization.objects.create(slug="globex", name="Globex")


def _member(username: str, org: Organization, role: str) -> Any:
    user = get_user_model().objects.create_user(username=username, password="pw-" + username)
    Membership.objects.create(organization=org, user=user, role=role)
    return user


@pytest.fixture
def admin(org: Organization) -> Any:
    return _member("alice", org, Role.ADMIN)


@pytest.fixture
def member(org: Organization) -> Any:
    return _member("bob", org, Role.MEMBER)


@pytest.fixture
def viewer(org: Organization) -> Any:
    return _member("victor", org, Role.VIEWER)


@pytest.fixture
def stranger(other_org: Organization) -> Any:
    return _member("mallory", other_org, Role.ADMIN)


@pytest.fixture
def client_as() -> Callable[..., Client]:
    def login(user: Any, **kwargs: Any) -> Client:
        client = Client(**kwargs)
        client.force_login(user)
        return client

    return login


@pytest.fixture
def token_for() -> Callable[[Organization, str], str]:
    """A fresh API token secret of ``org`` with ``role``."""

    def make(org: Organization, role: str) -> str:
        _, secret = token_create(
            org=org, name=f"{role} token", role=role, expires_at=None, actor=Actor(via=Via.CLI)
        )
        return secret

    return make


@pytest.fixture
def api_as(token_for: Callable[[Organization, str], str]) -> Callable[[Organization, str], Client]:
    """A test client that sends a bearer token of ``org`` with ``role`` on every request."""

    def make(org: Organization, role: str) -> Client:
        return Client(headers={"Authorization": f"Bearer {token_for(org, role)}"})

    return make


@pytest.fixture
def regions(db: None, tmp_path: Path) -> list[Any]:
    from volumes.services import regions_seed

    return regions_seed(data_root=tmp_path / "nodes")


@pytest.fixture(scope="session", autouse=True)
def _no_stray_connections_at_the_end(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Close what threads and the worker left open, so the test database can be dropped."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(scope="session", autouse=True)
def _no_sandbox_left_running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Whatever a test started on a node under the session's temporary folders, stop it."""
    yield
    if os.geteuid() != 0:
        return
    from provisioning.local import LocalDriver

    for data_root in tmp_path_factory.getbasetemp().glob("*/nodes/*"):
        driver = LocalDriver(str(data_root))
        for sandbox_id in driver.inventory().sandboxes:
            driver.sandbox_stop(sandbox_id)


WORKER_QUEUES = ["default", *(f"node.{code}-1" for code in ("ord", "ams", "iad", "lax"))]
_worker: list[subprocess.Popen[bytes]] = []


def wait_for_idle_worker(timeout: float = 60) -> None:
    """Until the worker has nothing queued and nothing running.

    A transactional test ends by emptying every table; a task still writing then would
    deadlock with it (or write into the next test), so the worker must be quiet first.
    """
    import redis

    from dashboard.celery import app

    broker = redis.Redis.from_url(settings.REDIS_URL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queued = sum(int(broker.llen(queue)) for queue in WORKER_QUEUES)
        active = app.control.inspect(timeout=0.5).active() or {}
        if queued == 0 and not any(active.values()):
            return
        time.sleep(0.1)


@pytest.fixture(autouse=True)
def _quiet_worker_before_flush(request: pytest.FixtureRequest, _django_db_helper: None) -> Iterator[None]:
    """Set up after the database fixture, so this runs before its flush at teardown."""
    yield
    marker = request.node.get_closest_marker("django_db")
    if _worker and marker is not None and marker.kwargs.get("transaction"):
        wait_for_idle_worker()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup: None, django_db_blocker: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker process over the real Redis, on the test database.

    Tests that use it must commit their data (``django_db(transaction=True)``), since the
    worker reads through its own connection.
    """
    from django.db import connection

    from dashboard.celery import app

    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{connection.settings_dict['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
    queues = ",".join(WORKER_QUEUES)
    (ROOT / "var").mkdir(exist_ok=True)
    log = open(ROOT / "var" / "test-worker.log", "wb")  # noqa: SIM115 - closed at teardown
    app.control.purge()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "dashboard",
            "worker",
            "-Q",
            queues,
            "-c",
            "2",
            "-l",
            "INFO",
            "-n",
            f"test-{os.getpid()}@%h",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not app.control.ping(timeout=0.5):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"The Celery worker did not start; see {log.name}")
    _worker.append(proc)
    yield proc
    _worker.clear()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
