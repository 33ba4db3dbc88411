"""Celery tasks: thin shells that take ids, call the engine, and log."""

from __future__ import annotations

from typing import TypedDict

from celery import shared_task

from mailer import batch, dispatcher, folding, mailbox, rollups, transactional, tx
from mailer.smtp import ServerUnavailable
from settings import queues


class RetryOptions(TypedDict):
    autoretry_for: tuple[type[BaseException], ...]
    retry_backoff: int


# Transactional messages retry while their SMTP server is unreachable, 5 s, 10 s, 20 s, …
# apart; anything else (a bad address, a missing row) is not retried.
RETRY_WHILE_SERVER_UNAVAILABLE = RetryOptions(autoretry_for=(ServerUnavailable,), retry_backoff=5)


@shared_task(name=queues.DISPATCH_TICK, ignore_result=True)
def dispatch_tick() -> None:
    """Admit due campaigns, top up batch windows, recover stale claims, finish campaigns."""
    dispatcher.tick()


@shared_task(name=queues.SEND_BATCH, ignore_result=True)
def send_batch(*, batch_id: str, campaigns: list[str] | None = None) -> dict:
    """One send slot's turn (up to 20 s, chunks of whichever campaigns are due), then the
    next batch is queued so that the slot stays busy.

    `campaigns` names the campaigns running when the batch was queued, for Flower and the
    logs; the batch serves whichever of them are due, and its result counts per campaign.
    """
    summary = batch.run_batch(batch_id=batch_id)
    if dispatcher.fill_slots() == 0 and not summary["campaigns"]:
        # Nothing was sent: campaigns may be done; let the dispatcher look now rather than
        # at its next tick.
        dispatch_tick.delay()
    return summary


@shared_task(
    name=queues.SEND_TRANSACTIONAL,
    ignore_result=True,
    max_retries=5,
    **RETRY_WHILE_SERVER_UNAVAILABLE,
)
def send_transactional(
    *, kind: str, campaign_id: int, to: list[str], as_subscriber: str | None = None
) -> dict[str, str]:
    """A campaign's test send on the transactional queue (never behind bulk batches)."""
    if kind != "campaign_test":
        raise ValueError(f"unknown transactional message kind {kind!r}")
    return transactional.send_campaign_test(
        campaign_id=campaign_id, to=to, as_subscriber=as_subscriber
    )


@shared_task(
    name=queues.SEND_OPTIN_CONFIRMATION,
    ignore_result=True,
    # A confirmation is what a new subscriber waits for: it tries a few times longer.
    max_retries=8,
    **RETRY_WHILE_SERVER_UNAVAILABLE,
)
def send_optin_confirmation(*, subscriber_id: int, list_ids: list[int]) -> str:
    """The confirmation message of a double opt-in subscription (transactional queue)."""
    return transactional.send_optin_confirmation(subscriber_id=subscriber_id, list_ids=list_ids)


@shared_task(
    name=queues.SEND_SUBSCRIBER_NOTICE,
    ignore_result=True,
    max_retries=8,
    **RETRY_WHILE_SERVER_UNAVAILABLE,
)
def send_subscriber_notice(*, subscriber_id: int, kind: str) -> str:
    """A subscriber's data or preferences link, to their own address (transactional queue)."""
    return transactional.send_subscriber_notice(subscriber_id=subscriber_id, kind=kind)


@shared_task(name=queues.SEND_TX, ignore_result=True)
def send_tx(*, message_id: int) -> str:
    """One transactional message (`POST /api/tx`, the e-mail backend); it retries by its row,
    which the dispatcher's tick queues again when it is due."""
    return tx.deliver(message_id)


@shared_task(name=queues.READ_BOUNCE_MAILBOX, ignore_result=True)
def read_bounce_mailbox() -> dict:
    """Read the bounce mailbox (BOUNCE_MAILBOX_URL): bounces and complaints that arrive as
    mail, for providers without webhooks."""
    return mailbox.read_mailbox()


@shared_task(name=queues.ROLL_UP_CAMPAIGN, ignore_result=True)
def roll_up_campaign(*, campaign_id: int) -> bool:
    """Keep a finished campaign's figures from the ledger (mailer.rollups)."""
    return rollups.roll_up(campaign_id)


@shared_task(name=queues.FOLD_LEDGER, ignore_result=True)
def fold_ledger() -> int:
    """Fold the ledger of the oldest finished campaign that is due (mailer.folding)."""
    return folding.fold_next()
