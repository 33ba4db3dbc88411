"""One-off messages that must not wait behind bulk sending: campaign test sends and opt-in
confirmations. They run on the `transactional` queue, which bulk workers never consume, and
go the way of every transactional message (mailer.tx): recorded, then sent at once within
the global and server limits, ahead of campaigns; retried by their row when the server
defers them. Also what a subscriber's own links ask for: their data, or a link to their
preferences, always to their own address."""

from __future__ import annotations

import json
import uuid
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, parseaddr

import structlog
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campaigns.content import prepared_content
from campaigns.models import Campaign
from mailer import tx
from mailer.compose import CampaignComposer
from mailer.message import build_message, encode_address, format_sender
from mailer.tx import Outgoing
from subscribers import languages, links
from subscribers.exports import subscriber_export
from subscribers.models import MailingList, Subscriber

log = structlog.get_logger(__name__)


def send_campaign_test(
    *, campaign_id: int, to: list[str], as_subscriber: str | None = None
) -> dict[str, str]:
    """Send the campaign to `to` as the subscriber `as_subscriber` (the one a preview showed)
    would see it; without one, as each address's own subscriber, or a sample one."""
    campaign = Campaign.objects.select_related("template").get(pk=campaign_id)
    composer = CampaignComposer(campaign, prepared_content(campaign))
    known = {s.email: s for s in Subscriber.objects.filter(email__in=to)}
    shown = Subscriber.objects.filter(email=as_subscriber).first() if as_subscriber else None
    replies: dict[str, str] = {}
    for address in to:
        subscriber = shown or known.get(address)
        data = composer.message(
            delivery_id=None,
            # A test's links name no subscriber: following them changes nothing.
            subscriber_id=None,
            email=address,
            name=subscriber.name if subscriber else "Test Recipient",
            attributes=subscriber.attributes if subscriber else {},
            subscriber_uuid=str(subscriber.uuid) if subscriber else "",
            subject_prefix="[Test] ",
        )
        replies[address] = _send_to(
            address,
            data,
            composer.envelope_from,
            "test",
            subject=f"[Test] {campaign.subject}",
            smtp_server_id=campaign.smtp_server_id,
        )
        log.info("test message sent", campaign_id=campaign.pk, to=address, reply=replies[address])
    return replies


def _site_sender() -> tuple[str, str, str]:
    """The From header, envelope sender and Message-ID domain of the site's own messages."""
    sender = format_sender(settings.DEFAULT_FROM_EMAIL)
    envelope_from = parseaddr(sender)[1]
    return sender, envelope_from, envelope_from.rpartition("@")[2] or "localhost"


def _send_to(
    address: str,
    data: bytes,
    envelope_from: str,
    what: str,
    *,
    subject: str,
    subscriber_id: int | None = None,
    smtp_server_id: int | None = None,
) -> str:
    """Record the message and send it now; a deferral is retried by its row (mailer.tx)."""
    message_id = next(
        (line.partition(b":")[2].strip().decode() for line in data.split(b"\r\n")
         if line.lower().startswith(b"message-id:")),
        "",
    )  # fmt: skip
    outgoing = Outgoing(
        to_email=address,
        envelope_from=envelope_from,
        subject=subject,
        message_id=message_id,
        data=data,
        subscriber_id=subscriber_id,
        smtp_server_id=smtp_server_id,
    )
    [row], _ = tx.record([outgoing], kind=what, enqueue=False)
    outcome = tx.deliver(row.pk)
    row.refresh_from_db()
    return row.reply or outcome


def send_optin_confirmation(*, subscriber_id: int, list_ids: list[int]) -> str:
    """The "please confirm" message of a double opt-in subscription; returns the reply."""
    subscriber = Subscriber.objects.get(pk=subscriber_id)
    lists = list(MailingList.objects.filter(pk__in=list_ids).order_by("name"))
    if not lists:
        return "nothing to confirm"
    confirm_url = links.site(f"/confirm/{links.confirm_token(subscriber.pk, list_ids)}/")
    names = ", ".join(mailing_list.name for mailing_list in lists)
    context = {"subscriber": subscriber, "names": names, "confirm_url": confirm_url}
    # In the language of the list the subscriber asked to join.
    with translation.override(languages.of_lists(lists)):
        text = render_to_string("subscribers/email/confirm.txt", context)
        html = render_to_string("subscribers/email/confirm.html", context)
        subject = _("Please confirm your subscription to %(lists)s") % {"lists": names}
    sender, envelope_from, domain = _site_sender()
    data = build_message(
        headers=[
            ("From", sender),
            # Whoever filled in the form typed the name: it stays out of this message, which
            # goes to an address that may not be theirs.
            ("To", encode_address("", subscriber.email)),
            ("Subject", subject),
            ("Date", formatdate(localtime=False)),
            ("Message-ID", f"<optin.{uuid.uuid4().hex}@{domain}>"),
        ],
        text=text,
        html=html,
        boundary=f"=_{uuid.uuid4().hex}",
    )
    reply = _send_to(
        subscriber.email,
        data,
        envelope_from,
        "confirmation",
        subject=subject,
        subscriber_id=subscriber.pk,
    )
    log.info("opt-in confirmation sent", subscriber_id=subscriber.pk, lists=list_ids, reply=reply)
    return reply


NOTICES = {
    "export": gettext_lazy("Your data"),
    "preferences_link": gettext_lazy("Your preferences"),
}


def send_subscriber_notice(*, subscriber_id: int, kind: str) -> str:
    """A message a subscriber's own links asked for, sent to their own address: everything
    stored about them (a JSON attachment), or a link to their preferences page."""
    if kind not in NOTICES:
        raise ValueError(f"unknown subscriber notice {kind!r}")
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        return "erased since it was asked for"
    sender, envelope_from, domain = _site_sender()
    language = languages.of_subscriber(subscriber)
    with translation.override(language):
        subject = str(NOTICES[kind])
        context = {
            "subscriber": subscriber,
            "preferences_url": links.preferences_url(subscriber.pk),
        }
        body = render_to_string(f"subscribers/email/{kind}.txt", context)
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = subscriber.email
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = f"<notice.{uuid.uuid4().hex}@{domain}>"
    message.set_content(body)
    if kind == "export":
        export = json.dumps(subscriber_export(subscriber=subscriber), indent=2)
        message.add_attachment(
            export.encode(), maintype="application", subtype="json", filename="my-data.json"
        )
    reply = _send_to(
        subscriber.email,
        message.as_bytes(),
        envelope_from,
        kind,
        subject=subject,
        subscriber_id=subscriber.pk,
    )
    log.info("subscriber notice sent", subscriber_id=subscriber.pk, kind=kind, reply=reply)
    return reply
