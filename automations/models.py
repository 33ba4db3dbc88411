"""Sequences: a trigger, and steps a subscriber goes through one after the other.

The steps of a sequence form versions: subscribers keep the version they entered with, so a
paused sequence can be given new steps (a new version) without changing the path of those
already on their way, unless the editor moves them (automations.services). A step that
sends has its own Campaign of kind `step`: its content, layout, preview and test are a
campaign's, and its messages go through the Delivery ledger, the limits and the fair share
of the workers like any campaign's.
"""

from __future__ import annotations

import zoneinfo

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from campaigns.models import Condition

DAYS = [(0, "Monday"), (1, "Tuesday"), (2, "Wednesday"), (3, "Thursday"), (4, "Friday")]
DAYS += [(5, "Saturday"), (6, "Sunday")]


def valid_zone(name: str) -> None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise ValidationError(
            _("%(name)s is not a time zone; use a name such as Europe/Paris or UTC.")
            % {"name": repr(name)}
        ) from error


class Sequence(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")

    class Trigger(models.TextChoices):
        LIST = "list", _("Subscribed to a list")
        EVENT = "event", _("An event (API or webhook)")
        DATE = "date", _("A date attribute")
        MANUAL = "manual", _("Added by hand, by the API or by an import")

    name = models.CharField(_("name"), max_length=200, unique=True)
    tags = models.JSONField(_("tags"), default=list, blank=True, help_text=_('e.g. ["onboarding"]'))
    status = models.CharField(
        _("status"), max_length=6, choices=Status.choices, default=Status.DRAFT
    )
    lists = models.ManyToManyField(
        "subscribers.MailingList",
        verbose_name=_("lists"),
        related_name="sequences",
        help_text=_(
            "Messages go to subscribers while they are on one of these lists "
            "(confirmed on double opt-in lists); leaving them all ends the sequence for them."
        ),
    )
    trigger = models.CharField(
        _("trigger"), max_length=6, choices=Trigger.choices, default=Trigger.LIST
    )
    trigger_list = models.ForeignKey(
        "subscribers.MailingList",
        verbose_name=_("trigger list"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_(
            "Trigger 'subscribed to a list': who joins it from now on (once confirmed "
            "on a double opt-in list) enters."
        ),
    )
    trigger_event = models.CharField(
        _("trigger event"),
        max_length=100,
        blank=True,
        help_text=_("Trigger 'event': its name, e.g. purchase (POST /api/events)."),
    )
    date_attribute = models.CharField(
        _("date attribute"),
        max_length=100,
        blank=True,
        help_text=_(
            "Trigger 'date attribute': the attribute holding a date as 2027-03-01, "
            "e.g. renewal_date or birthday."
        ),
    )
    date_offset_days = models.IntegerField(
        _("date offset days"),
        default=0,
        help_text=_("Days from the date to entering: -7 enters a week before it."),
    )
    date_yearly = models.BooleanField(
        _("every year"),
        default=False,
        help_text=_("Enter each year on the date's day and month (a birthday)."),
    )
    timezone = models.CharField(
        _("timezone"),
        max_length=64,
        default="UTC",
        validators=[valid_zone],
        help_text=_(
            "For waits until a weekday and time, and the dates of date triggers, where "
            "the subscriber's timezone attribute does not say (e.g. Europe/Paris)."
        ),
    )
    weight = models.PositiveSmallIntegerField(
        _("weight"),
        default=1,
        validators=[MinValueValidator(1)],
        help_text=_(
            "Share of worker slots and of the global rate against running campaigns, "
            "shared between its steps with mail due."
        ),
    )
    rate_limit = models.PositiveIntegerField(
        _("rate limit"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_(
            "Most messages per second for each of its steps. Empty: the default in "
            "Settings → Performance."
        ),
    )
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    # Where the list trigger's scan of new subscriptions has got to (automations.entry).
    scanned_to = models.DateTimeField(_("scanned to"), null=True, blank=True, editable=False)
    dates_scanned_on = models.DateField(
        _("dates scanned on"), null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name, verbose_name_plural = _("sequence"), _("sequences")
        ordering = ["name"]
        permissions = [
            ("run_sequence", "Can activate, pause and resume sequences and add people"),
            ("record_event", "Can record events that start sequences (POST /api/events)"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        needs: dict[str, tuple[str, object, str]] = {
            self.Trigger.LIST: ("trigger_list", self.trigger_list_id, "Choose the list."),
            self.Trigger.EVENT: ("trigger_event", self.trigger_event, "Name the event."),
            self.Trigger.DATE: ("date_attribute", self.date_attribute, "Name the attribute."),
        }
        if self.trigger in needs:
            field, value, say = needs[self.trigger]
            if not value:
                raise ValidationError(
                    {field: _("%(say)s It is what starts this sequence.") % {"say": say}}
                )

    @property
    def share_group(self) -> str:
        return f"sequence:{self.pk}"

    def steps_of(self, version: int) -> list[Step]:
        return list(self.steps.filter(version=version).order_by("position"))


class Step(models.Model):
    class Kind(models.TextChoices):
        WAIT = "wait", _("Wait")
        SEND = "send", _("Send a message")
        BRANCH = "branch", _("Branch on a condition")
        ADD_TO_LIST = "add", _("Add to a list")
        REMOVE_FROM_LIST = "remove", _("Remove from a list")
        WEBHOOK = "webhook", _("Emit a webhook event")

    class Test(models.TextChoices):
        OPENED = "opened", _("opened the previous message")
        CLICKED = "clicked", _("clicked in the previous message")
        ATTRIBUTE = "attribute", _("an attribute condition")
        ON_LIST = "on_list", _("is on a list")

    sequence = models.ForeignKey(
        Sequence, verbose_name=_("sequence"), on_delete=models.CASCADE, related_name="steps"
    )
    version = models.PositiveIntegerField(_("version"), default=1)
    position = models.PositiveSmallIntegerField(
        _("position"), help_text=_("Steps run in this order, from 1.")
    )
    kind = models.CharField(_("kind"), max_length=7, choices=Kind.choices)
    # Wait: a duration, or until a weekday (and time) in the subscriber's time zone.
    wait_seconds = models.PositiveIntegerField(
        _("wait seconds"),
        null=True,
        blank=True,
        help_text=_("Wait: this many seconds (86400 is a day)."),
    )
    wait_weekday = models.PositiveSmallIntegerField(
        _("wait weekday"),
        null=True,
        blank=True,
        choices=DAYS,
        help_text=_("Wait: until this weekday…"),
    )
    wait_time = models.TimeField(
        _("wait time"), null=True, blank=True, help_text=_("… at this time of day.")
    )
    # Send: the message, a campaign of kind `step`.
    campaign = models.OneToOneField(
        "campaigns.Campaign",
        verbose_name=_("campaign"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="step",
        limit_choices_to={"kind": "step"},
    )
    # Branch: when the test fails, go to `go_to` (empty: leave the sequence); else go on.
    test = models.CharField(_("test"), max_length=9, choices=Test.choices, blank=True)
    attribute = models.CharField(_("attribute"), max_length=100, blank=True)
    operator = models.CharField(
        _("operator"),
        max_length=10,
        choices=Condition.Operator.choices,
        default="equals",
        blank=True,
    )
    value = models.CharField(_("value"), max_length=255, blank=True)
    go_to = models.PositiveSmallIntegerField(
        _("go to"),
        null=True,
        blank=True,
        help_text=_("Branch: the step to go to when the test fails. Empty: leave the sequence."),
    )
    # Branch on a list; add to or remove from a list.
    mailing_list = models.ForeignKey(
        "subscribers.MailingList",
        verbose_name=_("mailing list"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
    )
    event = models.CharField(
        _("event"),
        max_length=100,
        blank=True,
        help_text=_("Webhook: the event's name after sequence."),
    )
    # Counters (automations.engine writes them with the moves they count).
    entered = models.PositiveIntegerField(_("entered"), default=0, editable=False)
    exited = models.PositiveIntegerField(_("exited"), default=0, editable=False)

    class Meta:
        ordering = ["sequence", "version", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["sequence", "version", "position"], name="one_step_per_position"
            )
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.describe()}"

    def describe(self) -> str:
        if self.kind == self.Kind.WAIT:
            if self.wait_weekday is not None:
                at = f" at {self.wait_time:%H:%M}" if self.wait_time else ""
                return f"wait until {DAYS[self.wait_weekday][1]}{at}"
            return f"wait {self.wait_seconds or 0} s"
        if self.kind == self.Kind.SEND:
            return f"send {self.campaign.subject if self.campaign else '(no message)'!r}"
        if self.kind == self.Kind.BRANCH:
            where = f"go to {self.go_to}" if self.go_to else "leave"
            return f"if not {self.get_test_display()}: {where}"
        if self.kind in (self.Kind.ADD_TO_LIST, self.Kind.REMOVE_FROM_LIST):
            return f"{self.get_kind_display().lower()} {self.mailing_list}"
        return f"emit sequence.{self.event}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.kind == self.Kind.WAIT and self.wait_seconds is None and self.wait_weekday is None:
            errors["wait_seconds"] = "Give a duration in seconds, or a weekday to wait until."
        if self.kind == self.Kind.BRANCH:
            if not self.test:
                errors["test"] = "Choose what the branch tests."
            elif self.test == self.Test.ATTRIBUTE and not self.attribute:
                errors["attribute"] = "Name the attribute to test."
            elif self.test == self.Test.ON_LIST and self.mailing_list_id is None:
                errors["mailing_list"] = "Choose the list."
            if self.go_to is not None and self.go_to <= self.position:
                errors["go_to"] = "A branch goes forward only (to a later step), so no one loops."
        lists = (self.Kind.ADD_TO_LIST, self.Kind.REMOVE_FROM_LIST)
        if self.kind in lists and self.mailing_list_id is None:
            errors["mailing_list"] = "Choose the list."
        if self.kind == self.Kind.WEBHOOK and not self.event:
            errors["event"] = "Name the event, e.g. welcomed."
        if errors:
            raise ValidationError(errors)


class Enrollment(models.Model):
    """A subscriber's way through a sequence: the step they are at and when it is due."""

    class State(models.TextChoices):
        ACTIVE = "active", _("On their way")
        DONE = "done", _("Went through")
        EXITED = "exited", _("Left")

    sequence = models.ForeignKey(
        Sequence, verbose_name=_("sequence"), on_delete=models.CASCADE, related_name="enrollments"
    )
    subscriber = models.ForeignKey(
        "subscribers.Subscriber",
        verbose_name=_("subscriber"),
        on_delete=models.CASCADE,
        related_name="enrollments",
    )
    # Round: 0, or the year of a yearly date trigger; each round's messages go once.
    round = models.PositiveSmallIntegerField(_("round"), default=0)
    version = models.PositiveIntegerField(_("version"))
    position = models.PositiveSmallIntegerField(_("position"), default=1)
    due_at = models.DateTimeField(_("due at"))
    state = models.CharField(_("state"), max_length=6, choices=State.choices, default=State.ACTIVE)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    # The last message sent to them here (a branch on opened or clicked tests it).
    last_campaign_id = models.BigIntegerField(_("last campaign ID"), null=True, blank=True)
    entered_at = models.DateTimeField(_("entered at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name, verbose_name_plural = _("enrollment"), _("enrollments")
        constraints = [
            models.UniqueConstraint(
                fields=["sequence", "subscriber", "round"], name="one_enrollment_per_round"
            )
        ]
        indexes = [
            models.Index(fields=["due_at"], condition=Q(state="active"), name="enrollment_due"),
            models.Index(fields=["subscriber"], condition=Q(state="active"), name="enrollment_on"),
            # The subscribers due at one step, earliest first (automations.engine).
            models.Index(
                fields=["sequence", "version", "position", "due_at"],
                condition=Q(state="active"),
                name="enrollment_step_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_id} in {self.sequence_id} at {self.position} ({self.state})"
