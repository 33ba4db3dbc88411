"""One-off messages that must not wait behind bulk sending: campaign test sends (and, later,
opt-in confirmations). They run on the `transactional` queue, which bulk workers never
consume, and use the campaign's SMTP server without the bulk rate limits or the ledger."""

from __future__ import annotations

import logging
import uuid
from email.utils import formatdate, parseaddr

from django.conf import settings

from campaigns.models import Campaign
from mailer.batch import prepared_content
from mailer.message import build_message, encode_address, format_sender
from mailer.smtp import Outcome, choose_server, pool
from subscribers.models import Subscriber

log = logging.getLogger(__name__)


def send_campaign_test(*, campaign_id: int, to: list[str]) -> dict[str, str]:
    """Send the campaign to `to` as the matching subscriber (or a sample one) would see it."""
    campaign = Campaign.objects.select_related("template").get(pk=campaign_id)
    content = prepared_content(campaign)
    sender_header = format_sender(campaign.from_email or settings.DEFAULT_FROM_EMAIL)
    envelope_from = parseaddr(sender_header)[1]
    domain = envelope_from.rpartition("@")[2] or "localhost"
    known = {s.email: s for s in Subscriber.objects.filter(email__in=to)}
    config = choose_server(campaign.smtp_server_id)
    replies: dict[str, str] = {}
    connection = pool.acquire(config)
    try:
        for address in to:
            subscriber = known.get(address)
            context = {
                "subscriber": {
                    "email": address,
                    "name": subscriber.name if subscriber else "Test Recipient",
                    "attributes": subscriber.attributes if subscriber else {},
                },
                "campaign": {"id": campaign.pk, "name": campaign.name},
            }
            rendered = content.render(context)
            data = build_message(
                headers=[
                    ("From", sender_header),
                    ("To", encode_address(context["subscriber"]["name"], address)),
                    ("Subject", f"[Test] {rendered.subject}"),
                    ("Date", formatdate(localtime=False)),
                    ("Message-ID", f"<test.{uuid.uuid4().hex}@{domain}>"),
                    ("X-Campaign-ID", str(campaign.pk)),
                ],
                text=rendered.text,
                html=rendered.html,
                boundary=f"=_{uuid.uuid4().hex}",
            )
            result = connection.send(envelope_from, address, data)
            replies[address] = result.reply
            log.info(
                "test message sent" if result.outcome == Outcome.SENT else "test message refused",
                extra={"campaign_id": campaign.pk, "to": address, "reply": result.reply},
            )
    finally:
        pool.release(connection)
    return replies
