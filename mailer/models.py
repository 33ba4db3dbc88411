from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


class SmtpServer(models.Model):
    class Security(models.TextChoices):
        NONE = "none", "None (plain SMTP)"
        STARTTLS = "starttls", "STARTTLS"
        TLS = "tls", "TLS (SMTPS)"

    name = models.CharField(max_length=100, unique=True)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(
        default=587, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    security = models.CharField(max_length=8, choices=Security.choices, default=Security.STARTTLS)
    username = models.CharField(max_length=255, blank=True)
    password_env = models.CharField(
        "password variable",
        max_length=100,
        blank=True,
        help_text="Name of the environment variable that holds the password (secrets are "
        "never stored in the database), e.g. SMTP_PASSWORD_PROVIDER_A.",
    )
    timeout = models.PositiveIntegerField(
        default=20, validators=[MinValueValidator(1)], help_text="Seconds to wait for a reply."
    )
    max_connections = models.PositiveIntegerField(
        default=4,
        validators=[MinValueValidator(1)],
        help_text="Most open connections to this server from one worker process.",
    )
    rate_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Most messages per second through this server, across all workers. "
        "Empty: no limit beyond the global rate.",
    )
    weight = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="Share of campaigns without a chosen server that go through this one.",
    )
    is_enabled = models.BooleanField("enabled", default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "SMTP server"

    def __str__(self) -> str:
        return f"{self.name} ({self.host}:{self.port})"


class PerformanceSettings(models.Model):
    """The single row of live engine settings (Settings → Performance in the admin)."""

    max_running_campaigns = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1)],
        help_text="How many campaigns may send at once; the others wait for a slot, with the "
        "reason shown. 2 to 5 is typical.",
    )
    message_rate = models.PositiveIntegerField(
        "global message rate",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Most messages per second across every worker and campaign. Empty: no limit.",
    )
    default_campaign_rate = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Messages per second for campaigns that set no rate of their own. Empty: "
        "no limit.",
    )
    batch_size = models.PositiveIntegerField(
        default=50,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Recipients a worker claims, sends and records at a time, and the unit in "
        "which campaigns share the workers. Smaller: fairer sharing and quicker pause; "
        "larger: less database work per message. 20 to 100 is typical.",
    )
    max_send_errors = models.PositiveIntegerField(
        default=100,
        validators=[MinValueValidator(1)],
        help_text="Failed sends within ten minutes after which a campaign pauses itself.",
    )
    max_attempts = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="Attempts per recipient on temporary failures (4xx, dropped connections) "
        "before the recipient is marked failed.",
    )
    retry_delay = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(1)],
        help_text="Seconds before the first retry; each further retry waits twice as long.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "performance settings"
        verbose_name_plural = "performance settings"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="performance_single_row")]

    def __str__(self) -> str:
        return "Performance settings"

    def save(self, *args, **kwargs) -> None:
        self.pk = 1
        super().save(*args, **kwargs)

    @classmethod
    def load(cls) -> PerformanceSettings:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class Delivery(models.Model):
    """The ledger: one row per recipient of a campaign, written once when it starts."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    # No foreign-key constraints in the database: the ledger is written once per campaign by
    # one INSERT … SELECT from the very rows it references, and PostgreSQL checks a foreign key
    # row by row, which made a million-recipient snapshot three times slower (12 s against 4 s
    # on the benchmark machine). Deletes still cascade or set null, through Django.
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_constraint=False,
    )
    subscriber = models.ForeignKey(
        "subscribers.Subscriber",
        null=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
        db_constraint=False,
    )
    email = models.EmailField(max_length=254)
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # The batch that holds the row while it is `sending`; its lease in Redis says whether
    # that batch is still alive (see mailer.leases).
    claimed_by = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    reply = models.CharField(
        max_length=500, blank=True, help_text="The SMTP server's reply to the last attempt."
    )

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "subscriber"], name="one_delivery_per_recipient"
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
            raise ValidationError("A sent delivery needs sent_at.")


class DomainThrottle(models.Model):
    """A rate limit for one recipient domain, e.g. at most 50 messages/s to gmail.com."""

    domain = models.CharField(
        max_length=255,
        unique=True,
        help_text="Recipient domain, exactly as after the @, e.g. gmail.com.",
    )
    rate_limit = models.PositiveIntegerField(
        validators=[MinValueValidator(1)],
        help_text="Most messages per second to this domain, across every campaign and worker.",
    )

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return f"{self.domain}: {self.rate_limit}/s"

    def save(self, *args, **kwargs) -> None:
        self.domain = self.domain.strip().lower()
        super().save(*args, **kwargs)
