"""/api/tx: transactional messages in listmonk's shape (a `tx` template, one or many
recipients by address or id, `data`, `headers`, `from_email`, `content_type`, attachments as
multipart), and beyond it: an `Idempotency-Key` header, `send_at`, and `GET /api/tx/{id}`
with each message's state (queued, sending, sent, failed), reply and Message-ID.

The answer keeps listmonk's `{"data": true}` and adds `messages`: the id and state of each
message, so that a client written for listmonk reads it unchanged."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from email_validator import EmailNotValidError
from ninja import Field, Router, Schema
from ninja.errors import HttpError
from pydantic import ValidationError as SchemaError

from api.envelope import ApiRequest, require, rfc3339
from campaigns.listmonk_syntax import translate
from campaigns.models import Template
from campaigns.rendering import TemplateError
from mailer import tx
from mailer.message import HeaderInjectionError, format_sender
from mailer.tx_models import TxMessage
from subscribers import access
from subscribers.addresses import normalise_email, sender_problem
from subscribers.models import Subscriber

router = Router(tags=["Transactional"])

# What one request may attach, in all.
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_RECIPIENTS = 100


class TxRequest(Schema):
    subscriber_email: str | None = None
    subscriber_id: int | None = None
    subscriber_emails: list[str] = Field(default_factory=list)
    subscriber_ids: list[int] = Field(default_factory=list)
    # default: recipients must be subscribers; external: any address; fallback: either.
    subscriber_mode: Literal["default", "fallback", "external"] = "default"
    template_id: int | None = None
    template_name: str | None = None
    from_email: str = ""
    subject: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    headers: list[dict[str, str]] = Field(default_factory=list)
    messenger: str = "email"
    content_type: Literal["html", "markdown", "plain"] = "html"
    send_at: datetime | None = None


def as_json(message: TxMessage) -> dict[str, Any]:
    return {
        "id": message.pk,
        "status": message.status,
        "to": message.to_email,
        "subscriber_id": message.subscriber_id,
        "template_id": message.template_id,
        "subject": message.subject,
        "message_id": message.message_id,
        "reply": message.reply,
        "attempts": message.attempts,
        "send_at": rfc3339(message.send_at),
        "created_at": rfc3339(message.created_at),
        "sent_at": rfc3339(message.sent_at),
    }


def parsed(request: ApiRequest) -> tuple[TxRequest, bytes, list[tx.Attachment]]:
    """The request's fields (JSON, or multipart with the JSON in `data`), its raw JSON and
    its attachments."""
    attachments: list[tx.Attachment] = []
    if request.content_type == "multipart/form-data":
        raw = request.POST.get("data", "{}").encode()
        total = 0
        for upload in request.FILES.getlist("file"):
            total += upload.size or 0
            if total > MAX_ATTACHMENT_BYTES:
                raise HttpError(
                    413,
                    f"The attachments are over {MAX_ATTACHMENT_BYTES // 1024 // 1024} MB in "
                    "all; link to large files instead.",
                )
            attachments.append(
                tx.Attachment(
                    upload.name or "attachment",
                    upload.content_type or "application/octet-stream",
                    upload.read(),
                )
            )
    else:
        raw = request.body
    try:
        fields = json.loads(raw or b"{}")
        body = TxRequest.model_validate(fields)
    except json.JSONDecodeError as error:
        raise HttpError(400, f"The request is not JSON: {error}.") from error
    except SchemaError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()
        )
        raise HttpError(400, f"Invalid request: {problems}.") from error
    digest = hashlib.sha256(raw + b"".join(a.content for a in attachments)).hexdigest()
    return body, digest.encode(), attachments


def template_of(body: TxRequest) -> Template:
    rows = Template.objects.filter(kind=Template.Kind.TX)
    if body.template_id is not None:
        template = rows.filter(pk=body.template_id).first()
    elif body.template_name:
        template = rows.filter(name=body.template_name).first()
    else:
        raise HttpError(400, "Name the transactional template: template_id or template_name.")
    if template is None:
        raise HttpError(404, "No transactional template with that id or name (type `tx`).")
    return template


def recipients(user: Any, body: TxRequest) -> list[tuple[str, Subscriber | None]]:
    """(address, subscriber or None) for each recipient, in the request's order."""
    emails = [e for e in [body.subscriber_email, *body.subscriber_emails] if e]
    ids = [i for i in [body.subscriber_id, *body.subscriber_ids] if i is not None]
    if not emails and not ids:
        raise HttpError(400, "Give a recipient: subscriber_email(s) or subscriber_id(s).")
    if len(emails) + len(ids) > MAX_RECIPIENTS:
        raise HttpError(400, f"At most {MAX_RECIPIENTS} recipients per request.")
    # A list-scoped API user reaches only the subscribers of its lists.
    visible = access.scope(user, Subscriber.objects.all(), "mailing_lists")
    found: list[tuple[str, Subscriber | None]] = []
    by_id = {s.pk: s for s in visible.filter(pk__in=ids)}
    for subscriber_id in ids:
        if subscriber_id not in by_id:
            raise HttpError(404, f"Subscriber {subscriber_id} not found.")
        found.append((by_id[subscriber_id].email, by_id[subscriber_id]))
    normalised = []
    for email in emails:
        try:
            normalised.append(normalise_email(email))
        except EmailNotValidError as error:
            raise HttpError(400, f"{email!r} is not an e-mail address: {error}") from error
    by_email = {s.email: s for s in visible.filter(email__in=normalised)}
    for address in normalised:
        subscriber = by_email.get(address)
        if subscriber is None and body.subscriber_mode == "default":
            raise HttpError(
                404,
                f"No subscriber {address}; send with subscriber_mode external (any address) "
                "or fallback (a subscriber's data when there is one).",
            )
        if subscriber is not None and body.subscriber_mode == "external":
            subscriber = None  # external mode uses no subscriber's data
        found.append((address, subscriber))
    return found


@router.post("/tx", openapi_extra={"requestBody": {"content": {"application/json": {
    "schema": TxRequest.model_json_schema()}}}})  # fmt: skip
def send_tx(request: ApiRequest) -> HttpResponse:
    user = request.auth
    require(user, "mailer.add_txmessage", "send transactional messages")
    body, digest, attachments = parsed(request)
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 255:
        raise HttpError(400, "The Idempotency-Key is at most 255 characters.")
    if body.messenger != "email":
        raise HttpError(400, f"Unknown messenger {body.messenger!r}; this server has `email`.")
    if body.from_email and (problem := sender_problem(body.from_email)):
        raise HttpError(400, problem)
    template = template_of(body)
    attachments = [*tx.template_attachments(template), *attachments]
    try:
        if body.subject is not None:
            template.subject = translate(body.subject)  # listmonk's syntax, as a template's
        sender = format_sender(body.from_email or settings.DEFAULT_FROM_EMAIL)
        headers = [(name, value) for pair in body.headers for name, value in pair.items()]
        outgoing = []
        for address, subscriber in recipients(user, body):
            content = tx.render(
                template,
                email=address,
                subscriber=subscriber,
                data=body.data,
                format="plain" if body.content_type == "plain" else body.content_type,
            )
            message = tx.compose(
                sender=sender,
                to=address,
                content=content,
                headers=headers,
                attachments=attachments,
            )
            outgoing.append(
                replace(
                    message,
                    subscriber_id=subscriber.pk if subscriber else None,
                    template_id=template.pk,
                )
            )
    except TemplateError as error:
        raise HttpError(400, f"The template does not render: {error}") from error
    except (ValueError, HeaderInjectionError) as error:
        raise HttpError(400, str(error)) from error
    send_at = body.send_at
    if send_at is not None and timezone.is_naive(send_at):
        raise HttpError(400, "send_at needs a time zone, e.g. 2026-12-24T09:00:00Z.")
    try:
        rows, replayed = tx.record(
            outgoing, user_id=user.pk, key=key or None, digest=digest.decode(), send_at=send_at
        )
    except tx.IdempotencyConflict as error:
        raise HttpError(
            422, f"The Idempotency-Key {error} was used for a different request in the last 24 h."
        ) from error
    response = JsonResponse({"data": True, "messages": [as_json(row) for row in rows]})
    if replayed:
        response["Idempotent-Replayed"] = "true"
    if len(rows) == 1:
        response["Location"] = f"/api/tx/{rows[0].pk}"
    return response


@router.get("/tx/{int:message_id}")
def get_tx(request: ApiRequest, message_id: int) -> dict[str, Any]:
    user = request.auth
    require(user, "mailer.view_txmessage", "read transactional messages")
    rows = TxMessage.objects.all()
    if not user.has_perm("mailer.change_txmessage"):
        rows = rows.filter(created_by=user)  # an application sees its own messages
    message = rows.filter(pk=message_id).first()
    if message is None:
        raise HttpError(404, f"Transactional message {message_id} not found.")
    return {"data": as_json(message)}
