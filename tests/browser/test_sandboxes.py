"""A sandbox's life on the pages, against a real worker and the real data plane."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dashboard.models import Organization
from sandboxes.models import Sandbox, SandboxState
from tests.sandboxes.conftest import data_plane  # noqa: F401 - the fixture, shared with the sandbox tests
from volumes.models import Volume

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.usefixtures("data_plane")
def test_a_workspace_outlives_its_sandbox_on_the_pages(
    celery_worker: Any,
    org: Organization,
    admin: Any,
    regions: list[Any],
    live_server: Any,
    logged_in: Callable[..., Any],
    screenshot: Callable[[str], Path],
) -> None:
    page = logged_in("alice", "pw-alice")
    page.on("dialog", lambda dialog: dialog.accept())  # the kill button asks first
    new_url = f"{live_server.url}/o/{org.slug}/sandboxes/new/"
    page.goto(new_url)

    # A new volume, typed in, mounted at /workspace; one more label row added without JS.
    page.fill("input[name=mounts-0-path]", "/workspace")
    page.fill("input[name=mounts-0-new_slug]", "browser_vol")
    page.fill("input[name=mounts-0-size_gb]", "2")
    page.fill("input[name=env-0-key]", "GREETING")
    page.fill("input[name=env-0-value]", "hello")
    page.fill("input[name=labels-0-key]", "team")
    page.fill("input[name=labels-0-value]", "web")
    page.click("button:has-text('+ Add a label')")
    page.locator("input[name=labels-2-key]").wait_for()
    assert page.input_value("input[name=mounts-0-new_slug]") == "browser_vol"
    page.fill("input[name=labels-2-key]", "purpose")
    page.fill("input[name=labels-2-value]", "demo")
    screenshot("sandbox-create")

    # A system path is refused (422, swapped in by htmx) with what was typed kept.
    page.fill("input[name=mounts-0-path]", "/proc")
    page.click("button:has-text('Start sandbox')")
    page.locator("#mount-rows .flash-error:has-text('inside the system path /proc')").wait_for()
    assert page.input_value("input[name=labels-2-value]") == "demo"
    screenshot("sandbox-create-error")
    page.fill("input[name=mounts-0-path]", "/workspace")
    page.click("button:has-text('Start sandbox')")
    page.wait_for_url("**/sandboxes/*-*-*-*-*/")

    # The page polls its status until the sandbox runs; then the console appears.
    page.locator("#sandbox-status .badge.state-running").wait_for(timeout=60_000)
    first = Sandbox.objects.get()
    assert first.state == SandboxState.RUNNING and first.labels == {"team": "web", "purpose": "demo"}
    page.fill("#id_cmd", 'echo "$GREETING from $(pwd)"; ls /workspace')
    page.click("#exec-form button[type=submit]")
    page.locator("#command-history .command pre.out:has-text('hello from')").wait_for(timeout=30_000)

    page.fill("#id_upload_path", "/workspace/note.txt")
    page.fill("#id_upload_content", "hi from the browser\n")
    page.click("#upload-form button[type=submit]")
    page.locator("#sandbox-files .flash-success:has-text('Wrote /workspace/note.txt')").wait_for()
    page.locator("#sandbox-files a:has-text('note.txt')").wait_for()
    page.fill("#id_cmd", "cat /workspace/note.txt; echo oops >&2; exit 2")
    page.click("#exec-form button[type=submit]")
    page.locator("#command-history .command:first-child .badge:has-text('exit 2')").wait_for(timeout=30_000)
    screenshot("sandbox-detail")

    page.click("button:has-text('Kill')")
    page.locator("#sandbox-status .badge.state-stopped").wait_for(timeout=60_000)
    assert "available while the sandbox runs" in page.inner_text("#console")

    # Another sandbox with the same volume: the file is still there.
    page.goto(new_url)
    volume = Volume.objects.get(slug="browser_vol")
    page.select_option("#id_region", "ord")  # another region's volumes are not offered...
    page.locator("select[name=mounts-0-volume] option:has-text('No volumes in ord')").wait_for(
        state="attached"
    )
    page.select_option("#id_region", volume.region.code)  # ...but this one's are
    page.locator("select[name=mounts-0-volume] option[value=browser_vol]").wait_for(state="attached")
    page.fill("input[name=mounts-0-path]", "/workspace")
    page.select_option("select[name=mounts-0-volume]", "browser_vol")
    page.click("button:has-text('Start sandbox')")
    page.wait_for_url("**/sandboxes/*-*-*-*-*/")
    page.locator("#sandbox-status .badge.state-running").wait_for(timeout=60_000)
    page.locator("#sandbox-files a:has-text('note.txt')").click()
    page.locator("#sandbox-files .file-text:has-text('hi from the browser')").wait_for()

    page.goto(f"{live_server.url}/o/{org.slug}/sandboxes/")
    page.locator("#sandbox-table a:has-text('browser_vol')").first.wait_for()
    assert page.locator("#sandbox-table tbody tr").count() == 2
    screenshot("sandboxes-list")
