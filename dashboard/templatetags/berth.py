from __future__ import annotations

from django import template

from dashboard.units import bytes_human

register = template.Library()


@register.filter(name="bytes_human")
def bytes_human_filter(value: int | None) -> str:
    return bytes_human(value)


@register.filter
def percent(part: int | None, whole: int | None) -> float:
    if not part or not whole:
        return 0.0
    return round(min(100.0, 100.0 * part / whole), 1)


@register.filter
def usage_level(pct: float) -> str:
    """The bar's colour: 80 % warns, 95 % alerts."""
    if pct >= 95:
        return "alert"
    if pct >= 80:
        return "warn"
    return "ok"
