"""Outgoing webhooks: endpoints set in the admin, and the durable outbox of events for them.

An event and its deliveries are written in the database transaction of the change they
announce (webhooks.outbox), so a change that commits is announced even if Redis or every
worker dies at that instant, and a change that rolls back is never announced."""

from __future__ import annotations

import base64
import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _

from webhooks.addresses import UnsafeURL, checked_address

# What an endpoint may ask for (`events` empty: all of them).
EVENTS = {
    "subscriber.created": "A subscriber was added (admin, API, subscribe form)",
    "subscriber.updated": "A subscriber's details changed",
    "subscriber.unsubscribed": "A subscriber left lists",
    "subscriber.blocklisted": "A subscriber was blocklisted",
    "subscription.confirmed": "A double opt-in subscription was confirmed",
    "campaign.started": "A campaign started sending",
    "campaign.paused": "A campaign was paused",
    "campaign.cancelled": "A campaign was cancelled",
    "campaign.finished": "A campaign finished",
    "bounce.received": "A bounce was recorded",
    "complaint.received": "A complaint (spam report) was recorded",
    "tx.sent": "A transactional message was sent",
    "tx.failed": "A transactional message failed for good",
    "sequence.event": "A sequence's webhook step ran for a subscriber",
}


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class Endpoint(models.Model):
    name = models.CharField(_("name"), max_length=200)
    url = models.URLField(
        _("URL"),
        max_length=2000,
        help_text=_(
            "Where events are POSTed (https:// recommended). Addresses on loopback or "
            "private networks are refused unless WEBHOOKS_ALLOW_PRIVATE_URLS is set."
        ),
    )
    events = models.JSONField(
        _("events"),
        default=list,
        blank=True,
        help_text=_(
            'The events to send, e.g. ["subscriber.created", "tx.failed"]; empty: every event.'
        ),
    )
    secret = models.CharField(
        _("secret"),
        max_length=100,
        default=new_secret,
        help_text=_("The Standard Webhooks signing secret the receiver checks signatures with."),
    )
    is_enabled = models.BooleanField(_("is enabled"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name, verbose_name_plural = _("endpoint"), _("endpoints")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        events = self.events if isinstance(self.events, list) else [self.events]
        unknown = [e for e in events if e not in EVENTS]
        if unknown:
            raise ValidationError(
                {
                    "events": _("Unknown events %(unknown)s; choose from %(value)s.")
                    % {"unknown": unknown, "value": ", ".join(EVENTS)}
                }
            )
        try:
            checked_address(self.url)
        except UnsafeURL as error:
            raise ValidationError({"url": str(error)}) from error

    def wants(self, kind: str) -> bool:
        return not self.events or kind in self.events


class Event(models.Model):
    id = models.BigAutoField(_("ID"), primary_key=True)
    kind = models.CharField(_("kind"), max_length=40)
    payload = models.JSONField(_("payload"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_default=Now())

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"

    @property
    def webhook_id(self) -> str:
        """The same for every attempt, so that a receiver can discard a repeat."""
        return f"evt_{self.pk}"


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    id = models.BigAutoField(_("ID"), primary_key=True)
    endpoint = models.ForeignKey(
        Endpoint, verbose_name=_("endpoint"), on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(
        Event, verbose_name=_("event"), on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=Status.choices,
        default=Status.PENDING,
        db_default="pending",
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0, db_default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), db_default=Now())
    last_status_code = models.PositiveSmallIntegerField(
        _("last status code"), null=True, blank=True
    )
    last_response = models.TextField(_("last response"), blank=True, default="")
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_default=Now())

    class Meta:
        verbose_name, verbose_name_plural = _("delivery"), _("deliveries")
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_due"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.endpoint}"
