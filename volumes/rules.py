"""The volume rules: slugs and capacities. Each failure names the rule it broke."""

from __future__ import annotations

import re

from dashboard.errors import RuleBroken
from dashboard.units import bytes_human
from volumes.models import GB, Region

SLUG_MAX = 30
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_BAD_SLUG_CHAR = re.compile(r"[^a-z0-9_-]")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)?\s*$", re.IGNORECASE)
UNITS = {
    "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
    "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4,
}  # fmt: skip
DEFAULT_CAPACITY = 1 * GB


def validate_slug(slug: str) -> str:
    if not slug:
        raise RuleBroken("A volume needs a slug: 1–30 lowercase letters, digits, _ or -", field="slug")
    if len(slug) > SLUG_MAX:
        raise RuleBroken(
            f'Slug "{slug}" is {len(slug)} characters long; the most is {SLUG_MAX}', field="slug"
        )
    bad = _BAD_SLUG_CHAR.search(slug)
    if bad:
        hint = " (slugs are lowercase)" if bad.group().isupper() else ""
        raise RuleBroken(
            f'Slug "{slug}" may contain only lowercase letters, digits, _ and -; '
            f'"{bad.group()}" is not allowed{hint}',
            field="slug",
        )
    if not _SLUG.match(slug):
        raise RuleBroken(f'Slug "{slug}" must start with a letter or a digit', field="slug")
    return slug


def parse_capacity(value: str | int | None) -> int:
    """Bytes from an integer, or a string such as ``2GB`` (×1000) or ``1GiB`` (×1024)."""
    if value is None or value == "":
        return DEFAULT_CAPACITY
    if isinstance(value, bool):
        raise RuleBroken("Capacity must be a number of bytes or a size such as 2GB", field="capacity")
    if isinstance(value, int):
        number = value
    else:
        match = _SIZE.match(str(value))
        if match is None:
            raise RuleBroken(
                f'Capacity "{value}" is not a size: give bytes, or a number with KB, MB, GB, TB '
                "(×1000) or KiB, MiB, GiB, TiB (×1024)",
                field="capacity",
            )
        amount, unit = match.groups()
        exact = float(amount) * UNITS[unit.upper()] if unit else float(amount)
        if exact != int(exact):
            raise RuleBroken(f'Capacity "{value}" is not a whole number of bytes', field="capacity")
        number = int(exact)
    if number <= 0:
        raise RuleBroken("Capacity must be more than 0 bytes", field="capacity")
    return number


def capacity_from_size_gb(size_gb: int | str) -> int:
    """``sizeGb`` of the sandbox form: whole decimal gigabytes."""
    try:
        gigabytes = int(size_gb)
    except (TypeError, ValueError):
        raise RuleBroken(f'sizeGb must be a whole number of GB; got "{size_gb}"', field="sizeGb") from None
    return parse_capacity(gigabytes * GB)


def check_capacity_in_region(capacity: int, region: Region) -> None:
    if capacity < region.min_capacity:
        raise RuleBroken(
            f"Capacity {bytes_human(capacity)} is below the smallest volume in {region.code} "
            f"({bytes_human(region.min_capacity)})",
            field="capacity",
        )
    if capacity > region.max_capacity:
        raise RuleBroken(
            f"Capacity {bytes_human(capacity)} is above the largest volume in {region.code} "
            f"({bytes_human(region.max_capacity)})",
            field="capacity",
        )


def region_by_code(code: str) -> Region:
    region = Region.objects.filter(code=code).first()
    if region is None:
        known = ", ".join(Region.objects.values_list("code", flat=True))
        raise RuleBroken(f'There is no region "{code}"; the regions are {known}', field="region")
    return region
