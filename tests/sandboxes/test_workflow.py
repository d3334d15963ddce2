"""The workflows users know from sandbox providers, on a real worker and the real data plane."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from dashboard.errors import Conflict, NotFound, RuleBroken
from dashboard.models import Organization, Via
from dashboard.services import Actor
from sandboxes import services
from sandboxes.models import Sandbox, SandboxState
from tests.dataplane import wait_until
from volumes.models import Attachment, Volume, VolumeState
from volumes.services import volume_create

pytestmark = pytest.mark.django_db(transaction=True)
actor = Actor(via=Via.API)


def running(sandbox: Sandbox) -> Sandbox:
    return wait_until(
        lambda: Sandbox.objects.filter(id=sandbox.id, state=SandboxState.RUNNING).first(),
        what=f"sandbox {sandbox} to run",
    )


def ended(sandbox: Sandbox, state: str = SandboxState.STOPPED) -> Sandbox:
    return wait_until(
        lambda: Sandbox.objects.filter(id=sandbox.id, state=state).first(),
        what=f"sandbox {sandbox} to be {state}",
    )


def run(org: Organization, sandbox: Sandbox, cmd: str, **kwargs: Any) -> Any:
    return services.sandbox_exec(org=org, sandbox_id=sandbox.id, cmd=cmd, actor=actor, **kwargs)


def test_the_workspace_survives_the_sandbox(
    org: Organization, data_plane: None, celery_worker: subprocess.Popen[bytes]
) -> None:
    first = running(
        services.sandbox_create(org=org, region="ord", volumes={"/workspace": "my_project"}, actor=actor)
    )
    volume = Volume.objects.get(slug="my_project")
    assert volume.state == VolumeState.AVAILABLE and volume.capacity == 1_000_000_000  # created on first use
    build = run(
        org, first,
        "cd /workspace && mkdir -p src && printf 'int main(){return 0;}' > src/main.c"
        " && printf '#!/bin/sh\\necho built\\n' > build.sh && sh build.sh > out.txt && sha256sum src/main.c",
    )  # fmt: skip
    assert build.exit_code == 0, build.stderr
    run(org, first, "echo scratch > /root/outside-the-volume")
    services.sandbox_kill(org=org, sandbox_id=first.id, actor=actor)
    ended(first)
    assert Attachment.objects.get(sandbox=first).detached_at is not None

    second = running(
        services.sandbox_create(org=org, region="ord", volumes={"/workspace": "my_project"}, actor=actor)
    )
    again = run(org, second, "cd /workspace && cat out.txt && sha256sum src/main.c")
    assert again.stdout == "built\n" + build.stdout
    gone = run(org, second, "cat /root/outside-the-volume")
    assert gone.exit_code != 0
    volume.refresh_from_db()
    assert volume.used is not None and volume.used_at is not None
    services.sandbox_kill(org=org, sandbox_id=second.id, actor=actor)
    ended(second)


def test_a_second_writer_is_refused_until_the_first_is_killed(
    org: Organization, data_plane: None, celery_worker: subprocess.Popen[bytes]
) -> None:
    first = running(
        services.sandbox_create(org=org, region="ord", volumes={"/data": "shared_vol"}, actor=actor)
    )
    with pytest.raises(Conflict, match=f'Volume "shared_vol" is already attached to sandbox {first}'):
        services.sandbox_create(org=org, region="ord", volumes={"/data": "shared_vol"}, actor=actor)
    with pytest.raises(Conflict, match='Volume "shared_vol" is already attached'):
        services.sandbox_create(
            org=org, region="ord", volumes={"/data": {"slug": "shared_vol", "read_only": True}}, actor=actor
        )
    assert Sandbox.objects.count() == 1
    services.sandbox_kill(org=org, sandbox_id=first.id, actor=actor)
    ended(first)
    second = running(
        services.sandbox_create(org=org, region="ord", volumes={"/data": "shared_vol"}, actor=actor)
    )
    services.sandbox_kill(org=org, sandbox_id=second.id, actor=actor)
    ended(second)


def test_many_readers_but_never_a_reader_and_a_writer(
    org: Organization, data_plane: None, celery_worker: subprocess.Popen[bytes]
) -> None:
    volume_create(org=org, slug="refdata", region="iad", actor=actor)
    ro = {"/ref": {"slug": "refdata", "read_only": True}}
    readers = [
        running(services.sandbox_create(org=org, region="iad", volumes=ro, actor=actor)) for _ in range(2)
    ]
    refused = run(org, readers[0], "touch /ref/x")
    assert refused.exit_code != 0 and "Read-only" in refused.stderr
    with pytest.raises(Conflict, match='Volume "refdata" is already attached read-only'):
        services.sandbox_create(org=org, region="iad", volumes={"/ref": "refdata"}, actor=actor)
    for reader in readers:
        services.sandbox_kill(org=org, sandbox_id=reader.id, actor=actor)
        ended(reader)


def test_a_background_server_answers_the_next_exec_and_is_gone_after_kill(
    org: Organization, data_plane: None, celery_worker: subprocess.Popen[bytes]
) -> None:
    sandbox = running(services.sandbox_create(org=org, region="lax", actor=actor))
    serve = "cd /tmp && echo pong > ping && exec python3 -m http.server 8080 --bind 127.0.0.1"
    server = run(org, sandbox, serve, background=True)
    assert server.pid is not None
    fetch = "python3 -c \"import urllib.request,time\nfor _ in range(50):\n try: print(urllib.request.urlopen('http://127.0.0.1:8080/ping').read().decode(),end=''); break\n except OSError: time.sleep(0.1)\""  # noqa: E501
    assert run(org, sandbox, fetch).stdout == "pong\n"
    assert "GET /ping" in services.command_log(org=org, sandbox_id=sandbox.id, command_id=server.id)
    services.sandbox_kill(org=org, sandbox_id=sandbox.id, actor=actor)
    ended(sandbox)
    leftovers = subprocess.run(["pgrep", "-f", "http.server 8080"], capture_output=True, text=True).stdout
    assert leftovers == ""


def test_files_round_trip_and_exec_records_every_command(
    org: Organization, data_plane: None, celery_worker: subprocess.Popen[bytes]
) -> None:
    sandbox = running(services.sandbox_create(org=org, region="ams", volumes={"/w": "files"}, actor=actor))
    services.sandbox_file_write(
        org=org, sandbox_id=sandbox.id, path="/w/dir/hello.bin", data=b"\x00\x01hi", actor=actor
    )
    assert (
        services.sandbox_file_read(org=org, sandbox_id=sandbox.id, path="/w/dir/hello.bin") == b"\x00\x01hi"
    )
    names = [e["name"] for e in services.sandbox_file_list(org=org, sandbox_id=sandbox.id, path="/w/dir")]
    assert names == ["hello.bin"]
    with pytest.raises(NotFound):
        services.sandbox_file_read(org=org, sandbox_id=sandbox.id, path="/w/missing")
    slow = run(org, sandbox, "sleep 30", timeout=1)
    assert slow.timed_out and slow.exit_code is None
    assert list(sandbox.commands.values_list("cmd", flat=True)) == ["sleep 30"]
    services.sandbox_kill(org=org, sandbox_id=sandbox.id, actor=actor)
    ended(sandbox)


def test_lifetime_expiry_ends_the_sandbox_and_frees_its_volumes(
    org: Organization, data_plane: None, celery_worker: subprocess.Popen[bytes]
) -> None:
    sandbox = running(services.sandbox_create(org=org, region="ord", volumes={"/w": "short"}, actor=actor))
    assert services.sandbox_reap(now=timezone.now()) == []
    later = sandbox.created_at + timedelta(minutes=31)
    assert services.sandbox_reap(now=later) == [str(sandbox.id)]
    ended(sandbox, SandboxState.EXPIRED)
    assert not Attachment.objects.live().filter(sandbox=sandbox).exists()
    again = running(services.sandbox_create(org=org, region="ord", volumes={"/w": "short"}, actor=actor))
    services.sandbox_kill(org=org, sandbox_id=again.id, actor=actor)
    ended(again)


def test_a_sandbox_the_node_lost_is_failed_and_released_once_the_node_confirms(
    org: Organization, regions: list[Any], data_plane: None, celery_worker: subprocess.Popen[bytes]
) -> None:
    from volumes.nodes import driver_of

    sandbox = running(services.sandbox_create(org=org, region="ord", volumes={"/w": "lost"}, actor=actor))
    driver_of(sandbox.node).sandbox_stop(str(sandbox.id))  # the node loses it (a reboot, say)
    done = services.node_sandboxes_reconcile_run(node_id=sandbox.node_id)
    assert done == [f"{sandbox}: lost by the node; stopping it as failed"]
    failed = ended(sandbox, SandboxState.FAILED)
    assert "lost this sandbox" in failed.error
    assert not Attachment.objects.live().filter(sandbox=sandbox).exists()


def test_bad_requests_change_nothing(org: Organization, regions: list[Any]) -> None:
    volume_create(org=org, slug="my_vol", region="ord", actor=actor)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"region": "iad", "volumes": {"/w": "my_vol"}}, 'Volume "my_vol" is in region ord'),
        (
            {"region": "ord", "volumes": {f"/v{i}": f"v{i}" for i in range(5)}},
            "At most 4 volumes can be mounted",
        ),
        ({"region": "ord", "volumes": {"/": "a"}}, "cannot be mounted at /"),
        ({"region": "ord", "volumes": {"/proc": "a"}}, "inside the system path /proc"),
        ({"region": "ord", "volumes": {"/workspace/../etc": "a"}}, "must be normalized"),
        ({"region": "ord", "volumes": {"workspace": "a"}}, "must be absolute"),
        ({"region": "ord", "volumes": {"/a": "x", "/a/b": "y"}}, 'is nested inside "/a"'),
        ({"region": "ord", "lifetime": "25h"}, "between 1 minute and 24 hours"),
        ({"region": "ord", "image": "nope"}, 'There is no image "nope"'),
        ({"region": "ord", "env": {"1X": "y"}}, "Environment variable name"),
    ]
    for kwargs, message in cases:
        with pytest.raises(RuleBroken, match=message.replace("(", r"\(")):
            services.sandbox_create(org=org, actor=actor, **kwargs)
    assert Sandbox.objects.count() == 0
    assert list(Volume.objects.values_list("slug", flat=True)) == ["my_vol"]


def test_a_deleted_volume_cannot_be_mounted(org: Organization, regions: list[Any]) -> None:
    from volumes.services import volume_delete

    volume = volume_create(org=org, slug="old", region="ord", actor=actor)
    volume_delete(org=org, id_or_slug="old", actor=actor)
    with pytest.raises(Conflict, match='Volume "old" is deleted and cannot be mounted'):
        services.sandbox_create(org=org, region="ord", volumes={"/w": str(volume.id)}, actor=actor)


def test_another_teams_sandbox_is_not_found(
    org: Organization, other_org: Organization, regions: list[Any]
) -> None:
    node = regions[0]  # a row only: nothing is started on the node
    theirs = Sandbox.objects.create(organization=other_org, region=node.region, node=node)
    with pytest.raises(NotFound):
        services.sandbox_get(org=org, sandbox_id=theirs.id)
    with pytest.raises(NotFound):
        services.sandbox_kill(org=org, sandbox_id=theirs.id, actor=actor)
    assert Sandbox.objects.get(id=theirs.id).state == SandboxState.PENDING
