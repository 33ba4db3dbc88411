from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from campaigns.models import RATE_MIN
from mailer import credentials
from mailer.single_row import SingleRow
from subscribers.addresses import normalise_domain


class SmtpServer(models.Model):
    class Security(models.TextChoices):
        NONE = "none", _("None (plain SMTP)")
        STARTTLS = "starttls", _("STARTTLS")
        TLS = "tls", _("TLS (SMTPS)")

    name = models.CharField(_("name"), max_length=100, unique=True)
    host = models.CharField(_("host"), max_length=255)
    port = models.PositiveIntegerField(
        _("port"), default=587, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    security = models.CharField(
        _("security"), max_length=8, choices=Security.choices, default=Security.STARTTLS
    )
    username = models.CharField(_("username"), max_length=255, blank=True)
    password_env = models.CharField(
        _("password variable"),
        max_length=100,
        blank=True,
        validators=[credentials.PASSWORD_ENV_RULE],
        help_text=_(
            "Name of the environment variable that holds the password (secrets are "
            "never stored in the database); it must start with SMTP_PASSWORD_, e.g. "
            "SMTP_PASSWORD_PROVIDER_A."
        ),
    )
    timeout = models.PositiveIntegerField(
        _("timeout"),
        default=20,
        validators=[MinValueValidator(1)],
        help_text=_("Seconds to wait for a reply."),
    )
    max_connections = models.PositiveIntegerField(
        _("max connections"),
        default=4,
        validators=[MinValueValidator(1)],
        help_text=_("Most open connections to this server from one worker process."),
    )
    rate_limit = models.PositiveIntegerField(
        _("rate limit"),
        null=True,
        blank=True,
        validators=[RATE_MIN],
        help_text=_(
            "Most messages per second through this server, across all workers. "
            "Empty: no limit beyond the global rate."
        ),
    )
    weight = models.PositiveSmallIntegerField(
        _("weight"),
        default=1,
        validators=[MinValueValidator(1)],
        help_text=_("Share of campaigns without a chosen server that go through this one."),
    )
    is_enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        verbose_name, verbose_name_plural = _("SMTP server"), _("SMTP servers")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.host}:{self.port})"

    def clean(self) -> None:
        problem = credentials.plain_login_problem(
            name=self.name, host=self.host, security=self.security, username=self.username
        )
        if problem:
            raise ValidationError({"security": problem})

    def password(self) -> str:
        """The password, read from the environment only through a variable of the allowed
        form (checked here again: a row may have been written around the form)."""
        return credentials.password_from(self.password_env)


# A batch is one worker slot's turn of sending, cut off after this many seconds (mailer.batch).
BATCH_TURN_SECONDS = 20
# Retries of one recipient must end within this long, or a campaign never finishes.
LONGEST_RETRY_SPAN = 3 * 86400


class PerformanceSettings(SingleRow):
    """The single row of live engine settings (Settings → Performance in the admin)."""

    max_running_campaigns = models.PositiveSmallIntegerField(
        _("max running campaigns"),
        default=3,
        validators=[
            MinValueValidator(
                1,
                "At least one campaign must be able to run. To stop sending, pause the "
                "campaigns instead.",
            )
        ],
        help_text=_(
            "How many campaigns may send at once; the others wait for a running slot, "
            "with the reason on the status page. Running campaigns share the worker slots and "
            "the global rate by weight. 2 to 5 is typical."
        ),
    )
    message_rate = models.PositiveIntegerField(
        _("global message rate"),
        null=True,
        blank=True,
        validators=[RATE_MIN],
        help_text=_(
            "Most messages per second across every worker and campaign, e.g. what "
            "your provider or IP reputation allows. Empty: no limit beyond what the workers "
            "and SMTP servers manage."
        ),
    )
    default_campaign_rate = models.PositiveIntegerField(
        _("default campaign rate"),
        null=True,
        blank=True,
        validators=[RATE_MIN],
        help_text=_(
            "Messages per second for campaigns that set no rate of their own; at most "
            "the global rate. Empty: no limit of their own."
        ),
    )
    batch_size = models.PositiveIntegerField(
        _("batch size"),
        default=50,
        validators=[
            MinValueValidator(1, _("A batch size is at least 1 recipient.")),
            MaxValueValidator(1000, _("At most 1000 recipients per chunk.")),
        ],
        help_text=_(
            "Recipients a worker claims, sends and records at a time, and the unit "
            "in which campaigns share the workers. Smaller: fairer sharing and "
            "quicker pause; larger: less database work per message. 20 to 100 is "
            "typical; at most what a %(BATCH_TURN_SECONDS)s-second batch can send "
            "at the global rate."
        )
        % {"BATCH_TURN_SECONDS": BATCH_TURN_SECONDS},
    )
    max_send_errors = models.PositiveIntegerField(
        _("max send errors"),
        default=100,
        validators=[MinValueValidator(1, _("At least 1 error."))],
        help_text=_(
            "Failed sends within ten minutes after which a campaign pauses itself, with "
            "the last reply as the reason. Around 1% of a typical campaign, e.g. 100."
        ),
    )
    max_attempts = models.PositiveSmallIntegerField(
        _("max attempts"),
        default=5,
        validators=[
            MinValueValidator(1, _("At least 1 attempt.")),
            MaxValueValidator(20, _("At most 20 attempts.")),
        ],
        help_text=_(
            "Attempts per recipient on temporary failures (4xx, dropped connections) "
            "before the recipient is marked failed. 3 to 6 is typical."
        ),
    )
    retry_delay = models.PositiveIntegerField(
        _("retry delay"),
        default=60,
        validators=[MinValueValidator(1, _("At least 1 second."))],
        help_text=_(
            "Seconds before the first retry; each further retry waits twice as long "
            "(60 s and 5 attempts: retries after 1, 2, 4 and 8 minutes)."
        ),
    )
    retry_unknown = models.BooleanField(
        _("retry unknown outcomes"),
        default=True,
        db_default=True,
        help_text=_(
            "Send again a message whose outcome is unknown: the server got all of it, "
            "then the connection broke before its answer (or the worker died then). On by "
            "default, as MTAs do: the recipient may get it twice, but nobody misses it. Off, such "
            "a message counts as sent (the server most likely accepted it) and is not repeated."
        ),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name, verbose_name_plural = _("performance settings"), _("performance settings")
        constraints = [models.CheckConstraint(condition=Q(id=1), name="performance_single_row")]

    def __str__(self) -> str:
        return "Performance settings"

    def retry_span(self) -> int:
        """Seconds from a recipient's first attempt to its last."""
        return self.retry_delay * (2 ** (self.max_attempts - 1) - 1)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        rate, default = self.message_rate, self.default_campaign_rate
        if rate and default and default > rate:
            errors["default_campaign_rate"] = _(
                "The default campaign rate (%(default)s/s) is above the global rate "
                "(%(rate)s/s), which no campaign can exceed. Lower it, or raise the global rate."
            ) % {"default": default, "rate": rate}
        slowest = min(r for r in (rate, default, 10**9) if r)
        if self.batch_size and self.batch_size > slowest * BATCH_TURN_SECONDS:
            errors["batch_size"] = _(
                "At %(rate)s messages/s a batch sends at most %(most)s messages in its "
                "%(turn)s-second turn, so a chunk of %(size)s would be claimed and mostly "
                "handed back each time. Use %(most)s or less, or raise the rates."
            ) % {
                "rate": slowest,
                "most": slowest * BATCH_TURN_SECONDS,
                "turn": BATCH_TURN_SECONDS,
                "size": self.batch_size,
            }
        if self.retry_delay and self.max_attempts and self.retry_span() > LONGEST_RETRY_SPAN:
            errors["retry_delay"] = _(
                "With %(attempts)s attempts, retries would go on for %(hours)s hours and a "
                "campaign could not finish for that long; keep it within %(most)s hours by "
                "lowering the retry delay or the number of attempts."
            ) % {
                "attempts": self.max_attempts,
                "hours": self.retry_span() // 3600,
                "most": LONGEST_RETRY_SPAN // 3600,
            }
        if errors:
            raise ValidationError(errors)


class Delivery(models.Model):
    """The ledger: one row per recipient of a campaign, written once when it starts."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    # No foreign-key constraints in the database: the ledger is written once per campaign by
    # one INSERT … SELECT from the very rows it references, and PostgreSQL checks a foreign key
    # row by row, which made a million-recipient snapshot three times slower (12 s against 4 s
    # on the benchmark machine). Deletes still cascade or set null, through Django.
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        verbose_name=_("campaign"),
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_constraint=False,
        # The unique (campaign, subscriber, round) index serves every lookup by campaign.
        db_index=False,
    )
    subscriber = models.ForeignKey(
        "subscribers.Subscriber",
        verbose_name=_("subscriber"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
        db_constraint=False,
    )
    email = models.EmailField(_("email"), max_length=254)
    status = models.CharField(
        _("status"), max_length=7, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    # The batch that holds the row while it is `sending`; its lease in Redis says whether
    # that batch is still alive (see mailer.leases).
    claimed_by = models.UUIDField(_("claimed by"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    reply = models.CharField(
        _("reply"),
        max_length=500,
        blank=True,
        help_text=_("The SMTP server's reply to the last attempt."),
    )
    # The campaign's content version the message was built from (campaigns/versions.py).
    content_version = models.PositiveIntegerField(_("content version"), null=True, blank=True)
    # A sequence that a subscriber may go through again (a yearly date) sends each round
    # once; everything else is round 0.
    round = models.PositiveSmallIntegerField(_("round"), default=0, db_default=0)

    class Meta:
        verbose_name, verbose_name_plural = _("delivery"), _("deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "subscriber", "round"], name="one_delivery_per_round"
            )
        ]
        indexes = [
            # Claiming: the next pending rows of a campaign, in order.
            models.Index(
                fields=["campaign", "id"],
                condition=Q(status="pending"),
                name="delivery_pending",
            ),
            # Recovery: rows held by batches, to check their leases.
            models.Index(
                fields=["campaign", "claimed_by"],
                condition=Q(status="sending"),
                name="delivery_sending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.status})"

    def clean(self) -> None:
        if self.status == self.Status.SENT and self.sent_at is None:
            raise ValidationError(_("A sent delivery needs sent_at."))


class DomainThrottle(models.Model):
    """A rate limit for one recipient domain, e.g. at most 50 messages/s to gmail.com."""

    domain = models.CharField(
        _("domain"),
        max_length=255,
        unique=True,
        help_text=_("Recipient domain, exactly as after the @, e.g. gmail.com."),
    )
    rate_limit = models.PositiveIntegerField(
        _("rate limit"),
        validators=[
            MinValueValidator(
                1,
                _(
                    "A rate is at least 1 message per second. To lift the limit, delete the "
                    "throttle."
                ),
            )
        ],
        help_text=_("Most messages per second to this domain, across every campaign and worker."),
    )

    class Meta:
        verbose_name, verbose_name_plural = _("domain throttle"), _("domain throttles")
        ordering = ["domain"]

    def __str__(self) -> str:
        return f"{self.domain}: {self.rate_limit}/s"

    def save(self, *args, **kwargs) -> None:
        self.domain = normalise_domain(self.domain)
        super().save(*args, **kwargs)


from mailer.bounce_models import Bounce, BounceSettings  # noqa: E402, F401  (the app's models)
from mailer.mailbox_models import MailboxReport  # noqa: E402, F401
from mailer.rollup_models import CampaignRollup, LedgerBlock  # noqa: E402, F401
from mailer.tx_models import TxMessage  # noqa: E402, F401
