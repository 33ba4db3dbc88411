"""A transactional message: one recipient of `POST /api/tx`, of the project's own mail (the
e-mail backend: password resets, confirmations, test sends), recorded from the request to
the server's reply. Imported by mailer.models, so that Django finds it among the app's models.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _


class TxMessage(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    id = models.BigAutoField(_("ID"), primary_key=True)
    # Who asked (an API user, or none for the project's own mail), and the request's
    # Idempotency-Key: the same key from the same user within 24 h is the same request.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
    )
    idempotency_key = models.CharField(
        _("idempotency key"), max_length=255, blank=True, default="", db_default=""
    )
    # Its place among the request's recipients, and a digest of the request (a key reused
    # for another request is refused rather than answered with the first one's messages).
    position = models.PositiveIntegerField(_("position"), default=0, db_default=0)
    request_digest = models.CharField(
        _("request digest"), max_length=64, blank=True, default="", db_default=""
    )
    kind = models.CharField(_("kind"), max_length=40, default="api", db_default="api")
    template = models.ForeignKey(
        "campaigns.Template",
        verbose_name=_("template"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
    )
    subscriber = models.ForeignKey(
        "subscribers.Subscriber",
        verbose_name=_("subscriber"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
    )
    # The server it must go through (a campaign's test send: the campaign's); None: any.
    smtp_server = models.ForeignKey(
        "mailer.SmtpServer",
        verbose_name=_("SMTP server"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
    )
    to_email = models.CharField(_("to email"), max_length=320)
    envelope_from = models.CharField(_("envelope from"), max_length=320)
    subject = models.CharField(_("subject"), max_length=998, blank=True, default="")
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True, default="")
    # The encoded message, attachments included; emptied once it is sent or has failed.
    data = models.BinaryField(_("data"), default=b"")
    size = models.PositiveIntegerField(_("size"), default=0)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=Status.choices,
        default=Status.QUEUED,
        db_default="queued",
    )
    send_at = models.DateTimeField(_("send at"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0, db_default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    # When a task was last queued for it (the sweep queues one again if it got lost).
    enqueued_at = models.DateTimeField(_("enqueued at"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    reply = models.TextField(_("reply"), blank=True, default="")
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_default=Now())

    class Meta:
        verbose_name, verbose_name_plural = _("transactional message"), _("transactional messages")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["created_by", "idempotency_key", "position"],
                condition=~Q(idempotency_key=""),
                name="tx_idempotency_key_once",
            )
        ]
        indexes = [
            models.Index(
                fields=["status", "send_at"],
                condition=Q(status__in=["queued", "sending"]),
                name="tx_waiting",
            )
        ]

    def __str__(self) -> str:
        return f"{self.to_email}: {self.subject}"
