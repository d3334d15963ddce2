"""A volume's whole life on the pages, against a real worker and the real data plane."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from dashboard.models import Organization
from sandboxes.models import Sandbox
from tests.dataplane import require_data_plane
from volumes.models import GB, Attachment, Volume, VolumeState

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_watch_delete_and_restore_a_volume(
    celery_worker: Any,
    org: Organization,
    admin: Any,
    regions: list[Any],
    live_server: Any,
    logged_in: Callable[..., Any],
    screenshot: Callable[[str], Path],
) -> None:
    require_data_plane()
    page = logged_in("alice", "pw-alice")
    page.click("nav >> text=Volumes")
    page.wait_for_url(f"**/o/{org.slug}/volumes/")
    page.click("text=+ New volume")
    page.wait_for_url("**/volumes/new/")

    # Live validation, as the user types.
    page.fill("#id_slug", "My-Project")
    page.locator("#slug-msg .error").wait_for()
    assert "slugs are lowercase" in page.locator("#slug-msg").inner_text()
    page.fill("#id_slug", "notebooks")
    page.locator("#slug-msg .ok-mark").wait_for()
    page.select_option("#id_region", "ams")
    page.fill("#id_capacity", "500GB")
    page.locator("#capacity-msg .error").wait_for()
    assert "above the largest volume in ams" in page.locator("#capacity-msg").inner_text()
    page.fill("#id_capacity", "2GB")
    page.locator("#capacity-msg .parsed:has-text('2,000,000,000')").wait_for()
    assert page.locator("#capacity-msg .error").count() == 0
    page.fill("#id_description", "Jupyter notebooks of the data team")
    page.fill("#id_labels", "team=data\nenv=dev")
    screenshot("volume-create")

    page.click("button:has-text('Create volume')")
    page.wait_for_url("**/volumes/*-*-*-*-*/")
    # The page polls its status until the node has made the filesystem.
    page.locator("#volume-status .badge.state-available").wait_for(timeout=60_000)
    assert Volume.objects.get(slug="notebooks").state == VolumeState.AVAILABLE
    page.locator("#volume-files .files").wait_for(timeout=30_000)
    screenshot("volume-detail")

    _neighbours(org, regions[0])
    page.goto(f"{live_server.url}/o/{org.slug}/volumes/")
    assert "notebooks" in page.locator("#volume-table").inner_text()
    assert page.locator(".bar .fill.warn").count() == 1 and page.locator(".bar .fill.alert").count() == 1
    screenshot("volumes-list")

    page.click("#volume-table >> text=notebooks")
    page.fill("#id_confirm", "notebook")
    page.click("button:has-text('Delete volume')")
    page.locator("#volume-delete .error").wait_for()
    page.fill("#id_confirm", "notebooks")
    page.click("button:has-text('Delete volume')")
    page.wait_for_url(f"**/o/{org.slug}/volumes/")
    assert "in Trash for 24 h" in page.locator(".flash-success").inner_text()

    page.click("nav >> text=Trash")
    page.wait_for_url(f"**/o/{org.slug}/trash/")
    row = page.locator("#trash-table tr", has_text="notebooks")
    assert "23 h" in row.inner_text()
    screenshot("trash")
    row.locator("button:has-text('Restore')").click()
    page.wait_for_url("**/volumes/*-*-*-*-*/")
    assert page.locator("h1").inner_text() == "notebooks"
    page.locator("#volume-status .badge.state-available").wait_for()
    page.locator("#volume-files .files").wait_for(timeout=30_000)
    assert Volume.objects.get(slug="notebooks").state == VolumeState.AVAILABLE


def _neighbours(org: Organization, node: Any) -> None:
    """Rows (with no storage behind them) so the list shows its usage levels and "used by"."""
    now = timezone.now()
    for slug, used, description in [
        ("datasets", 85 * GB // 10, "Parquet files, warn level"),
        ("build-cache", 97 * GB // 100, "ccache and pip wheels"),
    ]:
        capacity = 10 * GB if slug == "datasets" else GB
        volume = Volume.objects.create(
            organization=org,
            slug=slug,
            region=node.region,
            node=node,
            capacity=capacity,
            state=VolumeState.AVAILABLE,
            used=used,
            used_at=now,
            description=description,
        )
    sandbox = Sandbox.objects.create(organization=org, region=node.region, node=node, state="running")
    Attachment.objects.create(volume=volume, sandbox=sandbox, mount_path="/cache")
