"""Bounces and complaints: from providers' tracking webhooks (django-anymail normalises
Amazon SES, SendGrid, Postmark, Mailgun and others) and from a generic JSON endpoint.
Hard bounces and complaints blocklist the subscriber (thresholds in Bounce settings); soft
bounces are counted."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog
from anymail.signals import EventType, tracking
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from mailer import events, ledger
from mailer.models import Bounce, BounceSettings
from mailer.signals import bounce_recorded
from subscribers.addresses import normalise_email
from subscribers.models import Subscriber
from subscribers.services import subscriber_blocklist

log = structlog.get_logger(__name__)

# A bounce belongs to the campaign that last sent to the address within this long.
CAMPAIGN_WINDOW = timedelta(days=14)
SOFT_WINDOW = timedelta(days=30)


def bounce_record(
    *,
    email: str,
    kind: str,
    source: str,
    description: str = "",
    campaign_id: int | None = None,
    at: datetime | None = None,
) -> Bounce:
    """Record a bounce or complaint and blocklist the subscriber past the threshold."""
    kind = Bounce.Kind(kind)
    address = normalise_email(email)
    at = at or timezone.now()
    subscriber = Subscriber.objects.filter(email=address).first()
    if campaign_id is None:
        campaign_id = ledger.last_campaign_to(address, since=at - CAMPAIGN_WINDOW)
    with transaction.atomic():
        bounce = Bounce.objects.create(
            email=address,
            subscriber=subscriber,
            campaign_id=campaign_id,
            kind=kind,
            source=source[:40],
            description=description[:500],
            at=at,
        )
        if subscriber is not None and subscriber.status == Subscriber.Status.ENABLED:
            _maybe_blocklist(subscriber, kind)
        bounce_recorded.send(sender=Bounce, bounce=bounce)
    log.info(
        "bounce recorded",
        email=address,
        kind=kind,
        source=source,
        campaign_id=campaign_id,
    )
    return bounce


def _maybe_blocklist(subscriber: Subscriber, kind: str) -> None:
    limits = BounceSettings.load()
    threshold = {
        Bounce.Kind.HARD: limits.hard_bounces,
        Bounce.Kind.SOFT: limits.soft_bounces,
        Bounce.Kind.COMPLAINT: limits.complaints,
    }[Bounce.Kind(kind)]
    if threshold is None:
        return
    counted = Bounce.objects.filter(subscriber=subscriber, kind=kind)
    if kind == Bounce.Kind.SOFT:
        counted = counted.filter(at__gte=timezone.now() - SOFT_WINDOW)
    count = counted.count()
    if count < threshold:
        return
    subscriber_blocklist(subscribers=[subscriber])
    events.warn(
        "subscriber blocklisted",
        f"{subscriber.email} is blocklisted after {count} {Bounce.Kind(kind).label.lower()}"
        f"{'s' if count > 1 else ''} (limit {threshold}, Bounce settings).",
        subscriber_id=subscriber.pk,
        kind=str(kind),
    )


def kind_of(event: Any) -> str | None:
    """An anymail tracking event as hard, soft or complaint (None: not a bounce)."""
    if event.event_type == EventType.COMPLAINED:
        return Bounce.Kind.COMPLAINT
    if event.event_type == EventType.DEFERRED:
        return Bounce.Kind.SOFT
    if event.event_type == EventType.BOUNCED:
        raw = event.esp_event if isinstance(event.esp_event, dict) else {}
        # Providers that report temporary bounces as bounces: SES ("Transient: …" in the
        # normalised description) and Postmark ("SoftBounce").
        if (event.description or "").startswith("Transient") or raw.get("Type") in (
            "SoftBounce",
            "Transient",
        ):
            return Bounce.Kind.SOFT
        return Bounce.Kind.HARD
    if event.event_type == EventType.REJECTED and event.reject_reason in ("bounced", "invalid"):
        return Bounce.Kind.HARD
    return None


@receiver(tracking, dispatch_uid="mailer.bounces.from_anymail")
def from_anymail(sender, event, esp_name: str, **kwargs) -> None:
    kind = kind_of(event)
    if kind is None or not event.recipient:
        return
    campaign = (event.metadata or {}).get("campaign_id") or _campaign_header(event.esp_event)
    bounce_record(
        email=event.recipient,
        kind=kind,
        source=esp_name.lower().replace(" ", "_"),
        description=event.description or event.mta_response or "",
        campaign_id=int(campaign) if campaign and str(campaign).isdigit() else None,
        at=event.timestamp,
    )


def _campaign_header(esp_event: Any) -> str | None:
    """Our X-Campaign-ID header, where the provider sends the message's headers back (SES)."""
    if not isinstance(esp_event, dict):
        return None
    headers = esp_event.get("mail", {}).get("headers", [])
    for header in headers if isinstance(headers, list) else []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "x-campaign-id":
            return str(header.get("value", ""))
    return None
