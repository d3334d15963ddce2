"""``Client``: volumes, sandboxes and regions of one Berth organization, over the REST API."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from berth._http import Http
from berth.errors import ConfigurationError, NotFound, SandboxFailed, WaitTimeout
from berth.models import DeletedVolume, ExecResult, FileEntry, Mount, Region, Volume, _time

SERVER_WAIT = 120.0  # how long the server holds a ?wait=true create before answering
STARTING = frozenset({"pending", "starting"})
ENDED = frozenset({"stopped", "failed", "expired"})
POLL = 0.25

Progress = Callable[[str], None]
MountValue = str | Mapping[str, Any]


class Client:
    """A Berth API client for one organization, as its token says.

    ``token`` and ``base_url`` default to the ``BERTH_TOKEN`` and ``BERTH_URL`` environment
    variables. ``retries`` bounds how often a request is repeated after a connection error
    (see ``berth._http`` for which requests); ``timeout`` is per request, in seconds.

    Use it as a context manager, or call ``close()``, to release its connections.
    """

    def __init__(
        self,
        token: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.25,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        token = token or os.environ.get("BERTH_TOKEN", "")
        base_url = base_url or os.environ.get("BERTH_URL", "")
        if not token:
            raise ConfigurationError(
                "No API token: pass token=... or set BERTH_TOKEN "
                "(create one on the dashboard's API tokens page)"
            )
        if not base_url:
            raise ConfigurationError(
                "No server URL: pass base_url=... or set BERTH_URL (such as https://berth.example.com)"
            )
        self.base_url = base_url.rstrip("/")
        self.http = Http(
            base_url=self.base_url,
            token=token,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            transport=transport,
        )
        self.volumes = Volumes(self)
        self.sandboxes = Sandboxes(self)

    def regions(self) -> list[Region]:
        """Every region, with the capacity limits of its volumes."""
        return [Region.from_api(r) for r in self.http.request("GET", "/regions").json()["items"]]

    def images(self) -> list[str]:
        """The images sandboxes can start from (``host`` and imported root filesystems)."""
        return list(self.http.request("GET", "/images").json()["items"])

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pages(self, path: str, params: dict[str, Any], page_size: int | None) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, following ``next_cursor`` one page at a time."""
        cursor = ""
        while True:
            page = self.http.request(
                "GET", path, params={**params, "limit": page_size, "cursor": cursor}
            ).json()
            yield from page["items"]
            cursor = page.get("next_cursor") or ""
            if not cursor:
                return


def _new_key(key: str | None) -> dict[str, str]:
    """The ``Idempotency-Key`` of a create: one per call, the same across that call's retries."""
    return {"Idempotency-Key": key or str(uuid.uuid4())}


class Volumes:
    """``client.volumes``: create, list, read, change and delete volumes."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._http = client.http

    def create(
        self,
        *,
        slug: str,
        region: str,
        capacity: int | str = "1GB",
        labels: Mapping[str, str] | None = None,
        description: str = "",
        idempotency_key: str | None = None,
    ) -> Volume:
        """Create a volume; ``capacity`` is bytes or a size such as ``"2GB"`` or ``"1GiB"``.

        Safe to retry: the request carries an ``Idempotency-Key`` (a fresh uuid4 unless given),
        so a retry after a dropped connection gets the first answer, never a second volume.
        Raises ``Conflict`` if the slug is taken, ``Invalid`` if a rule is broken.
        """
        body: dict[str, Any] = {
            "slug": slug,
            "region": region,
            "capacity": capacity,
            "description": description,
        }
        if labels is not None:
            body["labels"] = dict(labels)
        response = self._http.request("POST", "/volumes", json=body, headers=_new_key(idempotency_key))
        return Volume.from_api(response.json())

    def list(
        self,
        *,
        search: str = "",
        region: str = "",
        state: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[Volume]:
        """Every volume that matches, newest first, fetched ``page_size`` at a time (1–200).

        Lazy: pages are fetched as the iterator advances.
        """
        params = {"search": search, "region": region, "state": state}
        return (Volume.from_api(v) for v in self._client._pages("/volumes", params, page_size))

    def get(self, id_or_slug: str) -> Volume:
        """One volume, by id or slug; ``NotFound`` if there is none (or it is deleted)."""
        return Volume.from_api(self._http.request("GET", f"/volumes/{_segment(id_or_slug)}").json())

    def update(
        self,
        id_or_slug: str,
        *,
        labels: Mapping[str, str] | None = None,
        description: str | None = None,
        capacity: int | str | None = None,
    ) -> Volume:
        """Change what is given: ``labels`` replaces every label; ``capacity`` grows (never shrinks)
        a volume that is not attached."""
        body: dict[str, Any] = {}
        if labels is not None:
            body["labels"] = dict(labels)
        if description is not None:
            body["description"] = description
        if capacity is not None:
            body["capacity"] = capacity
        return Volume.from_api(
            self._http.request("PATCH", f"/volumes/{_segment(id_or_slug)}", json=body).json()
        )

    def delete(self, id_or_slug: str) -> DeletedVolume:
        """Delete a volume: the slug is freed at once; the data is kept until ``purge_after``
        (24 h), during which support or an organization admin can restore it from Trash.
        ``Conflict`` while a running sandbox has it mounted."""
        return DeletedVolume.from_api(self._http.request("DELETE", f"/volumes/{_segment(id_or_slug)}").json())


class Sandboxes:
    """``client.sandboxes``: start, list, read sandboxes."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._http = client.http

    def create(
        self,
        *,
        region: str,
        image: str = "host",
        volumes: Mapping[str, MountValue] | None = None,
        env: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        lifetime: int | str | None = None,
        allow_net: bool = False,
        memory_limit: int | str | None = None,
        wait: bool = True,
        timeout: float = 300.0,
        idempotency_key: str | None = None,
        progress: Progress | None = None,
    ) -> Sandbox:
        """Start a sandbox and, unless ``wait=False``, return once it is running.

        ``volumes`` maps a mount path to a volume slug or id, or to
        ``{"slug": ..., "capacity": "2GB", "read_only": True}``; a slug that does not exist is
        created on first use in ``region``. ``lifetime`` is seconds or ``"30m"``/``"2h"``.

        Raises ``Conflict`` (``Volume "x" is already attached ...``), ``Invalid`` (a mount path, a
        region), ``SandboxFailed`` if it ends instead of running, ``WaitTimeout`` after ``timeout``
        seconds. Use the result as a context manager to kill it on exit.
        """
        body: dict[str, Any] = {
            "region": region,
            "image": image,
            "volumes": {p: _mount(v) for p, v in (volumes or {}).items()},
            "env": dict(env or {}),
            "labels": dict(labels or {}),
            "allow_net": allow_net,
        }
        if lifetime is not None:
            body["lifetime"] = lifetime
        if memory_limit is not None:
            body["memory_limit"] = memory_limit
        if progress:
            progress("starting the sandbox")
        response = self._http.request(
            "POST",
            "/sandboxes",
            params={"wait": "true" if wait else None},
            json=body,
            headers=_new_key(idempotency_key),
            timeout=SERVER_WAIT + 30 if wait else None,
        )
        sandbox = Sandbox(self._client, response.json())
        if wait:
            sandbox.wait_until_running(timeout=timeout, progress=progress)
        return sandbox

    def list(
        self, *, label: str | None = None, status: str | None = None, page_size: int | None = None
    ) -> Iterator[Sandbox]:
        """Every sandbox that matches, newest first; ``label`` is ``"key:value"`` (or ``key=value``)."""
        if label and ":" not in label and "=" in label:
            label = label.replace("=", ":", 1)
        params = {"label": label, "status": status}
        return (Sandbox(self._client, s) for s in self._client._pages("/sandboxes", params, page_size))

    def get(self, sandbox_id: str) -> Sandbox:
        """One sandbox; ``NotFound`` if the organization has none with this id."""
        return Sandbox(self._client, self._http.request("GET", f"/sandboxes/{_segment(sandbox_id)}").json())


class Sandbox:
    """A sandbox, as last read from the API (``refresh()`` reads it again).

    As a context manager it kills the sandbox (and waits until it has stopped, so its volumes
    are free again) when the block ends::

        with client.sandboxes.create(region="ord", volumes={"/workspace": "my_project"}) as sb:
            print(sb.exec("ls /workspace").stdout)
    """

    id: str
    name: str
    status: str
    region: str
    image: str
    mounts: list[Mount]
    env: dict[str, str]
    labels: dict[str, str]
    allow_net: bool
    memory_limit: int | None
    lifetime: int
    created_at: datetime | None
    started_at: datetime | None
    stopped_at: datetime | None
    expires_at: datetime | None
    error: str

    def __init__(self, client: Client, data: dict[str, Any]) -> None:
        self._client = client
        self._http = client.http
        self.files = Files(self)
        self._load(data)

    def _load(self, data: dict[str, Any]) -> None:
        self.id = str(data["id"])
        self.name = data.get("name") or ""
        self.status = data["status"]
        self.region = data.get("region") or ""
        self.image = data.get("image") or ""
        self.mounts = [
            Mount(
                volume_id=str(m["volume_id"]),
                volume=m["volume"],
                path=m["path"],
                read_only=m["read_only"],
                detached_at=_time(m.get("detached_at")),
            )
            for m in data.get("mounts") or []
        ]
        self.env = dict(data.get("env") or {})
        self.labels = dict(data.get("labels") or {})
        self.allow_net = bool(data.get("allow_net"))
        self.memory_limit = data.get("memory_limit")
        self.lifetime = int(data.get("lifetime") or 0)
        self.created_at = _time(data.get("created_at"))
        self.started_at = _time(data.get("started_at"))
        self.stopped_at = _time(data.get("stopped_at"))
        self.expires_at = _time(data.get("expires_at"))
        self.error = data.get("error") or ""

    def __repr__(self) -> str:
        return f"<Sandbox {self.id} {self.status}>"

    @property
    def _path(self) -> str:
        return f"/sandboxes/{_segment(self.id)}"

    def refresh(self) -> Sandbox:
        """Read the sandbox again; returns itself."""
        self._load(self._http.request("GET", self._path).json())
        return self

    def wait_until_running(self, *, timeout: float = 300.0, progress: Progress | None = None) -> Sandbox:
        """Poll until the sandbox runs.

        Raises ``SandboxFailed`` if it ends first, ``WaitTimeout`` after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while self.status in STARTING:
            if time.monotonic() > deadline:
                raise WaitTimeout(f"Sandbox {self.id} is still {self.status} after {timeout:.0f} s")
            if progress:
                progress(f"sandbox {self.status}")
            time.sleep(POLL)
            self.refresh()
        if self.status != "running":
            raise SandboxFailed(
                f"Sandbox {self.id} is {self.status}" + (f": {self.error}" if self.error else ""),
                sandbox=self,
            )
        return self

    def exec(
        self,
        cmd: str | Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        background: bool = False,
    ) -> ExecResult:
        """Run ``cmd`` (a shell string, or an argv list) and wait for it to end, up to ``timeout``
        seconds (server default 60); with ``background=True`` return at once with its ``pid``.

        A non-zero exit code is not an error: look at ``result.exit_code`` (or ``result.ok``).
        Not retried after the request went out, since the command may already have run.
        """
        body: dict[str, Any] = {"cmd": cmd if isinstance(cmd, str) else list(cmd), "background": background}
        if cwd is not None:
            body["cwd"] = cwd
        if env:
            body["env"] = dict(env)
        if timeout is not None:
            body["timeout"] = timeout
        response = self._http.request(
            "POST", f"{self._path}/exec", json=body, timeout=(timeout or 60) + 30 if not background else None
        )
        return ExecResult.from_api(response.json())

    def log(self, command_id: int) -> str:
        """What a background command (by its ``ExecResult.id``) has printed so far."""
        return str(self._http.request("GET", f"{self._path}/commands/{command_id}/log").json()["log"])

    def kill(self, *, wait: bool = True, timeout: float = 120.0) -> Sandbox:
        """Kill the sandbox: every process ends and its volumes are released.

        With ``wait`` (the default) return once it has stopped, so its volumes can be mounted
        read-write again at once. Killing a sandbox that already ended changes nothing.
        """
        self._load(self._http.request("DELETE", self._path).json())
        deadline = time.monotonic() + timeout
        while wait and self.status not in ENDED:
            if time.monotonic() > deadline:
                raise WaitTimeout(f"Sandbox {self.id} is still {self.status} after {timeout:.0f} s")
            time.sleep(POLL)
            self.refresh()
        return self

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(NotFound):
            self.kill()


class Files:
    """``sandbox.files``: read, write and list files inside a running sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def _url(self) -> str:
        return f"{self._sandbox._path}/files"

    def write(self, path: str, data: bytes | str) -> int:
        """Write ``data`` (``str`` is written as UTF-8) to ``path``, making missing directories.
        Returns the number of bytes written."""
        content = data.encode() if isinstance(data, str) else bytes(data)
        response = self._sandbox._http.request("PUT", self._url(), params={"path": path}, content=content)
        return int(response.json()["size"])

    def read(self, path: str) -> bytes:
        """The bytes of the file at ``path``."""
        return self._sandbox._http.request("GET", self._url(), params={"path": path}).content

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        """The file at ``path``, decoded."""
        return self.read(path).decode(encoding)

    def list(self, path: str) -> list[FileEntry]:
        """The entries of the directory at ``path``: directories first, then by name."""
        response = self._sandbox._http.request("GET", self._url(), params={"path": path, "list": "true"})
        return [FileEntry.from_api(e) for e in response.json()["items"]]


def _mount(value: MountValue) -> Any:
    return value if isinstance(value, str) else dict(value)


def _segment(value: str) -> str:
    """A path segment, so an id or slug with odd characters cannot change the URL's path."""
    from urllib.parse import quote

    return quote(str(value), safe="")
