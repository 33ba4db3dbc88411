from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import UUID4, Now
from django.utils.translation import gettext_lazy as _

from subscribers import uploads

# The longest name a subscriber can have (imports and the public form cut or refuse longer).
MAX_NAME = 200


class Subscriber(models.Model):
    class Status(models.TextChoices):
        ENABLED = "enabled", _("Enabled")
        BLOCKLISTED = "blocklisted", _("Blocklisted")

    # Stored lower-cased (see subscribers.addresses.normalise_email), so uniqueness is
    # case-insensitive without an expression index.
    email = models.EmailField(_("email"), max_length=254, unique=True)
    # A stable public id (listmonk's API names subscribers and lists by it too).
    uuid = models.UUIDField(
        _("UUID"), default=uuid.uuid4, db_default=UUID4(), unique=True, editable=False
    )
    name = models.CharField(_("name"), max_length=MAX_NAME, blank=True)
    attributes = models.JSONField(
        _("attributes"),
        default=dict,
        blank=True,
        help_text=_('Free-form data for personalisation, e.g. {"city": "Lyon"}.'),
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.ENABLED
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name, verbose_name_plural = _("subscriber"), _("subscribers")
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


class MailingList(models.Model):
    class OptIn(models.TextChoices):
        SINGLE = "single", _("Single opt-in")
        DOUBLE = "double", _("Double opt-in")

    name = models.CharField(_("name"), max_length=200, unique=True)
    uuid = models.UUIDField(
        _("UUID"), default=uuid.uuid4, db_default=UUID4(), unique=True, editable=False
    )
    description = models.TextField(_("description"), blank=True)
    tags = models.JSONField(
        _("tags"),
        default=list,
        db_default=[],
        blank=True,
        help_text=_('Labels, e.g. ["news", "en"].'),
    )
    opt_in = models.CharField(
        _("opt in"),
        max_length=6,
        choices=OptIn.choices,
        default=OptIn.SINGLE,
        help_text=_("Double opt-in lists only mail subscribers who confirmed by email."),
    )
    is_public = models.BooleanField(
        _("is public"),
        default=False,
        help_text=_("Public lists can be joined through the subscribe form."),
    )
    language = models.CharField(
        _("language"),
        max_length=10,
        choices=settings.LANGUAGES,
        default="en",
        db_default="en",
        help_text=_(
            "The language of its public pages (subscribe, confirm, unsubscribe, "
            "preferences, archive) and of the messages they send."
        ),
    )
    subscribers = models.ManyToManyField(
        Subscriber,
        verbose_name=_("subscribers"),
        through="Subscription",
        related_name="mailing_lists",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # Rows written by SQL (a bulk load) get the time too.
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_default=Now())

    class Meta:
        verbose_name, verbose_name_plural = _("mailing list"), _("mailing lists")
        ordering = ["name"]
        # Per-list access (subscribers/access.py): the first is given per list, the second
        # to those who see every list.
        permissions = [
            ("send_to_mailinglist", "Can send campaigns to the list"),
            ("access_all_lists", "Can see and use every list"),
        ]

    def __str__(self) -> str:
        return self.name


class Subscription(models.Model):
    class Status(models.TextChoices):
        UNCONFIRMED = "unconfirmed", _("Unconfirmed")
        CONFIRMED = "confirmed", _("Confirmed")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")

    subscriber = models.ForeignKey(
        Subscriber,
        verbose_name=_("subscriber"),
        on_delete=models.CASCADE,
        related_name="subscriptions",
    )
    mailing_list = models.ForeignKey(
        MailingList,
        verbose_name=_("mailing list"),
        on_delete=models.CASCADE,
        related_name="subscriptions",
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.UNCONFIRMED
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name, verbose_name_plural = _("subscription"), _("subscriptions")
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber", "mailing_list"], name="one_subscription_per_list"
            )
        ]
        indexes = [
            models.Index(fields=["mailing_list", "status"]),
            # What changed on a list lately (a sequence's list trigger, automations.entry).
            models.Index(fields=["mailing_list", "updated_at"], name="subscription_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_id} on {self.mailing_list_id}: {self.status}"

    @staticmethod
    def is_active(status: str, mailing_list: MailingList) -> bool:
        """Whether a subscription in this status gets the list's campaigns: confirmed, or
        not yet confirmed on a single opt-in list (the audience's rule, campaigns.audience)."""
        return status == Subscription.Status.CONFIRMED or (
            status == Subscription.Status.UNCONFIRMED
            and mailing_list.opt_in == MailingList.OptIn.SINGLE
        )

    def receives_mail(self) -> bool:
        return self.is_active(self.status, self.mailing_list)


class ListCount(models.Model):
    """How many subscriptions a list has in one status: kept by statement-level triggers on
    the subscriptions table (subscribers.counting), read instead of counting them."""

    list_id = models.BigIntegerField(_("mailing list"))
    status = models.CharField(_("status"), max_length=12)
    count = models.BigIntegerField(_("count"), default=0)

    class Meta:
        verbose_name, verbose_name_plural = _("list count"), _("list counts")
        constraints = [
            models.UniqueConstraint(fields=["list_id", "status"], name="one_count_per_status")
        ]

    def __str__(self) -> str:
        return f"{self.list_id} {self.status}: {self.count}"


class ListActivity(models.Model):
    """A list's subscriptions by the hour they were made, and its unsubscribed ones by the
    hour of their last change: kept by the same triggers as ListCount, read by the lists'
    growth chart (mailer.analytics.list_growth) instead of the subscriptions themselves."""

    list_id = models.BigIntegerField(_("mailing list"))
    hour = models.DateTimeField(_("hour"))
    subscribed = models.BigIntegerField(_("subscribed"), default=0)
    unsubscribed = models.BigIntegerField(_("unsubscribed"), default=0)

    class Meta:
        verbose_name, verbose_name_plural = _("list activity"), _("list activity")
        constraints = [
            models.UniqueConstraint(fields=["list_id", "hour"], name="one_activity_per_hour")
        ]

    def __str__(self) -> str:
        return f"{self.list_id} {self.hour:%Y-%m-%d %H}h: +{self.subscribed} -{self.unsubscribed}"


class SubscriberImport(models.Model):
    """A CSV file uploaded in the admin, imported by a worker on the `default` queue."""

    class Mode(models.TextChoices):
        SUBSCRIBE = "subscribe", _("Subscribe to a list (add or update subscribers)")
        UPDATE = "update", _("Update subscribers already on file (name and attributes)")
        BLOCKLIST = "blocklist", _("Blocklist the addresses")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        STOPPED = "stopped", _("Stopped")

    file = models.FileField(
        _("file"),
        upload_to="imports/%Y/%m/",
        help_text=_(
            "CSV, UTF-8, header row first: email (required), name (optional); any "
            "other column is stored in the subscriber's attributes."
        ),
    )
    mode = models.CharField(_("mode"), max_length=10, choices=Mode.choices, default=Mode.SUBSCRIBE)
    mailing_list = models.ForeignKey(
        MailingList,
        verbose_name=_("mailing list"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        help_text=_(
            "The list to subscribe the addresses to (mode 'subscribe' only). New "
            "subscriptions are confirmed on single opt-in lists, unconfirmed on double ones."
        ),
    )
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.QUEUED
    )
    rows = models.PositiveIntegerField(_("rows"), default=0)
    imported = models.PositiveIntegerField(_("imported"), default=0)
    skipped = models.PositiveIntegerField(_("skipped"), default=0)
    progress = models.FloatField(
        _("progress"), default=0, help_text=_("Share of the file read, 0 to 1.")
    )
    message = models.TextField(_("message"), blank=True)
    error_report = models.FileField(_("error report"), upload_to="imports/%Y/%m/", blank=True)
    created_by = models.ForeignKey(
        "auth.User",
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name, verbose_name_plural = _("import"), _("imports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{(self.file.name or '').rsplit('/', 1)[-1]} ({self.get_mode()})"

    def get_mode(self) -> str:
        return self.Mode(self.mode).name.lower()

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.mode == self.Mode.SUBSCRIBE and self.mailing_list_id is None:
            raise ValidationError({"mailing_list": _("Choose the list to subscribe them to.")})
        if self.file and not self.pk and (reason := uploads.problem(self.file)):
            raise ValidationError({"file": reason})
