"""/api/sequences and /api/events: sequences (query, get with each step's figures, create
with steps, activate, pause and resume, add subscribers by hand) and the events that start
them. listmonk has no automations; the shapes follow its envelope (`{"data": …}`), paging
and errors. A restricted API user sees the sequences whose lists are all its own, and
records events only for subscribers of its lists."""

from __future__ import annotations

from datetime import time
from typing import Any, Literal

from django.db import transaction
from django.db.models import QuerySet
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from api import subscribers as subscriber_api
from api.envelope import ApiRequest, checked_save, listing, one, require, rfc3339
from automations import reports, services
from automations.models import Sequence, Step
from subscribers import access
from subscribers.addresses import lookup_form
from subscribers.models import MailingList, SubscriberImport

router = Router(tags=["Sequences"])

ORDER = {"id": "id", "name": "name", "status": "status", "created_at": "created_at"}


class Filters(Schema):
    status: str | None = None
    tag: str | None = None
    order_by: str | None = None
    order: str | None = None
    page: int | None = None
    per_page: str | None = None


def visible(user: Any) -> QuerySet[Sequence]:
    rows = Sequence.objects.prefetch_related("lists")
    return access.scope(user, rows, "lists", every=True)


def step_json(row: dict[str, Any]) -> dict[str, Any]:
    step: Step = row["step"]
    return {
        "position": step.position,
        "kind": step.kind,
        "description": step.describe(),
        "campaign_id": step.campaign_id,
        "stats": {k: row[k] for k in ("entered", "waiting", "sent", "opened", "clicked", "exited")},
    }


def as_json(sequence: Sequence, *, steps: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": sequence.pk,
        "name": sequence.name,
        "status": sequence.status,
        "tags": sequence.tags,
        "lists": [{"id": m.pk, "name": m.name} for m in sequence.lists.all()],
        "trigger": {
            "type": sequence.trigger,
            "list_id": sequence.trigger_list_id,
            "event": sequence.trigger_event,
            "date_attribute": sequence.date_attribute,
            "date_offset_days": sequence.date_offset_days,
            "yearly": sequence.date_yearly,
        },
        "timezone": sequence.timezone,
        "weight": sequence.weight,
        "rate_limit": sequence.rate_limit,
        "version": sequence.version,
        "subscribers": reports.summary(sequence),
        "created_at": rfc3339(sequence.created_at),
    }
    if steps:
        data["versions"] = [
            {"version": v["version"], "steps": [step_json(r) for r in v["steps"]]}
            for v in reports.per_step(sequence)
        ]
    return data


@router.get("/sequences")
def query_sequences(request: ApiRequest, filters: Query[Filters]) -> dict[str, Any]:
    require(request.auth, "automations.view_sequence", "read sequences")
    rows = visible(request.auth)
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.tag:
        rows = rows.filter(tags__contains=[filters.tag])
    return listing(rows, filters, ORDER, as_json)


@router.get("/sequences/{int:sequence_id}")
def get_sequence(request: ApiRequest, sequence_id: int) -> dict[str, Any]:
    require(request.auth, "automations.view_sequence", "read sequences")
    return {"data": as_json(one(visible(request.auth), sequence_id, "Sequence"), steps=True)}


class NewStep(Schema):
    kind: Literal["wait", "send", "branch", "add", "remove", "webhook"]
    wait_seconds: int | None = Field(None, ge=0)
    wait_weekday: int | None = Field(None, ge=0, le=6)
    wait_time: time | None = None
    subject: str = ""
    body: str = ""
    test: Literal["", "opened", "clicked", "attribute", "on_list"] = ""
    attribute: str = ""
    operator: str = "equals"
    value: str = ""
    list_id: int | None = None
    go_to: int | None = None
    event: str = ""


class NewSequence(Schema):
    name: str = Field(min_length=1, max_length=200)
    lists: list[int] = Field(min_length=1)
    trigger: Literal["list", "event", "date", "manual"] = "list"
    trigger_list_id: int | None = None
    trigger_event: str = ""
    date_attribute: str = ""
    date_offset_days: int = 0
    yearly: bool = False
    timezone: str = "UTC"
    weight: int = Field(1, ge=1)
    rate_limit: int | None = Field(None, ge=1)
    tags: list[str] = []
    steps: list[NewStep] = Field(min_length=1)


def _lists(user: Any, ids: list[int]) -> list[MailingList]:
    found = list(access.lists_for(user).filter(pk__in=ids))
    missing = sorted(set(ids) - {m.pk for m in found})
    if missing:
        raise HttpError(400, f"Unknown lists {missing}; GET /api/lists shows the ids.")
    return found


@router.post("/sequences")
def create_sequence(request: ApiRequest, body: NewSequence) -> dict[str, Any]:
    require(request.auth, "automations.add_sequence", "create sequences")
    lists = _lists(request.auth, body.lists)
    trigger_list = _lists(request.auth, [body.trigger_list_id])[0] if body.trigger_list_id else None
    with transaction.atomic():
        sequence = Sequence(
            name=body.name,
            trigger=body.trigger,
            trigger_list=trigger_list,
            trigger_event=body.trigger_event,
            date_attribute=body.date_attribute,
            date_offset_days=body.date_offset_days,
            date_yearly=body.yearly,
            timezone=body.timezone,
            weight=body.weight,
            rate_limit=body.rate_limit,
            tags=body.tags,
        )
        checked_save(sequence, conflict=f"A sequence named {body.name!r} exists already.")
        sequence.lists.set(lists)
        for position, spec in enumerate(body.steps, start=1):
            _add_step(request.auth, sequence, position, spec)
    return {"data": as_json(sequence, steps=True)}


def _add_step(user: Any, sequence: Sequence, position: int, spec: NewStep) -> None:
    fields = spec.dict(exclude={"subject", "body", "list_id"})
    step = Step(sequence=sequence, version=sequence.version, position=position, **fields)
    if spec.list_id is not None:
        step.mailing_list = _lists(user, [spec.list_id])[0]
    if step.kind == Step.Kind.SEND:
        if not spec.subject or not spec.body:
            raise HttpError(400, f"Step {position} sends a message: give its subject and body.")
        step.campaign = services.step_message(
            sequence, position=position, subject=spec.subject, body=spec.body
        )
    checked_save(step, conflict=f"Two steps at position {position}.", exclude=("campaign",))


class StatusChange(Schema):
    status: Literal["active", "paused"]
    move_in_flight: bool = False


@router.put("/sequences/{int:sequence_id}/status")
def change_status(request: ApiRequest, sequence_id: int, body: StatusChange) -> dict[str, Any]:
    require(request.auth, "automations.run_sequence", "activate or pause sequences")
    sequence = one(visible(request.auth), sequence_id, "Sequence")
    try:
        if body.status == "active":
            if refused := access.refused_lists(request.auth, sequence.lists.all()):
                names = ", ".join(m.name for m in refused)
                raise services.SequenceError(f"This API user may not send to {names}.")
            sequence = services.sequence_activate(
                sequence=sequence, move_in_flight=body.move_in_flight
            )
        else:
            sequence = services.sequence_pause(sequence=sequence)
    except services.SequenceError as error:
        raise HttpError(409, str(error)) from error
    return {"data": as_json(sequence)}


class People(Schema):
    ids: list[int] = []
    emails: list[str] = []
    import_id: int | None = None


@router.post("/sequences/{int:sequence_id}/subscribers")
def add_subscribers(request: ApiRequest, sequence_id: int, body: People) -> dict[str, Any]:
    require(request.auth, "automations.run_sequence", "add subscribers to sequences")
    sequence = one(visible(request.auth), sequence_id, "Sequence")
    known = subscriber_api.visible(request.auth)
    emails = [lookup_form(e) for e in body.emails]
    ids = set(known.filter(pk__in=body.ids).values_list("pk", flat=True))
    ids |= set(known.filter(email__in=emails).values_list("pk", flat=True))
    try:
        entered = services.sequence_enroll(sequence=sequence, subscriber_ids=sorted(ids))
        if body.import_id is not None:
            imports = access.scope(request.auth, SubscriberImport.objects.all(), "mailing_list")
            job = one(imports, body.import_id, "Import")
            entered += services.sequence_enroll_import(sequence=sequence, job=job)
    except services.SequenceError as error:
        raise HttpError(409, str(error)) from error
    return {"data": {"entered": entered, "found": len(ids)}}


class Event(Schema):
    event: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    subscriber_id: int | None = None
    email: str | None = None
    data: dict[str, Any] = {}


@router.post("/events")
def record_event(request: ApiRequest, body: Event) -> dict[str, Any]:
    """Something happened to a subscriber (a purchase, a trial ending): the sequences this
    event starts take them in."""
    require(request.auth, "automations.record_event", "record events")
    known = subscriber_api.visible(request.auth)
    if body.subscriber_id is not None:
        subscriber = known.filter(pk=body.subscriber_id).first()
    elif body.email:
        subscriber = known.filter(email=lookup_form(body.email)).first()
    else:
        raise HttpError(400, "Name the subscriber: give subscriber_id or email.")
    if subscriber is None:
        raise HttpError(404, "No such subscriber (or not on a list this API user may see).")
    with transaction.atomic():
        started = services.record_event(subscriber_id=subscriber.pk, event=body.event)
    return {"data": {"subscriber_id": subscriber.pk, "sequences": [s.pk for s in started]}}
