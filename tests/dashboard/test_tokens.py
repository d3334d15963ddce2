from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from dashboard.models import ApiToken, AuditEvent, Organization, Role

pytestmark = pytest.mark.django_db


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_a_valid_token_reads_the_api_and_notes_when_it_was_used(
    org: Organization, token_for: Callable[[Organization, str], str], regions: list[Any]
) -> None:
    secret = token_for(org, Role.VIEWER)
    response = Client().get("/api/v2/regions", headers=bearer(secret))
    assert response.status_code == 200
    assert [r["code"] for r in response.json()["items"]] == ["ams", "iad", "lax", "ord"]
    assert ApiToken.objects.get(prefix=secret[:12]).last_used_at is not None


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer berth_nope", "Token abc", "Bearer not-berth"])
def test_a_missing_or_unknown_token_gets_401_in_the_error_shape(org: Organization, header: str) -> None:
    response = Client().get("/api/v2/regions", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_a_revoked_token_gets_401_on_its_next_request(
    org: Organization,
    admin: Any,
    token_for: Callable[[Organization, str], str],
    client_as: Callable[..., Client],
) -> None:
    secret = token_for(org, Role.MEMBER)
    assert Client().get("/api/v2/regions", headers=bearer(secret)).status_code == 200
    token = ApiToken.objects.get(prefix=secret[:12])
    client_as(admin).post(f"/o/{org.slug}/tokens/{token.id}/revoke/")
    assert Client().get("/api/v2/regions", headers=bearer(secret)).status_code == 401
    assert AuditEvent.objects.filter(action="token.revoke", target_id=str(token.id)).exists()


def test_an_expired_token_gets_401(org: Organization, token_for: Callable[[Organization, str], str]) -> None:
    secret = token_for(org, Role.MEMBER)
    ApiToken.objects.filter(prefix=secret[:12]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().get("/api/v2/regions", headers=bearer(secret)).status_code == 401


def test_the_token_table_holds_no_plaintext_token(
    org: Organization, admin: Any, client_as: Callable[..., Client]
) -> None:
    response = client_as(admin).post(f"/o/{org.slug}/tokens/new/", {"name": "deploy", "role": "member"})
    assert response.status_code == 200
    secret = response.context["secret"]
    assert secret.startswith("berth_") and len(secret) > 40
    assert secret.encode() in response.content  # shown once, on this response
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM dashboard_apitoken")
        dump = repr(cursor.fetchall())
        cursor.execute("SELECT * FROM dashboard_auditevent")
        dump += repr(cursor.fetchall())
    assert secret not in dump
    assert secret[6:] not in dump
    assert "berth_" in dump  # the short visible prefix is there
    assert secret.encode() not in client_as(admin).get(f"/o/{org.slug}/tokens/").content


def test_a_token_form_with_a_past_expiry_is_refused_and_makes_nothing(
    org: Organization, admin: Any, client_as: Callable[..., Client]
) -> None:
    response = client_as(admin).post(
        f"/o/{org.slug}/tokens/new/", {"name": "old", "role": "member", "expires_at": "2001-01-01T00:00"}
    )
    assert response.status_code == 422
    assert b"The expiry must be in the future" in response.content
    assert not ApiToken.objects.exists()


def test_the_command_prints_a_token_that_works(org: Organization, admin: Any, regions: list[Any]) -> None:
    out = StringIO()
    call_command("token_create", "--org", org.slug, "--role", "viewer", "--user", admin.username, stdout=out)
    secret = out.getvalue().strip()
    assert Client().get("/api/v2/regions", headers=bearer(secret)).status_code == 200
    assert ApiToken.objects.get(prefix=secret[:12]).role == "viewer"


def test_the_command_names_an_unknown_organization() -> None:
    with pytest.raises(CommandError, match="There is no organization with the slug 'nope'"):
        call_command("token_create", "--org", "nope", "--role", "admin")


def test_a_token_past_its_rate_limit_gets_429_with_retry_after(
    org: Organization, token_for: Callable[[Organization, str], str], regions: list[Any], settings: Any
) -> None:
    settings.API_RATE_LIMIT = 3
    secret, other = token_for(org, Role.VIEWER), token_for(org, Role.VIEWER)
    codes = [Client().get("/api/v2/regions", headers=bearer(secret)).status_code for _ in range(3)]
    refused = Client().get("/api/v2/regions", headers=bearer(secret))
    assert codes == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert "3 requests a minute" in refused.json()["error"]["message"]
    assert 0 < int(refused["Retry-After"]) <= 60
    assert Client().get("/api/v2/regions", headers=bearer(other)).status_code == 200  # counted per token
