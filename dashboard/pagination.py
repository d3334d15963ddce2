"""Keyset (cursor) pagination: pages never shift or repeat when rows are added meanwhile."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.db.models import Model, Q, QuerySet

from dashboard.errors import Malformed

T = TypeVar("T", bound=Model)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def _encode(value: Any, pk: Any) -> str:
    raw = json.dumps([value.isoformat() if isinstance(value, datetime) else value, str(pk)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[Any, str]:
    try:
        value, pk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error):
        raise Malformed("The cursor is not one this API gave out; start again without it") from None
    return value, pk


def keyset_page(rows: QuerySet[T], *, descending: bool, cursor: str, limit: int, is_time: bool) -> Page[T]:
    """One page of ``rows``, which must be annotated with ``sort_key``; ties break on the id."""
    if cursor:
        value, pk = _decode(cursor)
        if is_time and isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise Malformed("The cursor is not one this API gave out; start again without it") from None
        after = "lt" if descending else "gt"
        rows = rows.filter(Q(**{f"sort_key__{after}": value}) | Q(sort_key=value, **{f"id__{after}": pk}))
    order = ["-sort_key", "-id"] if descending else ["sort_key", "id"]
    items = list(rows.order_by(*order)[: limit + 1])
    more = len(items) > limit
    items = items[:limit]
    last = items[-1] if items else None
    next_cursor = _encode(last.sort_key, last.pk) if more and last is not None else None  # type: ignore[attr-defined]
    return Page(items=items, next_cursor=next_cursor)
