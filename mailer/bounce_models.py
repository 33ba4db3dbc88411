"""Bounces and complaints, and the single row of settings that says when they blocklist a
subscriber. Imported by mailer.models, so that Django finds them among the app's models."""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from mailer.single_row import SingleRow


class BounceSettings(SingleRow):
    """The single row saying when bounces and complaints blocklist a subscriber."""

    hard_bounces = models.PositiveSmallIntegerField(
        _("hard bounces before blocklisting"),
        default=1,
        validators=[MinValueValidator(1)],
        help_text=_(
            "A hard bounce means the address does not exist or refuses mail for good; "
            "1 is what mailbox providers expect."
        ),
    )
    soft_bounces = models.PositiveSmallIntegerField(
        _("soft bounces before blocklisting"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_(
            "Soft bounces (mailbox full, temporarily refused) are counted; after this "
            "many within 30 days the address is blocklisted. Empty: never."
        ),
    )
    complaints = models.PositiveSmallIntegerField(
        _("complaints before blocklisting"),
        default=1,
        validators=[MinValueValidator(1)],
        help_text=_("A complaint is the recipient marking a message as spam; 1 is the norm."),
    )
    alert_bounce_rate = models.DecimalField(
        _("bounce rate that needs attention (%)"),
        max_digits=4,
        decimal_places=1,
        default=5,
        db_default=5,
        help_text=_("The dashboard lists a campaign whose bounces reach this share of its sent."),
    )

    class Meta:
        verbose_name, verbose_name_plural = _("bounce settings"), _("bounce settings")
        constraints = [models.CheckConstraint(condition=Q(id=1), name="bounce_settings_one_row")]

    def __str__(self) -> str:
        return "Bounce settings"


class Bounce(models.Model):
    """A bounce or complaint reported by a provider's webhook (or the generic endpoint)."""

    class Kind(models.TextChoices):
        HARD = "hard", _("Hard bounce")
        SOFT = "soft", _("Soft bounce")
        COMPLAINT = "complaint", _("Complaint")

    email = models.EmailField(_("email"), max_length=254, db_index=True)
    subscriber = models.ForeignKey(
        "subscribers.Subscriber",
        verbose_name=_("subscriber"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="bounces",
    )
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        verbose_name=_("campaign"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="bounces",
        help_text=_("The campaign the bounced message belonged to, when it is known."),
    )
    kind = models.CharField(_("kind"), max_length=9, choices=Kind.choices)
    source = models.CharField(
        _("source"), max_length=40, help_text=_("amazon_ses, sendgrid, …, or api.")
    )
    description = models.CharField(_("description"), max_length=500, blank=True)
    at = models.DateTimeField(_("time"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name, verbose_name_plural = _("bounce"), _("bounces")
        ordering = ["-at"]
        indexes = [models.Index(fields=["subscriber", "kind", "at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.email}"
