"""/api/bounces: query, get and delete bounces and complaints (listmonk's shapes), also per
subscriber. A restricted API user sees those of its lists' subscribers."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from ninja import Query, Router, Schema
from ninja.errors import HttpError

from api import subscribers
from api.envelope import ApiRequest, listing, one, require, rfc3339
from mailer.models import Bounce
from subscribers import access

router = Router(tags=["Bounces"])

ORDER = {"id": "id", "email": "email", "campaign_name": "campaign__name", "created_at": "at"}


class BounceFilters(Schema):
    campaign_id: int | None = None
    source: str | None = None
    order_by: str | None = None
    order: str | None = None
    page: int | None = None
    per_page: str | None = None


def visible(user: Any) -> QuerySet[Bounce]:
    rows = Bounce.objects.select_related("campaign", "subscriber")
    return access.scope(user, rows, "subscriber__mailing_lists")


def as_json(bounce: Bounce) -> dict[str, Any]:
    campaign = bounce.campaign
    return {
        "id": bounce.pk,
        "type": bounce.kind,
        "source": bounce.source,
        "meta": {"description": bounce.description} if bounce.description else {},
        "email": bounce.email,
        "subscriber_id": bounce.subscriber_id,
        "subscriber_uuid": str(bounce.subscriber.uuid) if bounce.subscriber else None,
        "campaign": {"id": campaign.pk, "name": campaign.name} if campaign else None,
        "campaign_uuid": str(campaign.uuid) if campaign else None,
        "created_at": rfc3339(bounce.at),
    }


@router.get("/bounces")
def query_bounces(request: ApiRequest, filters: Query[BounceFilters]) -> dict[str, Any]:
    require(request.auth, "mailer.view_bounce", "read bounces")
    rows = visible(request.auth)
    if filters.campaign_id is not None:
        rows = rows.filter(campaign_id=filters.campaign_id)
    if filters.source:
        rows = rows.filter(source=filters.source)
    return listing(rows, filters, ORDER, as_json, by="created_at", direction="desc")


@router.get("/bounces/{int:bounce_id}")
def get_bounce(request: ApiRequest, bounce_id: int) -> dict[str, Any]:
    require(request.auth, "mailer.view_bounce", "read bounces")
    return {"data": as_json(one(visible(request.auth), bounce_id, "Bounce"))}


@router.delete("/bounces/{int:bounce_id}")
def delete_bounce(request: ApiRequest, bounce_id: int) -> dict[str, Any]:
    require(request.auth, "mailer.delete_bounce", "delete bounces")
    deleted, _ = visible(request.auth).filter(pk=bounce_id).delete()
    if not deleted:
        raise HttpError(404, f"Bounce {bounce_id} not found.")
    return {"data": True}


class BounceIds(Schema):
    id: list[int] = []
    all: bool = False


@router.delete("/bounces")
def delete_bounces(request: ApiRequest, chosen: Query[BounceIds]) -> dict[str, Any]:
    require(request.auth, "mailer.delete_bounce", "delete bounces")
    if not chosen.id and not chosen.all:
        raise HttpError(400, "Name the bounces with `id` (repeat it), or pass `all=true`.")
    rows = visible(request.auth)
    (rows if chosen.all else rows.filter(pk__in=chosen.id)).delete()
    return {"data": True}


@router.get("/subscribers/{int:subscriber_id}/bounces")
def subscriber_bounces(request: ApiRequest, subscriber_id: int) -> dict[str, Any]:
    require(request.auth, "mailer.view_bounce", "read bounces")
    subscriber = subscribers.get_visible(request.auth, subscriber_id)
    return {"data": [as_json(b) for b in visible(request.auth).filter(subscriber=subscriber)]}


@router.delete("/subscribers/{int:subscriber_id}/bounces")
def delete_subscriber_bounces(request: ApiRequest, subscriber_id: int) -> dict[str, Any]:
    require(request.auth, "mailer.delete_bounce", "delete bounces")
    subscriber = subscribers.get_visible(request.auth, subscriber_id)
    Bounce.objects.filter(subscriber=subscriber).delete()
    return {"data": True}
