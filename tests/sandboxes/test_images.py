from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from dashboard.models import Organization, Via
from dashboard.services import Actor
from sandboxes import services
from sandboxes.models import Image, Sandbox, SandboxState
from tests.dataplane import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def busybox_tarball(tmp_path: Path) -> Path:
    """A tiny root filesystem: a static busybox as /bin/sh and friends (Debian's busybox-static)."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail("busybox is needed for the image tests (Debian package busybox-static)")
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    for applet in ("sh", "cat", "echo", "ls"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc").mkdir()
    (root / "etc" / "os-release").write_text("NAME=tiny\n")
    tarball = tmp_path / "tiny.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(root, arcname=".")
    return tarball


def test_an_imported_image_is_listed_and_runs(
    org: Organization, tmp_path: Path, data_plane: None, celery_worker: subprocess.Popen[bytes]
) -> None:
    call_command("image_import", "tiny", str(busybox_tarball(tmp_path)), "--description", "busybox only")
    assert Image.objects.get(name="tiny").description == "busybox only"
    sandbox = services.sandbox_create(org=org, region="ord", image="tiny", actor=Actor(via=Via.API))
    wait_until(
        lambda: Sandbox.objects.filter(id=sandbox.id, state=SandboxState.RUNNING).exists(), what="start"
    )
    out = services.sandbox_exec(org=org, sandbox_id=sandbox.id, cmd="cat /etc/os-release", actor=Actor())
    assert out.stdout == "NAME=tiny\n"
    services.sandbox_kill(org=org, sandbox_id=sandbox.id, actor=Actor())
    wait_until(
        lambda: Sandbox.objects.filter(id=sandbox.id, state=SandboxState.STOPPED).exists(), what="stop"
    )


def test_a_tarball_without_a_shell_is_refused(regions: list[Any], data_plane: None, tmp_path: Path) -> None:
    empty = tmp_path / "empty.tar"
    with tarfile.open(empty, "w") as archive:
        archive.add(tmp_path, arcname=".", recursive=False)
    with pytest.raises(CommandError, match="has no /bin/sh"):
        call_command("image_import", "empty", str(empty))
    assert not Image.objects.exists()
