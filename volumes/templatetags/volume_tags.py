"""Template helpers of the volume pages."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

register = template.Library()


@register.simple_tag
def sandbox_url(org_slug: str, sandbox_id: object) -> str:
    """The sandbox's detail page, or "" while the sandbox pages do not exist yet."""
    try:
        return reverse("sandbox-detail", args=[org_slug, sandbox_id])
    except NoReverseMatch:
        return ""


def duration_human(delta: timedelta) -> str:
    """A duration in hours and minutes: "23 h 59 min", "5 min", "24 h"."""
    minutes = max(0, int(delta.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    if hours:
        return f"{hours} h"
    return f"{minutes} min"


@register.filter
def time_left(until: datetime | None) -> str:
    """What is left of a grace period: "23 h 59 min left", or that it has ended."""
    if until is None:
        return ""
    left = until - timezone.now()
    if left <= timedelta(0):
        return "purging now"
    if left < timedelta(minutes=1):
        return "less than a minute left"
    return f"{duration_human(left)} left"
