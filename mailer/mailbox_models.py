"""What the bounce mailbox read (mailer.mailbox): one row per message taken from it, so that a
message is applied once however often it is read, and every message that was not applied
says why and stays here to be looked at. Imported by mailer.models."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class MailboxReport(models.Model):
    class Outcome(models.TextChoices):
        APPLIED = "applied", _("Applied")
        UNMATCHED = "unmatched", _("Not tied to a message of ours")
        NOT_A_REPORT = "not_a_report", _("Not a bounce or complaint")
        UNREADABLE = "unreadable", _("Unreadable")

    # sha256 of the message as it was read: the same message read twice is one row.
    digest = models.CharField(_("digest"), max_length=64, unique=True)
    read_at = models.DateTimeField(_("read at"), auto_now_add=True)
    sender = models.CharField(_("sender"), max_length=254, blank=True)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    format = models.CharField(
        _("format"),
        max_length=5,
        help_text=_("dsn (RFC 3464), arf (RFC 5965), other (older formats), none."),
    )
    outcome = models.CharField(_("outcome"), max_length=12, choices=Outcome.choices)
    reason = models.CharField(
        _("reason"), max_length=500, blank=True, help_text=_("Why it was not applied.")
    )
    bounces = models.PositiveIntegerField(
        _("bounces"), default=0, help_text=_("Bounces and complaints recorded.")
    )
    # The message itself, kept when it was not applied (up to 1 MB), for a person to read.
    raw = models.BinaryField(_("raw"), blank=True, default=b"")

    class Meta:
        verbose_name, verbose_name_plural = _("mailbox report"), _("mailbox reports")
        ordering = ["-read_at"]
        indexes = [models.Index(fields=["outcome", "read_at"])]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()}: {self.subject or '(no subject)'}"
