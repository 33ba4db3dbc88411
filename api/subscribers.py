"""/api/subscribers: query, get, create, update, delete, blocklist, list memberships and one
subscriber's data (listmonk's shapes). A restricted API user sees only subscribers of its
lists, and only those lists on them; anyone else answers as not found."""

from __future__ import annotations

import json
from typing import Any, Literal
from uuid import UUID

from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.http import HttpResponse
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from api.envelope import ApiRequest, listing, one, require, rfc3339
from api.query import QueryError, subscriber_filter
from settings import audit, queues
from subscribers import access
from subscribers.addresses import EmailNotValidError, normalise_email
from subscribers.exports import subscriber_export
from subscribers.models import MAX_NAME, MailingList, Subscriber, Subscription
from subscribers.services import subscriber_blocklist, subscriber_erase, subscriber_unsubscribe

router = Router(tags=["Subscribers"])

ORDER = {
    "id": "id",
    "email": "email",
    "name": "name",
    "status": "status",
    "created_at": "created_at",
    "updated_at": "updated_at",
}


class NewSubscriber(Schema):
    email: str = Field(max_length=254)
    name: str = Field("", max_length=MAX_NAME)
    status: Literal["enabled", "blocklisted"] = "enabled"
    lists: list[int] = []
    list_uuids: list[str] = []
    preconfirm_subscriptions: bool = False
    attribs: dict[str, Any] = {}


class SubscriberChange(Schema):
    email: str | None = Field(None, max_length=254)
    name: str | None = Field(None, max_length=MAX_NAME)
    status: Literal["enabled", "blocklisted"] | None = None
    lists: list[int] | None = None
    list_uuids: list[str] | None = None
    preconfirm_subscriptions: bool = False
    attribs: dict[str, Any] | None = None


class SubscriberFilters(Schema):
    query: str | None = None
    list_id: list[int] = []
    subscription_status: Literal["unconfirmed", "confirmed", "unsubscribed"] | None = None
    order_by: str | None = None
    order: str | None = None
    page: int | None = None
    per_page: str | None = None


class Memberships(Schema):
    ids: list[int] = []
    query: str | None = None
    action: Literal["add", "remove", "unsubscribe"]
    target_list_ids: list[int]
    status: Literal["confirmed", "unconfirmed", "unsubscribed"] = "confirmed"


class Ids(Schema):
    ids: list[int] = []
    query: str | None = None


def visible(user: Any) -> QuerySet[Subscriber]:
    lists = access.lists_for(user)
    rows = access.scope(user, Subscriber.objects.all(), "mailing_lists")
    return rows.prefetch_related(
        Prefetch(
            "subscriptions",
            queryset=Subscription.objects.filter(mailing_list__in=lists).select_related(
                "mailing_list"
            ),
        )
    )


def get_visible(user: Any, subscriber_id: int) -> Subscriber:
    return one(visible(user), subscriber_id, "Subscriber")


def as_json(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "id": subscriber.pk,
        "uuid": str(subscriber.uuid),
        "email": subscriber.email,
        "name": subscriber.name,
        "attribs": subscriber.attributes,
        "status": subscriber.status,
        "lists": [
            {
                "subscription_status": s.status,
                "subscription_created_at": rfc3339(s.created_at),
                "subscription_updated_at": rfc3339(s.updated_at),
                "id": s.mailing_list.pk,
                "uuid": str(s.mailing_list.uuid),
                "name": s.mailing_list.name,
                "type": "public" if s.mailing_list.is_public else "private",
                "optin": s.mailing_list.opt_in,
                "tags": s.mailing_list.tags,
                "created_at": rfc3339(s.mailing_list.created_at),
                "updated_at": rfc3339(s.mailing_list.updated_at),
            }
            for s in subscriber.subscriptions.all()
        ],
        "created_at": rfc3339(subscriber.created_at),
        "updated_at": rfc3339(subscriber.updated_at),
    }


def matching(rows: QuerySet[Subscriber], query: str | None) -> QuerySet[Subscriber]:
    """The rows a listmonk `query` (an SQL expression, parsed, never run) selects."""
    if not query:
        return rows
    try:
        return rows.filter(subscriber_filter(query))
    except QueryError as error:
        raise HttpError(400, str(error)) from error


def chosen(user: Any, ids: list[int], query: str | None) -> QuerySet[Subscriber]:
    """The subscribers a bulk action names, by `ids` or by `query`, of those the user sees."""
    if ids:
        return visible(user).filter(pk__in=ids)
    if query:
        return matching(visible(user), query)
    raise HttpError(400, "Name the subscribers with `ids` or select them with `query`.")


def target_lists(user: Any, ids: list[int], uuids: list[str] | None = None) -> list[MailingList]:
    """The lists named by id or uuid, all of which the API user may use."""
    uuids = uuids or []
    wanted = list(access.lists_for(user).filter(pk__in=ids)) if ids else []
    if uuids:
        try:
            wanted += list(access.lists_for(user).filter(uuid__in=[UUID(u) for u in uuids]))
        except ValueError as error:
            raise HttpError(400, f"list_uuids holds a value that is not a UUID: {error}") from error
    found = {str(m.pk) for m in wanted} | {str(m.uuid) for m in wanted}
    missing = [str(i) for i in [*ids, *uuids] if str(i) not in found]
    if missing:
        raise HttpError(404, f"List {', '.join(missing)} not found.")
    return list({m.pk: m for m in wanted}.values())


def clean_email(email: str) -> str:
    try:
        return normalise_email(email)
    except EmailNotValidError as error:
        raise HttpError(400, f"{email!r} is not a valid email address: {error}") from error


def clean_name(name: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise HttpError(400, "A name cannot contain line breaks or control characters.")
    return name.strip()


def subscribe(subscriber: Subscriber, lists: list[MailingList], *, preconfirm: bool) -> None:
    """Join the lists: confirmed at once unless a double opt-in list waits for the
    subscriber's confirmation, whose message goes through the transactional queue."""
    pending = []
    for mailing_list in lists:
        double = mailing_list.opt_in == MailingList.OptIn.DOUBLE and not preconfirm
        status = Subscription.Status.UNCONFIRMED if double else Subscription.Status.CONFIRMED
        subscription, created = Subscription.objects.get_or_create(
            subscriber=subscriber, mailing_list=mailing_list, defaults={"status": status}
        )
        if not created and subscription.status != Subscription.Status.CONFIRMED:
            subscription.status = status
            subscription.save(update_fields=["status", "updated_at"])
        if status == Subscription.Status.UNCONFIRMED:
            pending.append(mailing_list.pk)
    if pending and subscriber.status == Subscriber.Status.ENABLED:
        queues.enqueue_on_commit(
            queues.SEND_OPTIN_CONFIRMATION, subscriber_id=subscriber.pk, list_ids=pending
        )


@router.get("/subscribers")
def query_subscribers(request: ApiRequest, filters: Query[SubscriberFilters]) -> dict[str, Any]:
    require(request.auth, "subscribers.view_subscriber", "read subscribers")
    rows = matching(visible(request.auth), filters.query)
    if filters.list_id:
        lists = target_lists(request.auth, filters.list_id)
        memberships = Subscription.objects.filter(mailing_list__in=lists)
        if filters.subscription_status:
            memberships = memberships.filter(status=filters.subscription_status)
        rows = rows.filter(pk__in=memberships.values("subscriber_id"))
    return listing(rows, filters, ORDER, as_json, query=filters.query or "")


@router.get("/subscribers/{int:subscriber_id}")
def get_subscriber(request: ApiRequest, subscriber_id: int) -> dict[str, Any]:
    require(request.auth, "subscribers.view_subscriber", "read subscribers")
    return {"data": as_json(get_visible(request.auth, subscriber_id))}


@router.post("/subscribers")
def create_subscriber(request: ApiRequest, body: NewSubscriber) -> dict[str, Any]:
    user = request.auth
    require(user, "subscribers.add_subscriber", "add subscribers")
    email = clean_email(body.email)
    lists = target_lists(user, body.lists, body.list_uuids)
    if access.restricted(user) and not lists:
        raise HttpError(400, "Name at least one of your lists in `lists`.")
    with transaction.atomic():
        if Subscriber.objects.filter(email=email).exists():
            raise HttpError(409, "E-mail already exists.")
        subscriber = Subscriber.objects.create(
            email=email, name=clean_name(body.name), attributes=body.attribs, status=body.status
        )
        subscribe(subscriber, lists, preconfirm=body.preconfirm_subscriptions)
    return {"data": as_json(get_visible(user, subscriber.pk))}


@router.put("/subscribers/lists")
def manage_lists(request: ApiRequest, body: Memberships) -> dict[str, Any]:
    user = request.auth
    require(user, "subscribers.change_subscriber", "change list memberships")
    lists = target_lists(user, body.target_list_ids)
    with transaction.atomic():
        for subscriber in chosen(user, body.ids, body.query):
            if body.action == "add":
                if body.status == "unsubscribed":
                    continue
                subscribe(subscriber, lists, preconfirm=body.status == "confirmed")
            elif body.action == "remove":
                Subscription.objects.filter(subscriber=subscriber, mailing_list__in=lists).delete()
            else:
                subscriber_unsubscribe(subscriber=subscriber, lists=lists)
    return {"data": True}


@router.put("/subscribers/blocklist")
def blocklist_many(request: ApiRequest, body: Ids) -> dict[str, Any]:
    require(request.auth, "subscribers.change_subscriber", "blocklist subscribers")
    subscriber_blocklist(subscribers=chosen(request.auth, body.ids, body.query))
    return {"data": True}


@router.put("/subscribers/{int:subscriber_id}")
def update_subscriber(
    request: ApiRequest, subscriber_id: int, body: SubscriberChange
) -> dict[str, Any]:
    user = request.auth
    require(user, "subscribers.change_subscriber", "change subscribers")
    subscriber = get_visible(user, subscriber_id)
    with transaction.atomic():
        if body.email is not None:
            email = clean_email(body.email)
            if Subscriber.objects.filter(email=email).exclude(pk=subscriber.pk).exists():
                raise HttpError(409, "E-mail already exists.")
            subscriber.email = email
        if body.name is not None:
            subscriber.name = clean_name(body.name)
        if body.attribs is not None:
            subscriber.attributes = body.attribs
        blocklisting = (
            body.status == Subscriber.Status.BLOCKLISTED
            and subscriber.status != Subscriber.Status.BLOCKLISTED
        )
        if body.status == Subscriber.Status.ENABLED:
            subscriber.status = Subscriber.Status.ENABLED
        subscriber.save()
        if blocklisting:
            subscriber_blocklist(subscribers=[subscriber])
        if body.lists is not None or body.list_uuids is not None:
            lists = target_lists(user, body.lists or [], body.list_uuids or [])
            # The lists given are the subscriber's lists, of those this user may use.
            leaving = access.lists_for(user).exclude(pk__in=[m.pk for m in lists])
            Subscription.objects.filter(subscriber=subscriber, mailing_list__in=leaving).delete()
            subscribe(subscriber, lists, preconfirm=body.preconfirm_subscriptions)
    return {"data": as_json(get_visible(user, subscriber_id))}


@router.put("/subscribers/{int:subscriber_id}/blocklist")
def blocklist_one(request: ApiRequest, subscriber_id: int) -> dict[str, Any]:
    require(request.auth, "subscribers.change_subscriber", "blocklist subscribers")
    subscriber_blocklist(subscribers=[get_visible(request.auth, subscriber_id)])
    return {"data": True}


@router.delete("/subscribers/{int:subscriber_id}")
def delete_subscriber(request: ApiRequest, subscriber_id: int) -> dict[str, Any]:
    require(request.auth, "subscribers.delete_subscriber", "delete subscribers")
    subscriber_erase(subscriber=get_visible(request.auth, subscriber_id))
    return {"data": True}


@router.delete("/subscribers")
def delete_many(request: ApiRequest, id: Query[list[int]]) -> dict[str, Any]:
    require(request.auth, "subscribers.delete_subscriber", "delete subscribers")
    for subscriber in visible(request.auth).filter(pk__in=id):
        subscriber_erase(subscriber=subscriber)
    return {"data": True}


@router.get("/subscribers/{int:subscriber_id}/export")
def export_subscriber(request: ApiRequest, subscriber_id: int) -> HttpResponse:
    require(request.auth, "subscribers.view_subscriber", "export subscribers' data")
    subscriber = get_visible(request.auth, subscriber_id)
    audit.record(subscriber, "exported their data (JSON, API)")
    response = HttpResponse(
        json.dumps(subscriber_export(subscriber=subscriber), ensure_ascii=False),
        content_type="application/json",
    )
    response["Content-Disposition"] = 'attachment; filename="data.json"'
    response["Cache-Control"] = "no-store"
    return response
