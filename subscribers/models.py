from __future__ import annotations

from django.db import models


class Subscriber(models.Model):
    class Status(models.TextChoices):
        ENABLED = "enabled", "Enabled"
        BLOCKLISTED = "blocklisted", "Blocklisted"

    # Stored lower-cased (see subscribers.services.normalise_email), so uniqueness is
    # case-insensitive without an expression index.
    email = models.EmailField(max_length=254, unique=True)
    name = models.CharField(max_length=200, blank=True)
    attributes = models.JSONField(
        default=dict,
        blank=True,
        help_text='Free-form data for personalisation, e.g. {"city": "Lyon"}.',
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ENABLED)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


class MailingList(models.Model):
    class OptIn(models.TextChoices):
        SINGLE = "single", "Single opt-in"
        DOUBLE = "double", "Double opt-in"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    opt_in = models.CharField(
        max_length=6,
        choices=OptIn.choices,
        default=OptIn.SINGLE,
        help_text="Double opt-in lists only mail subscribers who confirmed by email.",
    )
    is_public = models.BooleanField(
        default=False, help_text="Public lists can be joined through the subscribe form."
    )
    subscribers = models.ManyToManyField(
        Subscriber, through="Subscription", related_name="mailing_lists"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Subscription(models.Model):
    class Status(models.TextChoices):
        UNCONFIRMED = "unconfirmed", "Unconfirmed"
        CONFIRMED = "confirmed", "Confirmed"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"

    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="subscriptions"
    )
    mailing_list = models.ForeignKey(
        MailingList, on_delete=models.CASCADE, related_name="subscriptions"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.UNCONFIRMED)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber", "mailing_list"], name="one_subscription_per_list"
            )
        ]
        indexes = [models.Index(fields=["mailing_list", "status"])]

    def __str__(self) -> str:
        return f"{self.subscriber_id} on {self.mailing_list_id}: {self.status}"
