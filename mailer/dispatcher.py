"""The dispatcher: admits due campaigns, shares the limits and the worker slots between them,
keeps the send slots busy, recovers abandoned claims and finishes campaigns whose ledger is
done.

It runs on every beat tick (once a second) and on events (a campaign started, a batch ended).
Ticks are serialised by a lock in Redis, and every change it makes is a conditional update,
so two dispatchers running at once (a duplicated beat) do no harm.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import Any

import structlog
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import LockError

from campaigns.models import SLOT_REASON, Campaign
from mailer import backoff, events, heartbeats, journal, leases, ledger, scheduler, throttle, tx
from mailer.models import DomainThrottle, PerformanceSettings, SmtpServer
from mailer.smtp import ServerConfig
from settings import queues
from settings.redis import get_redis, key

log = structlog.get_logger(__name__)

TICK_LOCK_SECONDS = 30


@contextmanager
def tick_lock() -> Iterator[bool]:
    """Yields whether this tick holds the lock (a tick that does not just returns)."""
    lock = get_redis().lock(key("dispatcher", "lock"), timeout=TICK_LOCK_SECONDS)
    acquired = lock.acquire(blocking=False)
    try:
        yield acquired
    finally:
        if acquired:
            # It may have expired and been taken by another tick: that one is not ours.
            with suppress(LockError):
                lock.release()


# Ticks asked for while another ran are run by that one, up to this many times in a row.
MAX_TICKS_IN_A_ROW = 5


def tick() -> None:
    """One tick, or, while another runs, a request that it run once more when done: a tick
    asked for by an event (a campaign started, a batch that found nothing to do) is never
    lost to the lock; it used to wait for beat's next tick, up to a second later."""
    redis = get_redis()
    again = key("dispatcher", "again")
    redis.set(again, 1, ex=TICK_LOCK_SECONDS)
    for _ in range(MAX_TICKS_IN_A_ROW):
        with tick_lock() as acquired:
            if not acquired:
                return  # the tick that holds the lock looks at `again` when it is done
            redis.delete(again)
            tick_once()
        # Checked after the lock is released: a request made before it was released found
        # the lock taken and left its tick to this loop; one made after ran its own.
        if not redis.exists(again):
            return


def tick_once() -> None:
    performance = PerformanceSettings.load()
    # Recover and finish first, so that a slot freed by a finished campaign is given to
    # a waiting one in the same tick.
    for campaign_id, kind in running_ids():
        recover_abandoned_claims(campaign_id)
        if kind != Campaign.Kind.STEP:  # a sequence's step never runs out of recipients
            finish_if_done(campaign_id)
    admit_due_campaigns(performance)
    share_limits(performance)
    fill_slots()
    tx.sweep(performance)
    get_redis().set(key("dispatcher", "last-tick"), str(time.time()))


def last_tick() -> float | None:
    """When a dispatcher last finished a tick (compose's health check of beat reads it)."""
    value = get_redis().get(key("dispatcher", "last-tick"))
    return float(value) if value else None


def running_ids() -> list[tuple[int, str]]:
    return list(Campaign.objects.filter(status=Campaign.Status.RUNNING).values_list("pk", "kind"))


def share_limits(performance: PerformanceSettings) -> None:
    """Publish which campaigns the send slots serve, by weight, and the live rate limits.

    Each campaign's rate is its share of the global rate by weight, within its own limit
    (throttle.allocate_rates); campaigns without due rows take no share.
    """
    running = Campaign.objects.filter(status=Campaign.Status.RUNNING).only(
        "pk", "weight", "rate_limit", "share_group"
    )
    active = [c for c in running if ledger.has_due_rows(c.pk)]
    # Campaigns of one group (a sequence's steps) share one weight among those with mail due.
    groups = Counter(c.share_group for c in active if c.share_group)
    weights = {c.pk: c.weight / (groups[c.share_group] if c.share_group else 1) for c in active}
    demands = [
        throttle.Demand(c.pk, weights[c.pk], c.effective_rate(performance.default_campaign_rate))
        for c in active
    ]
    server_rates: dict[str, float | int | None] = {
        ServerConfig.from_model(s).key: s.rate_limit for s in SmtpServer.objects.all()
    }
    # Servers that complained of too much mail send at their adaptive rate (mailer.backoff).
    server_rates.update(backoff.recover(server_rates))
    throttle.publish_limits(
        global_rate=performance.message_rate,
        campaign_rates=throttle.allocate_rates(performance.message_rate, demands),
        server_rates=server_rates,
        domain_rates=dict(DomainThrottle.objects.values_list("domain", "rate_limit")),
    )
    scheduler.publish_active(weights)


def slots_wanted() -> int:
    """Batches to keep in flight: one per send slot online, and half as many again queued,
    so that a slot whose batch ends finds the next one waiting."""
    slots = max(heartbeats.send_slots_online(), 1)
    return slots + (slots + 1) // 2


def fill_slots() -> int:
    """Enqueue batches until `slots_wanted` are in flight; returns how many were added."""
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
        queues.enqueue(queues.SEND_BATCH, batch_id=batch_id, campaigns=serving)
    return missing


def admit_due_campaigns(performance: PerformanceSettings) -> None:
    # A sequence's steps take no running slot (they run while their sequence is active), nor
    # do the variants of an A/B test (they go out together, as the test compares them).
    running = Campaign.objects.filter(
        status=Campaign.Status.RUNNING, kind=Campaign.Kind.CAMPAIGN
    ).count()
    due = Campaign.objects.filter(status=Campaign.Status.SCHEDULED).filter(
        Q(send_at__isnull=True) | Q(send_at__lte=timezone.now())
    )
    for campaign in due.order_by("send_at", "id"):
        if campaign.kind != Campaign.Kind.CAMPAIGN:  # a sequence's step, an A/B variant
            campaign_begin(campaign.pk)
            continue
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
        fields: dict[str, Any] = {}
        if first_start:
            # One set-based statement: enabled subscribers of the campaign's lists, confirmed
            # where the list is double opt-in, never unsubscribed, each address once.
            fields = {"total": ledger.snapshot(campaign), "started_at": timezone.now()}
        # The row is locked: the conditional update cannot lose to anyone now.
        campaign.change_status(Campaign.Status.RUNNING, **fields)
    log.info(
        "campaign started" if first_start else "campaign resumed",
        campaign_id=campaign.pk,
        total=campaign.total,
    )
    return True


def recover_abandoned_claims(campaign_id: int) -> int:
    """Settle rows held by batches that died: sent if their journal says so, else pending.

    A batch is dead when its process stopped beating while it held a lease (seen within
    seconds of a crash), or when it has held its rows longer than a lease without one. A
    missing lease alone is not proof: Redis may have lost its data while the batch is alive
    and about to record its rows, and taking them would send them twice.
    """
    holders = ledger.holders(campaign_id)
    if not holders:
        return 0
    alive = leases.live()
    proven = leases.proven_dead()
    overdue = timezone.now() - timedelta(seconds=leases.LEASE_SECONDS)
    dead = [
        holder
        for holder, oldest in holders.items()
        if holder is not None
        and holder not in alive
        and (holder in proven or oldest is None or oldest < overdue)
    ]
    settled = 0
    retry_unknown = PerformanceSettings.load().retry_unknown if dead else True
    for batch_id in dead:
        accepted, unanswered = journal.read(batch_id)
        # A message ended moments ago may still get its answer: its process may only be
        # frozen, and will journal the answer when it wakes. It stays with the batch a while.
        recent = time.time() - journal.UNKNOWN_GRACE
        keep = {d for d, at in unanswered.items() if at > recent}
        sent, returned = ledger.settle(
            campaign_id=campaign_id,
            batch_id=batch_id,
            sent_ids=accepted,
            unknown_ids=set(unanswered) - keep,
            retry_unknown=retry_unknown,
            keep_ids=keep,
        )
        # A batch serves several campaigns: its journal is needed until no campaign has its
        # rows any more.
        if not ledger.still_held(batch_id):
            journal.discard(batch_id)
            leases.settled(batch_id)
        settled += sent + returned
        if not sent + returned:
            continue  # only messages waiting for their answer are left with it
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


def finish_if_done(campaign_id: int) -> bool:
    """Mark a running campaign finished when none of its rows is pending or in flight (one
    conditional UPDATE: ledger.nothing_left)."""
    campaign = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.RUNNING).first()
    if campaign is None:
        return False
    done = campaign.change_status(
        Campaign.Status.FINISHED, only_if=ledger.nothing_left(), finished_at=timezone.now()
    )
    if done:
        # Send slots stop serving it at once (mailer.receivers answers the status change).
        campaign.refresh_from_db(fields=["total", "sent", "failed"])
        log.info(
            "campaign finished",
            campaign_id=campaign_id,
            total=campaign.total,
            sent=campaign.sent,
            failed=campaign.failed,
        )
    return bool(done)
