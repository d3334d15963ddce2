"""Writes for organizations, members, tokens and the audit log."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone

from dashboard.errors import Conflict, NotFound, RuleBroken
from dashboard.models import (
    TOKEN_PREFIX,
    ApiToken,
    AuditEvent,
    Membership,
    Organization,
    Role,
    Via,
    token_digest,
)


@dataclass(frozen=True)
class Actor:
    """Who is acting, and through which door; every service that changes state takes one."""

    user: Any = None
    token: ApiToken | None = None
    via: str = Via.WEB
    ip: str | None = None

    @classmethod
    def system(cls, via: str = Via.WORKER) -> Actor:
        return cls(via=via)

    @classmethod
    def from_request(cls, request: HttpRequest, via: str = Via.WEB) -> Actor:
        user = request.user if request.user.is_authenticated else None
        return cls(user=user, via=via, ip=request.META.get("REMOTE_ADDR"))

    @property
    def label(self) -> str:
        if self.user is not None:
            return str(self.user.get_username())
        if self.token is not None:
            return f"token {self.token.name} ({self.token.prefix}…)"
        return "system"


def audit_record(
    *,
    org: Organization | None,
    actor: Actor,
    action: str,
    target: Model | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        organization=org,
        user=actor.user,
        token=actor.token,
        actor=actor.label,
        action=action,
        target_type=(target._meta.model_name or "") if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target=str(target) if target is not None else "",
        via=actor.via,
        ip=actor.ip,
        data=data or {},
    )


@transaction.atomic
def member_add(*, org: Organization, username: str, role: str, actor: Actor) -> Membership:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise RuleBroken(f'There is no user "{username}"; they must sign up first', field="username")
    if Membership.objects.filter(organization=org, user=user).exists():
        raise Conflict(f'"{username}" is already a member of {org.name}', field="username")
    membership = Membership.objects.create(organization=org, user=user, role=Role(role))
    audit_record(org=org, actor=actor, action="member.add", target=membership, data={"role": role})
    return membership


def _lock_admins(org: Organization) -> list[int]:
    """Lock the organization's admin rows so two demotions cannot both leave it without one."""
    return list(
        Membership.objects.select_for_update()
        .filter(organization=org, role=Role.ADMIN)
        .values_list("id", flat=True)
    )


def _refuse_last_admin(org: Organization, membership: Membership) -> None:
    admins = _lock_admins(org)
    if admins == [membership.id]:
        raise Conflict(f"{membership.user} is the last admin of {org.name}; make someone else admin first")


@transaction.atomic
def member_role_change(*, org: Organization, membership_id: int, role: str, actor: Actor) -> Membership:
    membership = _membership(org, membership_id)
    if membership.role == Role.ADMIN and role != Role.ADMIN:
        _refuse_last_admin(org, membership)
    old = membership.role
    membership.role = Role(role)
    membership.save(update_fields=["role"])
    audit_record(
        org=org, actor=actor, action="member.role", target=membership, data={"from": old, "to": role}
    )
    return membership


@transaction.atomic
def member_remove(*, org: Organization, membership_id: int, actor: Actor) -> None:
    membership = _membership(org, membership_id)
    if membership.role == Role.ADMIN:
        _refuse_last_admin(org, membership)
    audit_record(org=org, actor=actor, action="member.remove", target=membership)
    membership.delete()


def _membership(org: Organization, membership_id: int) -> Membership:
    membership = Membership.objects.select_related("user").filter(organization=org, id=membership_id).first()
    if membership is None:
        raise NotFound("No such member")
    return membership


@transaction.atomic
def token_create(
    *, org: Organization, name: str, role: str, expires_at: datetime | None, actor: Actor
) -> tuple[ApiToken, str]:
    """Make a token and return it with its secret, which is never stored and shown only now."""
    name = name.strip()
    if not name:
        raise RuleBroken("A token needs a name, so you can tell it apart later", field="name")
    if expires_at is not None and expires_at <= timezone.now():
        raise RuleBroken("The expiry must be in the future", field="expires_at")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        organization=org,
        name=name,
        role=Role(role),
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        digest=token_digest(secret),
        created_by=actor.user,
        expires_at=expires_at,
    )
    audit_record(org=org, actor=actor, action="token.create", target=token, data={"role": role})
    return token, secret


@transaction.atomic
def token_revoke(*, org: Organization, token_id: int, actor: Actor) -> ApiToken:
    token = ApiToken.objects.for_org(org).select_for_update().filter(id=token_id).first()
    if token is None:
        raise NotFound("No such token")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(org=org, actor=actor, action="token.revoke", target=token)
    return token


def token_authenticate(secret: str) -> ApiToken | None:
    """The usable token with this secret, or None; notes when it was last used."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.usable().select_related("organization").filter(digest=token_digest(secret)).first()
    )
    if token is None:
        return None
    now = timezone.now()
    # One write a minute at most, so a busy script does not turn every read into a write.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(id=token.id).update(last_used_at=now)
        token.last_used_at = now
    return token
