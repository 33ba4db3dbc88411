"""Celery tasks of the webhooks app (queue `default`)."""

from __future__ import annotations

from celery import shared_task

from settings import queues
from webhooks import delivery


@shared_task(name=queues.DELIVER_WEBHOOKS, ignore_result=True)
def deliver_webhooks() -> int:
    """Deliver the outbox's due webhooks (queued by each event, and by the beat)."""
    return delivery.deliver_due()
