"""Celery tasks: thin shells that take ids, call the engine, and log."""

from __future__ import annotations

from celery import shared_task

from mailer import batch, dispatcher


@shared_task(name="mailer.tasks.dispatch_tick", ignore_result=True)
def dispatch_tick() -> None:
    """Admit due campaigns, top up batch windows, recover stale claims, finish campaigns."""
    dispatcher.tick()


@shared_task(name="mailer.tasks.send_batch", ignore_result=True)
def send_batch(*, batch_id: str) -> dict:
    """One send slot's turn (up to 20 s, chunks of whichever campaigns are due), then the
    next batch is queued so that the slot stays busy."""
    summary = batch.run_batch(batch_id=batch_id)
    if dispatcher.fill_slots() == 0 and not summary["campaigns"]:
        # Nothing was sent: campaigns may be done; let the dispatcher look now rather than
        # at its next tick.
        dispatch_tick.delay()
    return summary
