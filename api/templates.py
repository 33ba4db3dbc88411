"""/api/templates: query, get, create, update, delete, preview and set the default layout
(listmonk's shapes). A body in listmonk's template language is translated on save
(campaigns.listmonk_syntax); what cannot be translated is refused, naming it."""

from __future__ import annotations

from typing import Any, Literal

from django.db import transaction
from django.db.models import ProtectedError
from django.http import HttpResponse
from ninja import Field, Router, Schema
from ninja.errors import HttpError

from api.envelope import ApiRequest, checked_save, one, require, rfc3339
from campaigns.listmonk_syntax import translate
from campaigns.models import Campaign, Template
from campaigns.rendering import TemplateError, sample_context
from campaigns.sanitising import sanitise
from campaigns.views import VIEW_POLICY

router = Router(tags=["Templates"])

# A layout shown in a preview needs a body to hold.
SAMPLE_BODY = "<p>This is the campaign's body, as a subscriber would see it.</p>"


class NewTemplate(Schema):
    name: str = Field(min_length=1, max_length=200)
    type: Literal["campaign", "tx"] = "campaign"
    subject: str = Field("", max_length=500)
    body: str


class TemplateChange(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    type: Literal["campaign", "tx"] | None = None
    subject: str | None = Field(None, max_length=500)
    body: str | None = None


def as_json(template: Template, *, body: bool = True) -> dict[str, Any]:
    return {
        "id": template.pk,
        "name": template.name,
        "type": template.kind,
        "subject": template.subject,
        "body": template.html if body else "",
        "is_default": template.is_default,
        "created_at": rfc3339(template.created_at),
        "updated_at": rfc3339(template.updated_at),
    }


def found(template_id: int) -> Template:
    return one(Template.objects.all(), template_id, "Template")


def layout(source: str) -> str:
    try:
        return translate(source)
    except TemplateError as error:
        raise HttpError(400, str(error)) from error


def save(template: Template) -> None:
    """Checked as the admin checks it (a tx template's subject and body compile, a layout has
    its {{ content }}), then saved."""
    checked_save(template, conflict=f"A template named {template.name!r} exists already.")


@router.get("/templates")
def query_templates(request: ApiRequest, no_body: bool = False) -> dict[str, Any]:
    require(request.auth, "campaigns.view_template", "read templates")
    return {"data": [as_json(t, body=not no_body) for t in Template.objects.order_by("pk")]}


@router.get("/templates/{int:template_id}")
def get_template(request: ApiRequest, template_id: int) -> dict[str, Any]:
    require(request.auth, "campaigns.view_template", "read templates")
    return {"data": as_json(found(template_id))}


@router.post("/templates")
def create_template(request: ApiRequest, body: NewTemplate) -> dict[str, Any]:
    require(request.auth, "campaigns.add_template", "create templates")
    template = Template(
        name=body.name, kind=body.type, subject=layout(body.subject), html=layout(body.body)
    )
    save(template)
    return {"data": as_json(template)}


@router.put("/templates/{int:template_id}")
def update_template(request: ApiRequest, template_id: int, body: TemplateChange) -> dict[str, Any]:
    require(request.auth, "campaigns.change_template", "change templates")
    template = found(template_id)
    if template.campaign_set.filter(status__in=["scheduled", "running"]).exists():
        raise HttpError(
            400, f"Template {template_id} is the layout of a sending campaign; pause it first."
        )
    if body.type is not None and body.type != template.kind:
        if template.campaign_set.exists():
            raise HttpError(400, f"Template {template_id} is the layout of campaigns.")
        template.kind = body.type
    if body.name is not None:
        template.name = body.name
    if body.subject is not None:
        template.subject = layout(body.subject)
    if body.body is not None:
        template.html = layout(body.body)
    save(template)
    return {"data": as_json(template)}


@router.delete("/templates/{int:template_id}")
def delete_template(request: ApiRequest, template_id: int) -> dict[str, Any]:
    require(request.auth, "campaigns.delete_template", "delete templates")
    template = found(template_id)
    if template.is_default:
        raise HttpError(400, "The default template cannot be deleted; make another default.")
    try:
        template.delete()
    except ProtectedError as error:
        raise HttpError(400, f"Template {template_id} is the layout of campaigns.") from error
    return {"data": True}


@router.put("/templates/{int:template_id}/default")
def make_default(request: ApiRequest, template_id: int) -> dict[str, Any]:
    require(request.auth, "campaigns.change_template", "change templates")
    template = found(template_id)
    if template.kind != Template.Kind.CAMPAIGN:
        raise HttpError(400, "Only a campaign template can be the default layout.")
    with transaction.atomic():
        Template.objects.filter(is_default=True).update(is_default=False)
        Template.objects.filter(pk=template.pk).update(is_default=True)
    template.refresh_from_db()
    return {"data": as_json(template)}


@router.get("/templates/{int:template_id}/preview")
def preview(request: ApiRequest, template_id: int) -> HttpResponse:
    require(request.auth, "campaigns.view_template", "preview templates")
    template = found(template_id)
    if template.kind == Template.Kind.TX:
        try:
            html = template.content().render(sample_context(tx=True)).html or ""
        except TemplateError as error:
            raise HttpError(400, f"The template does not render: {error}") from error
        return sanitised(html)
    sample = Campaign(name="Preview", subject="Preview", body=SAMPLE_BODY, template=template)
    try:
        html = sample.content(tracking=False).render(sample_context()).html or ""
    except TemplateError as error:
        raise HttpError(400, f"The template does not render: {error}") from error
    return sanitised(html)


def sanitised(html: str) -> HttpResponse:
    response = HttpResponse(sanitise(html))
    response["Content-Security-Policy"] = VIEW_POLICY
    return response
