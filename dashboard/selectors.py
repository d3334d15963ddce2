"""Reads for organizations, members, tokens and the audit log."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from dashboard.models import ApiToken, AuditEvent, Membership, Organization


def members_of(org: Organization) -> QuerySet[Membership]:
    return Membership.objects.filter(organization=org).select_related("user")


def tokens_of(org: Organization) -> QuerySet[ApiToken]:
    return ApiToken.objects.for_org(org).select_related("created_by")


def audit_events_of(org: Organization, *, action: str = "") -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.for_org(org).select_related("user")
    if action:
        events = events.filter(action__startswith=action)
    return events


def first_org_of(user: Any) -> Organization | None:
    return Organization.objects.for_user(user).first()
