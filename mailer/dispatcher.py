"""The dispatcher: admits due campaigns, keeps each one's window of batches filled, recovers
abandoned claims and finishes campaigns whose ledger is done.

It runs on every beat tick (once a second) and on events (a campaign started, a batch ended).
Ticks are serialised by a lock in Redis, and every change it makes is a conditional update,
so two dispatchers running at once (a duplicated beat) do no harm.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.models import Campaign
from mailer import leases
from mailer.models import Delivery, PerformanceSettings
from mailer.redis_store import get_redis, key

log = logging.getLogger(__name__)

# Batches in flight per running campaign. Each batch claims `batch_size` rows, so a window of
# two keeps one batch sending while the next waits in the queue, without ever filling the
# shared `send` queue with one campaign's work.
WINDOW = 2
TICK_LOCK_SECONDS = 30
SLOT_REASON = "waiting for a running slot"


@contextmanager
def tick_lock() -> Iterator[bool]:
    client = get_redis()
    name = key("dispatcher", "lock")
    token = uuid.uuid4().hex
    acquired = bool(client.set(name, token, nx=True, ex=TICK_LOCK_SECONDS))
    try:
        yield acquired
    finally:
        if acquired:
            # Delete only our own lock: it may have expired and been taken by another tick.
            client.eval(
                "if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end",
                1,
                name,
                token,
            )


def tick() -> None:
    with tick_lock() as acquired:
        if not acquired:
            return
        performance = PerformanceSettings.load()
        admit_due_campaigns(performance)
        for campaign in Campaign.objects.filter(status=Campaign.Status.RUNNING):
            recover_abandoned_claims(campaign.pk)
            if finish_if_done(campaign.pk):
                continue
            top_up(campaign.pk)


def admit_due_campaigns(performance: PerformanceSettings) -> None:
    running = Campaign.objects.filter(status=Campaign.Status.RUNNING).count()
    due = Campaign.objects.filter(status=Campaign.Status.SCHEDULED).filter(
        Q(send_at__isnull=True) | Q(send_at__lte=timezone.now())
    )
    for campaign in due.order_by("send_at", "id"):
        if running < performance.max_running_campaigns:
            if campaign_begin(campaign.pk):
                running += 1
            continue
        reason = (
            f"{SLOT_REASON}: {running} of {performance.max_running_campaigns} in use "
            "(Settings → Performance → max running campaigns)"
        )
        if campaign.status_reason != reason:
            Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SCHEDULED).update(
                status_reason=reason
            )
        if not campaign.status_reason.startswith(SLOT_REASON):
            log.warning(
                "campaign held back",
                extra={
                    "campaign_id": campaign.pk,
                    "limited_by": "running_slots",
                    "running": running,
                    "max_running_campaigns": performance.max_running_campaigns,
                },
            )


SNAPSHOT_SQL = """
INSERT INTO mailer_delivery (campaign_id, subscriber_id, email, status, attempts, reply)
SELECT %(campaign)s, s.id, s.email, 'pending', 0, ''
FROM subscribers_subscriber s
WHERE s.status = 'enabled'
  AND EXISTS (
    SELECT 1
    FROM subscribers_subscription sub
    JOIN subscribers_mailinglist l ON l.id = sub.mailing_list_id
    WHERE sub.subscriber_id = s.id
      AND sub.mailing_list_id IN (
        SELECT mailinglist_id FROM campaigns_campaign_lists WHERE campaign_id = %(campaign)s
      )
      AND (sub.status = 'confirmed' OR (sub.status = 'unconfirmed' AND l.opt_in = 'single'))
  )
ORDER BY s.id
ON CONFLICT (campaign_id, subscriber_id) DO NOTHING
"""


def campaign_begin(campaign_id: int) -> bool:
    """Move a due campaign to running; on its first start, write its audience to the ledger."""
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(skip_locked=True)
            .filter(pk=campaign_id, status=Campaign.Status.SCHEDULED)
            .first()
        )
        if campaign is None:
            return False  # another dispatcher got there first, or it was paused meanwhile
        first_start = campaign.started_at is None
        if first_start:
            # One set-based statement: enabled subscribers of the campaign's lists, confirmed
            # where the list is double opt-in, never unsubscribed, each address once.
            with connection.cursor() as cursor:
                cursor.execute(SNAPSHOT_SQL, {"campaign": campaign.pk})
                campaign.total = cursor.rowcount
            campaign.started_at = timezone.now()
        campaign.status = Campaign.Status.RUNNING
        campaign.status_reason = ""
        campaign.save(update_fields=["status", "status_reason", "total", "started_at"])
    log.info(
        "campaign started" if first_start else "campaign resumed",
        extra={"campaign_id": campaign.pk, "total": campaign.total},
    )
    return True


def recover_abandoned_claims(campaign_id: int) -> int:
    """Return rows held by batches whose lease lapsed (their worker died) to `pending`."""
    holders = set(
        Delivery.objects.filter(campaign_id=campaign_id, status=Delivery.Status.SENDING)
        .values_list("claimed_by", flat=True)
        .distinct()
    )
    if not holders:
        return 0
    alive = leases.live(campaign_id)
    dead = [h for h in holders if h is None or str(h) not in alive]
    if not dead:
        return 0
    recovered = Delivery.objects.filter(
        Q(claimed_by__in=[h for h in dead if h is not None]) | Q(claimed_by__isnull=True),
        campaign_id=campaign_id,
        status=Delivery.Status.SENDING,
    ).update(status=Delivery.Status.PENDING, claimed_by=None, claimed_at=None)
    if recovered:
        log.warning(
            "stale claims recovered",
            extra={"campaign_id": campaign_id, "rows": recovered, "batches": len(dead)},
        )
    return recovered


def finish_if_done(campaign_id: int) -> bool:
    unfinished = Delivery.objects.filter(
        campaign_id=campaign_id,
        status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING],
    )
    if unfinished.exists():
        return False
    done = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.RUNNING).update(
        status=Campaign.Status.FINISHED, finished_at=timezone.now(), status_reason=""
    )
    if done:
        leases.forget(campaign_id)
        campaign = Campaign.objects.get(pk=campaign_id)
        log.info(
            "campaign finished",
            extra={
                "campaign_id": campaign_id,
                "total": campaign.total,
                "sent": campaign.sent,
                "failed": campaign.failed,
            },
        )
    return bool(done)


def top_up(campaign_id: int) -> int:
    """Enqueue batches until the campaign has WINDOW in flight; returns how many were added."""
    from mailer.tasks import send_batch

    in_flight = len(leases.live(campaign_id))
    if in_flight >= WINDOW:
        return 0
    has_due_rows = Delivery.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now()),
        campaign_id=campaign_id,
        status=Delivery.Status.PENDING,
    ).exists()
    if not has_due_rows:
        return 0
    added = 0
    for _ in range(WINDOW - in_flight):
        batch_id = str(uuid.uuid4())
        leases.grant(campaign_id, batch_id)
        send_batch.apply_async(kwargs={"campaign_id": campaign_id, "batch_id": batch_id})
        added += 1
    return added
