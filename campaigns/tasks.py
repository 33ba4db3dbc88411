"""Celery tasks of the campaigns app (queue `default`): thin shells over services."""

from __future__ import annotations

from celery import shared_task

from campaigns import tracking
from settings import queues


@shared_task(name=queues.FLUSH_TRACKING, ignore_result=True)
def flush_tracking() -> int:
    """Write the opens and clicks recorded in Redis to the database, in batches."""
    return tracking.flush()
