"""listmonk's response shapes: `{"data": …}` on success, `{"message": "…"}` with a 4xx or 5xx
on failure, pages as `{"results", "query", "total", "per_page", "page"}`, RFC 3339 times."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja.errors import HttpError


class ApiRequest(HttpRequest):
    """A request that passed api.auth: `auth` is its API user."""

    auth: Any


DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 1000


def rfc3339(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def invalid(error: ValidationError) -> str:
    """A model's validation errors as one sentence per field."""
    return " ".join(
        f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items()
    )


def checked_save(row: Any, *, conflict: str, exclude: tuple[str, ...] = ()) -> None:
    """Validate and save a row: 400 with what is wrong, 409 when a unique value is taken."""
    try:
        row.full_clean(exclude=list(exclude), validate_unique=False)
        with transaction.atomic():
            row.save()
    except ValidationError as error:
        raise HttpError(400, invalid(error)) from error
    except IntegrityError as error:
        raise HttpError(409, conflict) from error


def require(user: Any, permission: str, doing: str) -> None:
    """403 unless the API user's role has the permission."""
    if not user.has_perm(permission):
        raise HttpError(
            403, f"This API user may not {doing}: its role lacks the permission {permission}."
        )


def page_of(
    rows: QuerySet, *, page: int | None, per_page: str | None
) -> tuple[list[Any], dict[str, Any]]:
    """One page of rows and the page's figures (`per_page=all`: every row)."""
    total = rows.count()
    if per_page in (None, ""):
        size = DEFAULT_PER_PAGE
    elif per_page == "all":
        size = 0
    elif per_page.isdigit() and int(per_page) > 0:
        size = min(int(per_page), MAX_PER_PAGE)
    else:
        raise HttpError(400, f"per_page must be a number from 1 to {MAX_PER_PAGE}, or 'all'.")
    number = page or 1
    if number < 1:
        raise HttpError(400, "page starts at 1.")
    if size == 0:
        return list(rows), {"total": total, "per_page": total, "page": 1}
    start = (number - 1) * size
    return list(rows[start : start + size]), {"total": total, "per_page": size, "page": number}


def order(rows: QuerySet, order_by: str | None, direction: str | None, allowed: dict) -> QuerySet:
    """Sort by one of `allowed` (the API's name -> the field), ASC or DESC."""
    field = allowed.get(order_by or "")
    if order_by and field is None:
        raise HttpError(400, f"order_by must be one of: {', '.join(sorted(allowed))}.")
    if (direction or "asc").lower() not in ("asc", "desc"):
        raise HttpError(400, "order must be ASC or DESC.")
    field = field or "id"
    return rows.order_by(f"-{field}" if (direction or "").lower() == "desc" else field, "id")


def one(rows: QuerySet, pk: int, noun: str) -> Any:
    """The row with this id among those the API user may see; 404 otherwise (a row it may
    not see answers as one that does not exist)."""
    row = rows.filter(pk=pk).first()
    if row is None:
        raise HttpError(404, f"{noun} {pk} not found.")
    return row


def listing(
    rows: QuerySet,
    filters: Any,
    allowed: dict,
    as_json: Callable[[Any], dict[str, Any]],
    *,
    by: str | None = None,
    direction: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One page of rows, sorted as asked (else by `by`, `direction`), in listmonk's shape."""
    rows = order(rows, filters.order_by or by, filters.order or direction, allowed)
    results, figures = page_of(rows, page=filters.page, per_page=filters.per_page)
    return {"data": {"results": [as_json(r) for r in results], **extra, **figures}}
