"""/api/lists: query, get, create, update and delete mailing lists (listmonk's shapes)."""

from __future__ import annotations

from typing import Any, Literal

from django.db.models import QuerySet
from guardian.shortcuts import assign_perm
from ninja import Field, Query, Router, Schema

from api.envelope import ApiRequest, checked_save, listing, one, require, rfc3339
from subscribers import access
from subscribers.counting import with_counts
from subscribers.models import MailingList

router = Router(tags=["Lists"])

ORDER = {"id": "id", "name": "name", "created_at": "created_at", "updated_at": "updated_at"}


class NewList(Schema):
    name: str = Field(min_length=1, max_length=200)
    type: Literal["public", "private"] = "private"
    optin: Literal["single", "double"] = "single"
    tags: list[str] = []
    description: str = ""


class ListChange(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    type: Literal["public", "private"] | None = None
    optin: Literal["single", "double"] | None = None
    tags: list[str] | None = None
    description: str | None = None


class ListFilters(Schema):
    query: str | None = None
    tag: list[str] = []
    order_by: str | None = None
    order: str | None = None
    page: int | None = None
    per_page: str | None = None


def as_json(mailing_list: MailingList) -> dict[str, Any]:
    return {
        "id": mailing_list.pk,
        "uuid": str(mailing_list.uuid),
        "name": mailing_list.name,
        "type": "public" if mailing_list.is_public else "private",
        "optin": mailing_list.opt_in,
        "tags": mailing_list.tags,
        "description": mailing_list.description,
        "subscriber_count": getattr(mailing_list, "subscriber_count", None),
        "created_at": rfc3339(mailing_list.created_at),
        "updated_at": rfc3339(mailing_list.updated_at),
    }


def visible(user: Any) -> QuerySet[MailingList]:
    """The lists the API user may see, each with how many subscribed to it."""
    return with_counts(access.lists_for(user))


def get_visible(user: Any, list_id: int) -> MailingList:
    return one(visible(user), list_id, "List")


@router.get("/lists")
def query_lists(request: ApiRequest, filters: Query[ListFilters]) -> dict[str, Any]:
    require(request.auth, "subscribers.view_mailinglist", "read lists")
    rows = visible(request.auth)
    if filters.query:
        rows = rows.filter(name__icontains=filters.query)
    for tag in filters.tag:
        rows = rows.filter(tags__contains=[tag])
    return listing(rows, filters, ORDER, as_json)


@router.get("/lists/{int:list_id}")
def get_list(request: ApiRequest, list_id: int) -> dict[str, Any]:
    require(request.auth, "subscribers.view_mailinglist", "read lists")
    return {"data": as_json(get_visible(request.auth, list_id))}


def save(mailing_list: MailingList) -> None:
    conflict = f"A list named {mailing_list.name!r} exists already."
    checked_save(mailing_list, conflict=conflict, exclude=("uuid",))


@router.post("/lists")
def create_list(request: ApiRequest, body: NewList) -> dict[str, Any]:
    user = request.auth
    require(user, "subscribers.add_mailinglist", "create lists")
    mailing_list = MailingList(
        name=body.name,
        is_public=body.type == "public",
        opt_in=body.optin,
        tags=body.tags,
        description=body.description,
    )
    save(mailing_list)
    if access.restricted(user):
        # Whoever made a list may use it (a user scoped to lists would not see it otherwise).
        assign_perm(access.VIEW, user, mailing_list)
        assign_perm(access.SEND, user, mailing_list)
    return {"data": as_json(get_visible(user, mailing_list.pk))}


@router.put("/lists/{int:list_id}")
def update_list(request: ApiRequest, list_id: int, body: ListChange) -> dict[str, Any]:
    require(request.auth, "subscribers.change_mailinglist", "change lists")
    mailing_list = get_visible(request.auth, list_id)
    if body.name is not None:
        mailing_list.name = body.name
    if body.type is not None:
        mailing_list.is_public = body.type == "public"
    if body.optin is not None:
        mailing_list.opt_in = body.optin
    if body.tags is not None:
        mailing_list.tags = body.tags
    if body.description is not None:
        mailing_list.description = body.description
    save(mailing_list)
    return {"data": as_json(get_visible(request.auth, list_id))}


@router.delete("/lists/{int:list_id}")
def delete_list(request: ApiRequest, list_id: int) -> dict[str, Any]:
    require(request.auth, "subscribers.delete_mailinglist", "delete lists")
    get_visible(request.auth, list_id).delete()
    return {"data": True}
