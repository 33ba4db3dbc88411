"""Events into the outbox: an Event row and one Delivery per endpoint that wants it, written
in the caller's transaction; a delivery task is queued once it commits (and the beat's sweep
finds anything whose task got lost)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from settings import queues
from webhooks.models import Delivery, Endpoint, Event


def emit(kind: str, data: dict[str, Any]) -> int:
    """Announce an event; returns how many endpoints will receive it."""
    endpoints = [e for e in Endpoint.objects.filter(is_enabled=True) if e.wants(kind)]
    if not endpoints:
        return 0
    payload = {"type": kind, "timestamp": timezone.now().isoformat(), "data": data}
    event = Event.objects.create(kind=kind, payload=payload)
    Delivery.objects.bulk_create([Delivery(endpoint=e, event=event) for e in endpoints])
    queues.enqueue_on_commit(queues.DELIVER_WEBHOOKS)
    return len(endpoints)
