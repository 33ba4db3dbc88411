"""How the engine answers what happens elsewhere: Celery workers starting and stopping
(heartbeats in Redis), and what the lower apps announce by Django signal (a campaign
paused, subscriptions ended, a subscriber erased or asking for their data). Connected in
MailerConfig.ready."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_process_init, worker_ready, worker_shutdown, worker_shutting_down
from django.db.models import Q

from campaigns.models import Campaign
from mailer import heartbeats, ledger, reports, scheduler, shutdown
from mailer.tx_models import TxMessage
from settings import audit, queues
from subscribers.models import Subscriber


@worker_ready.connect
def announce_worker(sender, **kwargs) -> None:
    consumer = sender  # the worker's consumer
    worker = consumer.controller
    queues = sorted(consumer.app.amqp.queues.consume_from)
    heartbeats.start_worker_heartbeat(
        hostname=consumer.hostname,
        queues=queues,
        concurrency=worker.concurrency,
        pool=type(worker.pool).__module__.rsplit(".", 1)[-1],
    )


@worker_shutdown.connect
def retire_worker(sender, **kwargs) -> None:
    heartbeats.stop_worker_heartbeat(sender.hostname)


@worker_process_init.connect
def prepare_pool_process(**kwargs) -> None:
    shutdown.install_in_pool_process()


@worker_shutting_down.connect
def stop_batches(sender, **kwargs) -> None:
    """SIGTERM (docker stop, a scale-down): batches give their rows back now, not at the end
    of their turn (mailer.shutdown)."""
    shutdown.notify_pool()


# Statuses in which no send slot may serve a campaign any more.
_STOPPED = (Campaign.Status.PAUSED, Campaign.Status.CANCELLED, Campaign.Status.FINISHED)


def audit_status(*, campaign: Campaign, old: str, new: str, **_: Any) -> None:
    """Every status change of a campaign, by whoever made it (the engine: no one)."""
    audit.record(campaign, "status", changes={"status": [old, new]}, reason=campaign.status_reason)


def roll_up_when_finished(*, campaign: Campaign, new: str, **_: Any) -> None:
    """A finished campaign's report figures are read from the ledger once, on a worker."""
    if new == Campaign.Status.FINISHED:
        queues.enqueue_on_commit(queues.ROLL_UP_CAMPAIGN, campaign_id=campaign.pk)


def stop_serving(*, campaign: Campaign, new: str, **_: Any) -> None:
    """Send slots stop picking a paused, cancelled or finished campaign now, not at the
    dispatcher's next tick."""
    if new in _STOPPED:
        scheduler.deactivate(campaign.pk)


def drop_unsent_after_leaving(*, subscriber: Subscriber, **_: Any) -> None:
    """Someone who left lists gets no more of the campaigns to them (those to a list they are
    still on keep their message)."""
    ledger.drop_pending(subscriber=subscriber, reason="unsubscribed", keep_if_still_on_a_list=True)


def forget_erased(*, subscriber: Subscriber, **_: Any) -> None:
    ledger.drop_pending(
        subscriber=subscriber, reason="subscriber erased", keep_if_still_on_a_list=False
    )
    ledger.scrub(subscriber=subscriber)
    # Transactional messages to them keep their state and reply, not the address or content.
    TxMessage.objects.filter(Q(subscriber=subscriber) | Q(to_email=subscriber.email)).update(
        to_email="erased", subject="", data=b"", subscriber=None
    )


def campaign_history(*, subscriber_id: int, limit: int, **_: Any) -> list[dict[str, Any]]:
    return reports.history_of(subscriber_id, limit)


def messages_sent_to(*, subscriber: Subscriber, **_: Any) -> dict[str, Any]:
    return {"messages": ledger.messages_of(subscriber)}
