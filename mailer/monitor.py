"""What the engine is doing now: per-campaign send rates and status summaries."""

from __future__ import annotations

import time
from typing import Any

from campaigns.models import Campaign
from mailer.dispatcher import SLOT_REASON
from mailer.redis_store import get_redis, key

RATE_WINDOW = 10
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


def rate(campaign_id: int, window: int = RATE_WINDOW) -> float:
    """Messages per second over the last `window` complete seconds."""
    now = int(time.time())
    names = [key("sent", campaign_id, second) for second in range(now - window, now)]
    values = get_redis().mget(names)
    return sum(int(v) for v in values if v) / window


def limited_by(campaign: Campaign) -> str:
    if campaign.status == Campaign.Status.SCHEDULED:
        if campaign.status_reason.startswith(SLOT_REASON):
            return "running_slots"
        return "schedule"
    if campaign.status == Campaign.Status.PAUSED:
        return "paused"
    return ""


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
        "waiting_reason": campaign.status_reason,
        "limited_by": limited_by(campaign),
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
    }
