"""Berth: a Python client for persistent volumes and the sandboxes that mount them.

from berth import Client

client = Client()  # BERTH_TOKEN and BERTH_URL from the environment
with client.sandboxes.create(region="ord", volumes={"/workspace": "my_project"}) as sandbox:
    sandbox.files.write("/workspace/hello.txt", "hi\\n")
    print(sandbox.exec("cat /workspace/hello.txt").stdout)
"""

from __future__ import annotations

from berth.client import Client, Files, Sandbox, Sandboxes, Volumes
from berth.errors import (
    BerthError,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    Invalid,
    Malformed,
    NotFound,
    RateLimited,
    SandboxFailed,
    ServerError,
    Unauthorized,
    WaitTimeout,
)
from berth.models import Attachment, DeletedVolume, ExecResult, FileEntry, Mount, Region, Volume

__version__ = "0.1.0"

__all__ = [
    "Attachment",
    "BerthError",
    "Client",
    "ConfigurationError",
    "Conflict",
    "ConnectionFailed",
    "DeletedVolume",
    "ExecResult",
    "FileEntry",
    "Files",
    "Forbidden",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "Invalid",
    "Malformed",
    "Mount",
    "NotFound",
    "RateLimited",
    "Region",
    "Sandbox",
    "SandboxFailed",
    "Sandboxes",
    "ServerError",
    "Unauthorized",
    "Volume",
    "Volumes",
    "WaitTimeout",
]
