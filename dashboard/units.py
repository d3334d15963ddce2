from __future__ import annotations

_UNITS = [("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)]


def bytes_human(value: int | None) -> str:
    """Bytes in decimal units, as capacities are sold: 2000000000 -> "2 GB"."""
    if value is None:
        return "—"
    number = int(value)
    for unit, size in _UNITS:
        if abs(number) >= size:
            amount = number / size
            text = f"{amount:.2f}".rstrip("0").rstrip(".") if amount < 100 else f"{amount:.0f}"
            return f"{text} {unit}"
    return f"{number} B"
