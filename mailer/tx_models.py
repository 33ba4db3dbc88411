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
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    id = models.BigAutoField(primary_key=True)
    # Who asked (an API user, or none for the project's own mail), and the request's
    # Idempotency-Key: the same key from the same user within 24 h is the same request.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    idempotency_key = models.CharField(max_length=255, blank=True, default="", db_default="")
    # Its place among the request's recipients, and a digest of the request (a key reused
    # for another request is refused rather than answered with the first one's messages).
    position = models.PositiveIntegerField(default=0, db_default=0)
    request_digest = models.CharField(max_length=64, blank=True, default="", db_default="")
    kind = models.CharField(max_length=40, default="api", db_default="api")
    template = models.ForeignKey(
        "campaigns.Template", null=True, blank=True, on_delete=models.SET_NULL
    )
    subscriber = models.ForeignKey(
        "subscribers.Subscriber", null=True, blank=True, on_delete=models.SET_NULL
    )
    # The server it must go through (a campaign's test send: the campaign's); None: any.
    smtp_server = models.ForeignKey(
        "mailer.SmtpServer", null=True, blank=True, on_delete=models.SET_NULL
    )
    to_email = models.CharField(max_length=320)
    envelope_from = models.CharField(max_length=320)
    subject = models.CharField(max_length=998, blank=True, default="")
    message_id = models.CharField(max_length=255, blank=True, default="")
    # The encoded message, attachments included; emptied once it is sent or has failed.
    data = models.BinaryField(default=b"")
    size = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, db_default="queued"
    )
    send_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, db_default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When a task was last queued for it (the sweep queues one again if it got lost).
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    reply = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

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
