"""A campaign's messages, one recipient at a time: template context, signed links, headers
(List-Unsubscribe with one-click POST, List-Id, a deterministic Message-ID) and MIME."""

from __future__ import annotations

import uuid
from email.utils import formatdate, parseaddr
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from campaigns.models import Campaign
from campaigns.rendering import PreparedContent
from mailer.message import (
    attachment_parts,
    build_message,
    encode_address,
    encode_header,
    format_sender,
    message_id,
)
from subscribers import links


class CampaignComposer:
    """Everything about a campaign's messages that is the same for every recipient."""

    def __init__(self, campaign: Campaign, content: PreparedContent) -> None:
        self.campaign = campaign
        self.content = content
        self.sender_header = format_sender(campaign.from_email or settings.DEFAULT_FROM_EMAIL)
        self.envelope_from = parseaddr(self.sender_header)[1]
        self.domain = self.envelope_from.rpartition("@")[2] or "localhost"
        self.date = formatdate(localtime=False)
        self.boundary = f"=_{uuid.uuid4().hex}"
        self.context_campaign = {"id": campaign.pk, "name": campaign.name}
        host = urlsplit(settings.SITE_URL).hostname or self.domain
        first_list = campaign.lists.order_by("pk").first() if campaign.pk else None
        # RFC 2919: a list's name and a unique id under a domain of the sender's.
        self.list_id = (
            f"{' '.join(first_list.name.split())} <list-{first_list.pk}.{host}>"
            if first_list
            else f"<campaigns.{host}>"
        )
        # Headers that are the same for every recipient, encoded once.
        self.fixed_headers = [
            encode_header("From", self.sender_header),
            encode_header("Date", self.date),
            # RFC 8058: mail clients may unsubscribe with one POST to the List-Unsubscribe URL.
            encode_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            encode_header("List-Id", self.list_id),
            encode_header("X-Campaign-ID", str(campaign.pk)),
        ]
        # Files from the media library, encoded once for every recipient's message.
        files = list(campaign.attachments.all()) if campaign.pk else []
        self.attachments = attachment_parts(
            ((f.name, f.content_type, f.read()) for f in files), self.boundary
        )

    def context(
        self,
        *,
        subscriber_id: int | None,
        email: str,
        name: str,
        attributes: dict[str, Any],
        subscriber_uuid: str = "",
    ) -> dict[str, Any]:
        subscriber = {"email": email, "name": name, "uuid": subscriber_uuid}
        return {
            "subscriber": {**subscriber, "attributes": attributes},
            "campaign": self.context_campaign,
            **links.urls(subscriber_id, self.campaign.pk),
        }

    def message(
        self,
        *,
        delivery_id: int | None,
        subscriber_id: int | None,
        email: str,
        name: str,
        attributes: dict[str, Any],
        subscriber_uuid: str = "",
        subject_prefix: str = "",
    ) -> bytes:
        """The message as bytes; HeaderInjectionError if a name or subject has a line break."""
        context = self.context(
            subscriber_id=subscriber_id,
            email=email,
            name=name,
            attributes=attributes,
            subscriber_uuid=subscriber_uuid,
        )
        rendered = self.content.render(context)
        msgid = (
            message_id(
                campaign_id=self.campaign.pk,
                delivery_id=delivery_id,
                domain=self.domain,
                secret=settings.SECRET_KEY,
            )
            if delivery_id is not None
            else f"<test.{uuid.uuid4().hex}@{self.domain}>"
        )
        return build_message(
            headers=[
                *self.fixed_headers,
                ("To", encode_address(name, email)),
                ("Subject", subject_prefix + rendered.subject),
                ("Message-ID", msgid),
                ("List-Unsubscribe", f"<{context['unsubscribe_url']}>"),
            ],
            text=rendered.text,
            html=rendered.html,
            boundary=self.boundary,
            attachments=self.attachments,
        )
