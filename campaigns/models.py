from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import UUID4
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from campaigns.layouts import Template
from campaigns.rendering import PreparedContent, TemplateError
from campaigns.segments import Behaviour
from campaigns.signals import campaign_status_changed
from subscribers.addresses import sender_problem

# Rates of 0 or less would stop sending without saying so: refused with what to do instead.
RATE_MIN = MinValueValidator(
    1, _("A rate is at least 1 message per second. To remove the limit, leave the field empty.")
)


class CampaignTransitionError(Exception):
    """A status change that the campaign's current status does not allow."""


class Limit(models.TextChoices):
    """What holds a campaign back now: the `limited_by` of the status page, `status.json` and
    `campaign status --json`. A domain throttle is named `domain:<domain>`."""

    RUNNING_SLOTS = "running_slots", _("waiting for a free running slot")
    SCHEDULE = "schedule", _("scheduled for later")
    PAUSED = "paused", _("paused by a user")
    ERRORS = "errors", _("paused by errors")
    CAMPAIGN_RATE = "campaign_rate", _("its own rate limit")
    GLOBAL_RATE = "global_rate", _("its share of the global rate")
    SMTP_SERVER = "smtp_server", _("its SMTP server")
    WORKER_SLOTS = "worker_slots", _("the worker slots")
    NEXT_SUBSCRIBERS = "next_subscribers", _("subscribers reaching its sequence step")
    NONE = "", _("nothing")


# The status reasons the engine and the services write, which say what a campaign waits for.
SLOT_REASON = "waiting for a running slot"
USER_PAUSE = "paused by a user"


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        RUNNING = "running", _("Running")
        PAUSED = "paused", _("Paused")
        CANCELLED = "cancelled", _("Cancelled")
        FINISHED = "finished", _("Finished")

    # The one place that says which status changes are allowed.
    TRANSITIONS: dict[str, set[str]] = {
        Status.DRAFT: {Status.SCHEDULED, Status.CANCELLED},
        Status.SCHEDULED: {Status.RUNNING, Status.PAUSED, Status.CANCELLED, Status.DRAFT},
        Status.RUNNING: {Status.PAUSED, Status.CANCELLED, Status.FINISHED},
        Status.PAUSED: {Status.SCHEDULED, Status.CANCELLED},
        Status.CANCELLED: set(),
        Status.FINISHED: set(),
    }

    class Kind(models.TextChoices):
        CAMPAIGN = "campaign", _("Campaign")
        # The message of a sequence's step (automations): running while its sequence is
        # active, fed recipient by recipient, never finished by an empty ledger, and no
        # running slot of its own.
        STEP = "step", _("Sequence step")
        # One variant of an A/B test (campaigns.ab): no running slot of its own, the
        # tested campaign's weight shared with the other variants; finished when sent.
        VARIANT = "variant", _("A/B test variant")

    class Format(models.TextChoices):
        HTML = "html", _("HTML")
        MARKDOWN = "markdown", _("Markdown")
        PLAIN = "plain", _("Plain text")

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(
        _("kind"),
        max_length=8,
        choices=Kind.choices,
        default=Kind.CAMPAIGN,
        db_default=Kind.CAMPAIGN,
    )
    # Campaigns with the same group share one weight between them (the steps of a sequence
    # share the sequence's): the dispatcher divides it among those with mail due.
    share_group = models.CharField(
        _("share group"), max_length=40, blank=True, default="", db_default=""
    )
    # A stable public id (listmonk's API shows it).
    uuid = models.UUIDField(
        _("UUID"), default=uuid.uuid4, db_default=UUID4(), unique=True, editable=False
    )
    tags = models.JSONField(
        _("tags"), default=list, db_default=[], blank=True, help_text=_('e.g. ["spring"]')
    )
    subject = models.CharField(_("subject"), max_length=998)
    from_email = models.CharField(
        _("from email"),
        max_length=320,
        blank=True,
        help_text=_(
            "Sender, e.g. 'Shop <news@shop.example>'. Empty: the DEFAULT_FROM_EMAIL "
            "of the environment."
        ),
    )
    template = models.ForeignKey(
        Template,
        verbose_name=_("template"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        limit_choices_to={"kind": "campaign"},
        help_text=_("Layout the body is placed in. Empty: the body is sent as it is."),
    )
    body = models.TextField(
        _("body"),
        help_text=_(
            "Message body in the Django template language, e.g. Hello "
            "{{ subscriber.name }} from {{ subscriber.attributes.city }}. Links: "
            "{{ unsubscribe_url }}, {{ preferences_url }}, {{ view_url }} (view in a browser)."
        ),
    )
    format = models.CharField(
        _("format"),
        max_length=8,
        choices=Format.choices,
        default=Format.HTML,
        help_text=_(
            "HTML and Markdown bodies go in the layout, get their CSS inlined and a "
            "plain-text alternative; plain text is sent as it is."
        ),
    )
    lists = models.ManyToManyField(
        "subscribers.MailingList",
        verbose_name=_("lists"),
        related_name="campaigns",
        help_text=_("Each subscriber on several of these lists gets the campaign once."),
    )

    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    status_reason = models.CharField(
        _("status reason"),
        max_length=500,
        blank=True,
        help_text=_("Why the campaign is waiting or was paused, in plain words."),
    )
    send_at = models.DateTimeField(
        _("send at"),
        null=True,
        blank=True,
        help_text=_("When to start sending. Empty: as soon as started."),
    )
    rate_limit = models.PositiveIntegerField(
        _("rate limit"),
        null=True,
        blank=True,
        validators=[RATE_MIN],
        help_text=_(
            "Most messages per second for this campaign. Empty: the default in "
            "Settings → Performance."
        ),
    )
    weight = models.PositiveSmallIntegerField(
        _("weight"),
        default=1,
        validators=[MinValueValidator(1)],
        help_text=_(
            "Share of worker slots and of the global rate against other running "
            "campaigns: a campaign of weight 2 gets twice the share of one of weight 1."
        ),
    )
    track_opens = models.BooleanField(
        _("track opens"),
        default=True,
        db_default=True,
        help_text=_(
            "Add an invisible image that records when the message is opened (where the "
            "mail client loads images)."
        ),
    )
    track_clicks = models.BooleanField(
        _("track clicks"),
        default=True,
        db_default=True,
        help_text=_(
            "Send links through a redirect that records clicks; it only ever leads to "
            "the links of this campaign."
        ),
    )
    smtp_server = models.ForeignKey(
        "mailer.SmtpServer",
        verbose_name=_("SMTP server"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        help_text=_("Send through this server only. Empty: any enabled server, by weight."),
    )
    # The public archive (campaigns/archive.py), shown for a placeholder subscriber.
    archive = models.BooleanField(
        _("publish in the archive"),
        default=False,
        db_default=False,
        help_text=_(
            "Once sent, show it on the public archive page of its lists and in their feed."
        ),
    )
    archive_slug = models.SlugField(
        _("archive slug"),
        max_length=200,
        null=True,
        blank=True,
        unique=True,
        help_text=_("Its address in the archive, /archive/<slug>/; empty: made from the name."),
    )
    archive_meta = models.JSONField(
        _("archive placeholder"),
        default=dict,
        db_default={},
        blank=True,
        help_text=_(
            'What the archive shows as the subscriber, e.g. {"name": "Reader", '
            '"attributes": {"city": "Lyon"}}; never anyone\'s real data.'
        ),
    )

    # Counters, written in the same transaction as the ledger rows they count.
    total = models.PositiveIntegerField(_("total"), default=0)
    sent = models.PositiveIntegerField(_("sent"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # Raised by each edit of a paused campaign's content (campaigns/versions.py).
    content_version = models.PositiveIntegerField(
        _("content version"), default=1, db_default=1, editable=False
    )

    class Meta:
        verbose_name, verbose_name_plural = _("campaign"), _("campaigns")
        ordering = ["-created_at"]
        # Editing a campaign and sending it are separate: an Editor writes and tests, a
        # Campaign manager starts, pauses, resumes and cancels (docs/roles.md).
        permissions = [("send_campaign", "Can start, pause, resume and cancel campaigns")]

    def __str__(self) -> str:
        return self.name

    def condition_triples(self) -> list[tuple[str, str, str]]:
        """Its attribute conditions."""
        return [
            (c.attribute, c.operator, c.value)
            for c in self.conditions.filter(kind="attribute").order_by("pk")
        ]

    def behaviours(self) -> list[Behaviour]:
        """Its conditions on what subscribers did (campaigns.segments)."""
        return [c.behaviour() for c in self.conditions.exclude(kind="attribute").order_by("pk")]

    def content(self, *, tracking: bool = True) -> PreparedContent:
        """Subject, body and layout compiled together (raises TemplateError)."""
        track_clicks = tracking and self.track_clicks and self.pk is not None
        return PreparedContent(
            subject=self.subject,
            body=self.body,
            layout=self.template.html if self.template else None,
            format=self.format,
            link_id=self.tracked_link_id if track_clicks else None,
            open_pixel=tracking and self.track_opens and self.pk is not None,
        )

    def tracked_link_id(self, url: str) -> int:
        link = self.links.get_or_create(url=url[:2000])[0]
        return link.pk

    def clean(self) -> None:
        if self.from_email and (problem := sender_problem(self.from_email)):
            raise ValidationError({"from_email": problem})
        meta = self.archive_meta = self.archive_meta or {}  # an emptied field: no placeholder
        if not isinstance(meta, dict) or not set(meta) <= {"name", "attributes"}:
            raise ValidationError(
                {"archive_meta": _('Write {"name": "Reader", "attributes": {}}.')}
            )
        if self.archive_slug in ("feed", "list"):
            raise ValidationError({"archive_slug": _("The archive's own pages use this name.")})
        if self.archive and not self.archive_slug:
            self.archive_slug = self.free_slug()
        if not self.subject or not self.body:
            return  # the form already says these are required
        try:
            self.content(tracking=False)
        except TemplateError as error:
            field = "subject" if str(error).startswith("The subject") else "body"
            raise ValidationError({field: str(error)}) from error

    def free_slug(self) -> str:
        """An archive address made from the name, with a number added if it is taken."""
        base = slugify(self.name)[:180].strip("-") or "campaign"
        base = f"{base}-campaign" if base in ("feed", "list") else base
        taken = set(
            Campaign.objects.exclude(pk=self.pk)
            .filter(archive_slug__startswith=base)
            .values_list("archive_slug", flat=True)
        )
        candidates = (base if n == 1 else f"{base}-{n}" for n in range(1, len(taken) + 2))
        return next(slug for slug in candidates if slug not in taken)

    def effective_rate(self, default: int | None) -> int | None:
        """Its own rate limit, or `default` (Settings → Performance) when it sets none."""
        return self.rate_limit or default

    def waiting_for(self) -> Limit:
        """What a campaign that is not running waits for (NONE for a running or ended one)."""
        if self.status == self.Status.SCHEDULED:
            if self.send_at is not None and self.send_at > timezone.now():
                return Limit.SCHEDULE
            # Due: it waits for the dispatcher to give it a running slot (the status reason
            # says so once a tick found them all taken; until then, it is the next tick).
            return Limit.RUNNING_SLOTS
        if self.status == self.Status.PAUSED:
            return Limit.PAUSED if self.status_reason in ("", USER_PAUSE) else Limit.ERRORS
        return Limit.NONE

    def change_status(
        self, new: str, *, reason: str = "", only_if: Q | None = None, **fields: Any
    ) -> bool:
        """Move to `new` only if the status is still the one this object holds (and the row
        meets `only_if`): one conditional UPDATE, so of two processes acting at once exactly
        one wins. Returns whether it changed; raises CampaignTransitionError for a change the
        current status does not allow. The admin, the command line and the engine all
        change a campaign's status through here."""
        current = self.status
        self.check_transition(current, new)
        rows = Campaign.objects.filter(pk=self.pk, status=current)
        if only_if is not None:
            rows = rows.filter(only_if)
        now = timezone.now()
        changed = rows.update(status=new, status_reason=reason, updated_at=now, **fields)
        if changed:
            self.status, self.status_reason, self.updated_at = new, reason, now
            for name, value in fields.items():
                setattr(self, name, value)
            campaign_status_changed.send(sender=Campaign, campaign=self, old=current, new=new)
        return bool(changed)

    @property
    def pending(self) -> int:
        return max(self.total - self.sent - self.failed, 0)

    @property
    def progress(self) -> float:
        return (self.sent + self.failed) / self.total if self.total else 0.0

    @classmethod
    def check_transition(cls, current: str, new: str) -> None:
        if new not in cls.TRANSITIONS[current]:
            allowed = ", ".join(sorted(cls.TRANSITIONS[current])) or "none (it is final)"
            raise CampaignTransitionError(
                _(
                    "A %(current)s campaign cannot become %(new)s; from %(current)s it can "
                    "become: %(allowed)s."
                )
                % {"current": current, "new": new, "allowed": allowed}
            )


from campaigns.ab import ABTest, Variant  # noqa: E402, F401  (the app's models)
from campaigns.engagement import Click, Open, TrackedLink, Unsubscribe  # noqa: E402, F401
from campaigns.media import Media  # noqa: E402, F401
from campaigns.segments import Condition  # noqa: E402, F401
from campaigns.versions import CampaignVersion  # noqa: E402, F401
