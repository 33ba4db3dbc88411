"""The dispatcher: admits due campaigns, shares the limits and the worker slots between them,
keeps the send slots busy, recovers abandoned claims and finishes campaigns whose ledger is
done.

It runs on every beat tick (once a second) and on events (a campaign started, a batch ended).
Ticks are serialised by a lock in Redis, and every change it makes is a conditional update,
so two dispatchers running at once (a duplicated beat) do no harm.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from campaigns.audience import snapshot_sql
from campaigns.models import Campaign
from mailer import events, heartbeats, journal, leases, scheduler, throttle
from mailer.models import Delivery, DomainThrottle, PerformanceSettings, SmtpServer
from mailer.redis_store import get_redis, key
from mailer.smtp import ServerConfig

log = logging.getLogger(__name__)

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
        # Recover and finish first, so that a slot freed by a finished campaign is given to
        # a waiting one in the same tick.
        for campaign_id in running_ids():
            recover_abandoned_claims(campaign_id)
            finish_if_done(campaign_id)
        admit_due_campaigns(performance)
        share_limits(performance)
        fill_slots()


def running_ids() -> list[int]:
    return list(
        Campaign.objects.filter(status=Campaign.Status.RUNNING).values_list("pk", flat=True)
    )


def has_due_rows(campaign_id: int) -> bool:
    return Delivery.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now()),
        campaign_id=campaign_id,
        status=Delivery.Status.PENDING,
    ).exists()


def share_limits(performance: PerformanceSettings) -> None:
    """Publish which campaigns the send slots serve, by weight, and the live rate limits.

    Each campaign's rate is its share of the global rate by weight, within its own limit
    (throttle.allocate_rates); campaigns without due rows take no share.
    """
    running = Campaign.objects.filter(status=Campaign.Status.RUNNING).only(
        "pk", "weight", "rate_limit"
    )
    active = [c for c in running if has_due_rows(c.pk)]
    demands = [
        throttle.Demand(c.pk, c.weight, c.rate_limit or performance.default_campaign_rate)
        for c in active
    ]
    throttle.publish_limits(
        global_rate=performance.message_rate,
        campaign_rates=throttle.allocate_rates(performance.message_rate, demands),
        server_rates={
            ServerConfig.from_model(s).key: s.rate_limit for s in SmtpServer.objects.all()
        },
        domain_rates=dict(DomainThrottle.objects.values_list("domain", "rate_limit")),
    )
    scheduler.publish_active({c.pk: c.weight for c in active})


def slots_wanted() -> int:
    """Batches to keep in flight: one per send slot online, and half as many again queued,
    so that a slot whose batch ends finds the next one waiting."""
    slots = max(heartbeats.send_slots_online(), 1)
    return slots + (slots + 1) // 2


def fill_slots() -> int:
    """Enqueue batches until `slots_wanted` are in flight; returns how many were added."""
    from mailer.tasks import send_batch

    active = scheduler.active_campaigns()
    if not active:
        return 0
    missing = slots_wanted() - len(leases.live())
    if missing <= 0:
        return 0
    # A batch serves whichever of these the scheduler picks, chunk by chunk; they are named
    # in its arguments so that Flower and the logs show what a batch was for.
    serving = [
        f"{pk}: {name}"
        for pk, name in Campaign.objects.filter(pk__in=active).values_list("pk", "name")
    ]
    for _ in range(missing):
        batch_id = str(uuid.uuid4())
        leases.grant(batch_id)
        send_batch.apply_async(kwargs={"batch_id": batch_id, "campaigns": serving})
    return missing


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
            events.warn(
                "campaign held back",
                f"{campaign.name} waits for a running slot: {running} of "
                f"{performance.max_running_campaigns} in use.",
                campaign_id=campaign.pk,
                limited_by="running_slots",
                running=running,
                max_running_campaigns=performance.max_running_campaigns,
            )


# The audience of a campaign without conditions (the benchmark times this statement).
SNAPSHOT_SQL = snapshot_sql(0, [])[0]


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
            sql, params = snapshot_sql(campaign.pk, campaign.condition_triples())
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
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
    """Settle rows held by batches that died: sent if their journal says so, else pending.

    A batch is dead when its process stopped beating while it held a lease (seen within
    seconds of a crash), or when it has held its rows longer than a lease without one. A
    missing lease alone is not proof: Redis may have lost its data while the batch is alive
    and about to record its rows, and taking them would send them twice.
    """
    holders = dict(
        Delivery.objects.filter(campaign_id=campaign_id, status=Delivery.Status.SENDING)
        .values_list("claimed_by")
        .annotate(oldest=Min("claimed_at"))
        .values_list("claimed_by", "oldest")
    )
    if not holders:
        return 0
    alive = leases.live()
    proven = leases.proven_dead()
    overdue = timezone.now() - timedelta(seconds=leases.LEASE_SECONDS)
    dead = [
        str(holder)
        for holder, oldest in holders.items()
        if holder is not None
        and str(holder) not in alive
        and (str(holder) in proven or oldest is None or oldest < overdue)
    ]
    settled = 0
    for batch_id in dead:
        sent_ids = journal.sent_ids(batch_id)
        with transaction.atomic():
            rows = Delivery.objects.filter(
                campaign_id=campaign_id, status=Delivery.Status.SENDING, claimed_by=batch_id
            )
            sent = rows.filter(id__in=sent_ids).update(
                status=Delivery.Status.SENT,
                sent_at=timezone.now(),
                attempts=F("attempts") + 1,
                reply="accepted (recorded from the send journal after the worker died)",
                claimed_by=None,
                claimed_at=None,
            )
            returned = rows.update(status=Delivery.Status.PENDING, claimed_by=None, claimed_at=None)
            if sent:
                Campaign.objects.filter(pk=campaign_id).update(sent=F("sent") + sent)
        # A batch serves several campaigns: its journal is needed until no campaign has its
        # rows any more.
        if not Delivery.objects.filter(
            status=Delivery.Status.SENDING, claimed_by=batch_id
        ).exists():
            journal.discard(batch_id)
            leases.settled(batch_id)
        settled += sent + returned
        events.warn(
            "stale claims recovered",
            f"A batch of campaign {campaign_id} stopped without finishing (its worker died): "
            f"{sent} recipients recorded as sent from its journal, {returned} back to pending.",
            campaign_id=campaign_id,
            batch_id=batch_id,
            sent=sent,
            returned=returned,
        )
    return settled


FINISH_SQL = """
UPDATE campaigns_campaign
SET status = 'finished', finished_at = now(), status_reason = ''
WHERE id = %(campaign)s AND status = 'running'
  AND NOT EXISTS (
    SELECT 1 FROM mailer_delivery WHERE campaign_id = %(campaign)s AND status = 'pending'
  )
  AND NOT EXISTS (
    SELECT 1 FROM mailer_delivery WHERE campaign_id = %(campaign)s AND status = 'sending'
  )
"""


def finish_if_done(campaign_id: int) -> bool:
    """Mark a running campaign finished when none of its rows is pending or in flight.

    One statement, so one snapshot: checked one after the other, a batch giving rows back
    (sending -> pending) between the two checks would make both look empty. Each NOT EXISTS
    uses its own partial index, where a single `status IN (...)` would walk every row the
    campaign has already sent.
    """
    with connection.cursor() as cursor:
        cursor.execute(FINISH_SQL, {"campaign": campaign_id})
        done = cursor.rowcount
    if done:
        scheduler.deactivate(campaign_id)
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
