"""Celery tasks: thin shells that take ids, call the engine, and log."""

from __future__ import annotations

from celery import shared_task

from mailer import batch, dispatcher


@shared_task(name="mailer.tasks.dispatch_tick", ignore_result=True)
def dispatch_tick() -> None:
    """Admit due campaigns, top up batch windows, recover stale claims, finish campaigns."""
    dispatcher.tick()


@shared_task(name="mailer.tasks.send_batch", ignore_result=True)
def send_batch(*, campaign_id: int, batch_id: str) -> dict[str, int]:
    """Send one batch of a campaign, then refill that campaign's window."""
    counts = batch.run_batch(campaign_id=campaign_id, batch_id=batch_id)
    if counts["claimed"]:
        dispatcher.top_up(campaign_id)
    else:
        # Nothing left to claim: the campaign may be done; let the dispatcher look now
        # rather than at its next tick.
        dispatch_tick.delay()
    return counts
