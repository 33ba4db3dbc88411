"""/api/campaigns: query, get, create, update, delete, change status, send a test, preview
and running stats (listmonk's shapes). A restricted API user sees the campaigns whose lists
are all its own, and starts only those to lists it may send to."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpResponse
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from api.envelope import ApiRequest, checked_save, listing, one, require, rfc3339
from campaigns import services
from campaigns.listmonk_syntax import translate
from campaigns.models import Campaign, Click, Open, Template
from campaigns.rendering import TemplateError
from campaigns.sanitising import sanitise
from campaigns.views import VIEW_POLICY, render_for
from mailer import counters
from mailer.models import Bounce
from subscribers import access
from subscribers.models import MailingList

router = Router(tags=["Campaigns"])

ORDER = {
    "id": "id",
    "name": "name",
    "status": "status",
    "created_at": "created_at",
    "updated_at": "updated_at",
}
# listmonk's content types and this project's formats (its rich text is HTML).
FORMATS = {
    "richtext": Campaign.Format.HTML,
    "html": Campaign.Format.HTML,
    "markdown": Campaign.Format.MARKDOWN,
    "plain": Campaign.Format.PLAIN,
}
EDITABLE = (Campaign.Status.DRAFT, Campaign.Status.PAUSED)
# What may change at any time: whether and how a campaign shows in the public archive.
ARCHIVE_FIELDS = {"archive", "archive_slug", "archive_meta"}
ContentType = Literal["richtext", "html", "markdown", "plain"]


class NewCampaign(Schema):
    name: str = Field(min_length=1, max_length=200)
    subject: str = Field(min_length=1, max_length=998)
    lists: list[int]
    from_email: str = ""
    type: Literal["regular"] = "regular"
    content_type: ContentType = "richtext"
    body: str = ""
    altbody: str | None = None
    send_at: datetime | None = None
    template_id: int | None = None
    tags: list[str] = []
    messenger: Literal["email"] = "email"
    headers: list[dict[str, str]] = []
    archive: bool = False
    archive_slug: str | None = None
    archive_meta: dict[str, Any] = {}


class CampaignChange(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    subject: str | None = Field(None, min_length=1, max_length=998)
    lists: list[int] | None = None
    from_email: str | None = None
    content_type: ContentType | None = None
    body: str | None = None
    send_at: datetime | None = None
    template_id: int | None = None
    tags: list[str] | None = None
    archive: bool | None = None
    archive_slug: str | None = None
    archive_meta: dict[str, Any] | None = None


class CampaignFilters(Schema):
    query: str | None = None
    status: list[str] = []
    order_by: str | None = None
    order: str | None = None
    page: int | None = None
    per_page: str | None = None


class StatusChange(Schema):
    status: Literal["scheduled", "running", "paused", "cancelled"]


class TestSend(Schema):
    subscribers: list[str]


def visible(user: Any) -> QuerySet[Campaign]:
    rows = Campaign.objects.select_related("template").prefetch_related("lists")
    return access.scope(user, rows, "lists", every=True)


def get_visible(user: Any, campaign_id: int) -> Campaign:
    return one(visible(user), campaign_id, "Campaign")


def as_json(campaign: Campaign) -> dict[str, Any]:
    content_type = "richtext" if campaign.format == Campaign.Format.HTML else campaign.format
    return {
        "id": campaign.pk,
        "uuid": str(campaign.uuid),
        "name": campaign.name,
        "subject": campaign.subject,
        "from_email": campaign.from_email,
        "type": "regular",
        "content_type": content_type,
        "body": campaign.body,
        "altbody": None,
        "messenger": "email",
        "headers": [],
        "tags": campaign.tags,
        "template_id": campaign.template_id,
        "archive": campaign.archive,
        "archive_slug": campaign.archive_slug,
        "archive_meta": campaign.archive_meta,
        "status": campaign.status,
        "lists": [{"id": m.pk, "name": m.name} for m in campaign.lists.all()],
        "to_send": campaign.total,
        "sent": campaign.sent,
        "views": Open.objects.filter(campaign=campaign).count(),
        "clicks": Click.objects.filter(campaign=campaign).count(),
        "bounces": Bounce.objects.filter(campaign_id=campaign.pk).count(),
        "send_at": rfc3339(campaign.send_at),
        "started_at": rfc3339(campaign.started_at),
        "created_at": rfc3339(campaign.created_at),
        "updated_at": rfc3339(campaign.updated_at),
    }


def usable_lists(user: Any, ids: list[int]) -> list[MailingList]:
    lists = list(access.lists_for(user).filter(pk__in=ids))
    missing = sorted(set(ids) - {m.pk for m in lists})
    if missing:
        raise HttpError(404, f"List {', '.join(map(str, missing))} not found.")
    if not lists:
        raise HttpError(400, "A campaign needs at least one list in `lists`.")
    return lists


def template_of(template_id: int | None) -> Template | None:
    if template_id is None:
        return None
    template = Template.objects.filter(pk=template_id).first()
    if template is None:
        raise HttpError(404, f"Template {template_id} not found.")
    if template.kind != Template.Kind.CAMPAIGN:
        raise HttpError(
            400, f"Template {template_id} is a transactional template, not a campaign layout."
        )
    return template


def listmonk(source: str) -> str:
    """A subject or body that may use listmonk's template language, in this project's."""
    try:
        return translate(source)
    except TemplateError as error:
        raise HttpError(400, str(error)) from error


def save(campaign: Campaign, lists: list[MailingList] | None) -> None:
    """Check and save the campaign (a body that does not compile is refused here)."""
    with transaction.atomic():
        checked_save(campaign, conflict="A campaign with this id exists.", exclude=("uuid",))
        if lists is not None:
            campaign.lists.set(lists)


@router.get("/campaigns")
def query_campaigns(request: ApiRequest, filters: Query[CampaignFilters]) -> dict[str, Any]:
    require(request.auth, "campaigns.view_campaign", "read campaigns")
    rows = visible(request.auth)
    if filters.query:
        rows = rows.filter(name__icontains=filters.query)
    if filters.status:
        rows = rows.filter(status__in=filters.status)
    return listing(rows, filters, ORDER, as_json, by="created_at", direction="desc")


@router.get("/campaigns/running/stats")
def running_stats(request: ApiRequest, campaign_id: Query[list[int]]) -> dict[str, Any]:
    require(request.auth, "campaigns.view_campaign", "read campaigns")
    rows = visible(request.auth).filter(pk__in=campaign_id)
    return {
        "data": [
            {
                "id": c.pk,
                "status": c.status,
                "to_send": c.total,
                "sent": c.sent,
                "started_at": rfc3339(c.started_at),
                "updated_at": rfc3339(c.updated_at),
                "rate": round(counters.rate(c.pk), 1),
                "net_rate": round(counters.rate(c.pk), 1),
            }
            for c in rows
        ]
    }


@router.get("/campaigns/{int:campaign_id}")
def get_campaign(request: ApiRequest, campaign_id: int) -> dict[str, Any]:
    require(request.auth, "campaigns.view_campaign", "read campaigns")
    return {"data": as_json(get_visible(request.auth, campaign_id))}


@router.post("/campaigns")
def create_campaign(request: ApiRequest, body: NewCampaign) -> dict[str, Any]:
    require(request.auth, "campaigns.add_campaign", "create campaigns")
    if body.headers:
        raise HttpError(400, "Custom headers on campaigns are not supported; leave `headers` out.")
    if body.altbody:
        raise HttpError(
            400, "`altbody` is not supported: the plain-text part is made from the body."
        )
    campaign = Campaign(
        name=body.name,
        subject=listmonk(body.subject),
        from_email=body.from_email,
        format=FORMATS[body.content_type],
        body=listmonk(body.body),
        send_at=body.send_at,
        template=template_of(body.template_id)
        or Template.objects.filter(is_default=True, kind="campaign").first(),
        tags=body.tags,
        archive=body.archive,
        archive_slug=body.archive_slug or None,
        archive_meta=body.archive_meta,
    )
    save(campaign, usable_lists(request.auth, body.lists))
    return {"data": as_json(get_visible(request.auth, campaign.pk))}


@router.put("/campaigns/{int:campaign_id}")
def update_campaign(request: ApiRequest, campaign_id: int, body: CampaignChange) -> dict[str, Any]:
    require(request.auth, "campaigns.change_campaign", "change campaigns")
    campaign = get_visible(request.auth, campaign_id)
    archive_only = set(body.model_dump(exclude_none=True)) <= ARCHIVE_FIELDS
    if campaign.status not in EDITABLE and not archive_only:
        raise HttpError(
            400,
            f"Campaign {campaign_id} is {campaign.status}: every recipient gets what it said "
            "when it started. Pause it to edit it.",
        )
    for field in ("name", "from_email", "send_at", "tags", "archive", "archive_meta"):
        if (value := getattr(body, field)) is not None:
            setattr(campaign, field, value)
    if body.archive_slug is not None:
        campaign.archive_slug = body.archive_slug or None
    if body.subject is not None:
        campaign.subject = listmonk(body.subject)
    if body.body is not None:
        campaign.body = listmonk(body.body)
    if body.content_type is not None:
        campaign.format = FORMATS[body.content_type]
    if body.template_id is not None:
        campaign.template = template_of(body.template_id)
    lists = usable_lists(request.auth, body.lists) if body.lists is not None else None
    save(campaign, lists)
    if not archive_only:
        services.campaign_content_edited(campaigns=[campaign])
    return {"data": as_json(get_visible(request.auth, campaign_id))}


@router.delete("/campaigns/{int:campaign_id}")
def delete_campaign(request: ApiRequest, campaign_id: int) -> dict[str, Any]:
    require(request.auth, "campaigns.delete_campaign", "delete campaigns")
    campaign = get_visible(request.auth, campaign_id)
    if campaign.status in (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING):
        raise HttpError(400, f"Campaign {campaign_id} is {campaign.status}: cancel it first.")
    campaign.delete()
    return {"data": True}


@router.put("/campaigns/{int:campaign_id}/status")
def change_status(request: ApiRequest, campaign_id: int, body: StatusChange) -> dict[str, Any]:
    user = request.auth
    require(user, "campaigns.send_campaign", "start, pause or cancel campaigns")
    campaign = get_visible(user, campaign_id)
    try:
        if body.status in ("scheduled", "running"):
            if refused := access.refused_lists(user, campaign.lists.all()):
                names = ", ".join(m.name for m in refused)
                raise HttpError(403, f"This API user may not send to the list(s) {names}.")
            if body.status == "scheduled" and campaign.send_at is None:
                raise HttpError(400, "Set `send_at` on the campaign to schedule it.")
            if campaign.status == Campaign.Status.PAUSED:
                services.campaign_resume(campaign=campaign)
            else:
                services.campaign_start(campaign=campaign)
        elif body.status == "paused":
            services.campaign_pause(campaign=campaign)
        else:
            services.campaign_cancel(campaign=campaign)
    except services.CampaignError as error:
        raise HttpError(400, str(error)) from error
    return {"data": as_json(get_visible(user, campaign_id))}


@router.post("/campaigns/{int:campaign_id}/test")
def send_test(request: ApiRequest, campaign_id: int, body: TestSend) -> dict[str, Any]:
    require(request.auth, "campaigns.change_campaign", "send test messages")
    campaign = get_visible(request.auth, campaign_id)
    try:
        services.campaign_send_test(campaign=campaign, to=body.subscribers)
    except services.CampaignError as error:
        raise HttpError(400, str(error)) from error
    return {"data": True}


@router.get("/campaigns/{int:campaign_id}/preview")
def preview(request: ApiRequest, campaign_id: int) -> HttpResponse:
    require(request.auth, "campaigns.view_campaign", "preview campaigns")
    campaign = get_visible(request.auth, campaign_id)
    try:
        _, text, html = render_for(campaign, None)
    except TemplateError as error:
        raise HttpError(400, f"The campaign does not render: {error}") from error
    if html is None:
        response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    else:
        # Whoever may edit a campaign writes this HTML: served as the view-in-browser page
        # is, sanitised and in a sandbox that runs nothing.
        response = HttpResponse(sanitise(html))
    response["Content-Security-Policy"] = VIEW_POLICY
    return response
