from __future__ import annotations

from django import template

register = template.Library()

_UNITS = [("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)]


@register.filter
def bytes_human(value: int | None) -> str:
    """Bytes in decimal units, as capacities are sold: 2000000000 -> "2 GB"."""
    if value is None:
        return "—"
    number = int(value)
    for unit, size in _UNITS:
        if abs(number) >= size:
            amount = number / size
            text = f"{amount:.1f}".rstrip("0").rstrip(".") if amount < 100 else f"{amount:.0f}"
            return f"{text} {unit}"
    return f"{number} B"


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
