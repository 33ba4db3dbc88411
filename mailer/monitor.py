"""What the engine is doing now: per-campaign send rates and status summaries."""

from __future__ import annotations

import time
from typing import Any

from campaigns.models import Campaign
from mailer import scheduler, throttle
from mailer.dispatcher import SLOT_REASON
from mailer.models import PerformanceSettings
from mailer.redis_store import get_redis, key

RATE_WINDOW = 10
# Failures are counted per minute over this many seconds for the auto-pause threshold
# (PerformanceSettings.max_send_errors).
ERROR_WINDOW = 600
_COUNTER_TTL = 120


def note_sent(campaign_id: int, count: int) -> None:
    """Count messages sent this second; rates are read back from these per-second counters."""
    if count <= 0:
        return
    name = key("sent", campaign_id, int(time.time()))
    pipe = get_redis().pipeline(transaction=False)
    pipe.incrby(name, count)
    pipe.expire(name, _COUNTER_TTL)
    pipe.execute()


def note_failed(campaign_id: int, count: int) -> int:
    """Count failed sends; returns the failures of the last ERROR_WINDOW seconds."""
    minute = int(time.time()) // 60
    name = key("failed", campaign_id, minute)
    pipe = get_redis().pipeline(transaction=False)
    pipe.incrby(name, count)
    pipe.expire(name, ERROR_WINDOW + 120)
    pipe.mget(
        [key("failed", campaign_id, m) for m in range(minute - ERROR_WINDOW // 60 + 1, minute + 1)]
    )
    _, _, values = pipe.execute()
    return sum(int(v) for v in values if v)


def rate(campaign_id: int, window: int = RATE_WINDOW) -> float:
    """Messages per second over the last `window` complete seconds."""
    now = int(time.time())
    names = [key("sent", campaign_id, second) for second in range(now - window, now)]
    values = get_redis().mget(names)
    return sum(int(v) for v in values if v) / window


# Names the throttle gives its buckets -> what the status calls that limit.
_BUCKETS = {"global": "global_rate", "campaign": "campaign_rate", "server": "smtp_server"}


def _below_own_limit(campaign: Campaign) -> bool:
    share = get_redis().hget(throttle.limits_key(), throttle.field_campaign(campaign.pk))
    own = campaign.rate_limit or PerformanceSettings.load().default_campaign_rate
    return share is not None and (own is None or float(share) < own)


def limited_by(campaign: Campaign) -> str:
    """Which knob holds the campaign back now (empty: nothing; it is done or sending freely)."""
    if campaign.status == Campaign.Status.SCHEDULED:
        if campaign.status_reason.startswith(SLOT_REASON):
            return "running_slots"
        return "schedule"
    if campaign.status == Campaign.Status.PAUSED:
        return "errors" if campaign.status_reason.startswith("paused ") else "paused"
    if campaign.status != Campaign.Status.RUNNING:
        return ""
    bucket = throttle.limited_by(campaign.pk)
    if bucket in ("global", "campaign"):
        # Its campaign bucket holds its share of the global rate; when that share is its own
        # limit, the global bucket is just as full, and which of the two refused last says
        # nothing. What holds it back is then its own limit, otherwise the global rate.
        return "global_rate" if _below_own_limit(campaign) else "campaign_rate"
    if bucket:
        return _BUCKETS.get(bucket, bucket)  # "domain:gmail.com" stays as it is
    hold = scheduler.held(campaign.pk) or ""
    if hold.startswith("SMTP server"):
        return "smtp_server"
    if campaign.pk in scheduler.active_campaigns():
        # Due rows and no rate limit in the way: it sends as fast as its share of the
        # worker slots allows.
        return "worker_slots"
    return ""


def _server_hold(campaign: Campaign) -> str:
    hold = scheduler.held(campaign.pk) or ""
    return hold if hold.startswith("SMTP server") else ""


def campaign_summary(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.pk,
        "name": campaign.name,
        "status": campaign.status,
        "total": campaign.total,
        "sent": campaign.sent,
        "failed": campaign.failed,
        "pending": campaign.pending,
        "rate": round(rate(campaign.pk), 1),
        "waiting_reason": campaign.status_reason or _server_hold(campaign),
        "limited_by": limited_by(campaign),
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
    }
