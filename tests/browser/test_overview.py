from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dashboard.models import AuditEvent, Organization

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_demo_login_reaches_the_overview(
    org: Organization,
    admin: Any,
    regions: list[Any],
    logged_in: Callable[..., Any],
    screenshot: Callable[[str], Path],
) -> None:
    AuditEvent.objects.create(
        organization=org, actor="alice", action="member.add", target="bob in Acme", via="web"
    )
    page = logged_in("alice", "pw-alice")
    assert page.url.endswith(f"/o/{org.slug}/")
    assert page.locator("h1").inner_text() == "Acme"
    assert page.locator(".region-code").count() == 4
    assert "member.add" in page.locator(".feed").inner_text()
    screenshot("overview")
    page.click("text=Members")
    page.wait_for_url(f"**/o/{org.slug}/members/")
    assert "alice" in page.locator("table").inner_text()
    screenshot("members")
    page.click("nav >> text=Images")
    page.wait_for_url(f"**/o/{org.slug}/images/")
    assert "host" in page.locator("table").inner_text()
    screenshot("images")


def test_a_wrong_password_is_refused_on_the_page(admin: Any, logged_in: Callable[..., Any]) -> None:
    page = logged_in("alice", "wrong")
    assert page.url.endswith("/login/")
    assert "enter a correct username and password" in page.locator(".flash-error").inner_text()
