"""Scenario 4: how exactly a global or per-campaign rate limit holds."""

from __future__ import annotations

import time

from bench.scenarios.common import (
    cancel_campaigns,
    create_campaign,
    db_now,
    import_audience,
    largest_burst,
    performance,
    reset,
    sent_times,
    start_campaigns,
    wait_status,
)
from bench.stack import Stack


def rate_accuracy(stack: Stack, limit: int, scope: str, seconds: float = 30) -> dict:
    """Scenario 4: a global or per-campaign limit, measured over `seconds` of steady sending."""
    reset(stack)
    if scope == "global":
        performance(stack, message_rate=limit)
    else:
        performance(stack)
    needed = int(limit * (seconds + 8)) + 1000
    import_audience(stack, needed, "rate", f"rate{needed}-")
    campaign = create_campaign(
        stack, "rate", ["rate"], rate_limit=limit if scope == "campaign" else None
    )
    stack.start_engine(senders=1, concurrency=4)
    start_campaigns(stack, campaign)
    wait_status(stack, campaign, "running")
    time.sleep(3)  # past the start: the first batches, the snapshot's commit
    from datetime import timedelta

    start = db_now(stack)
    time.sleep(seconds + 0.5)
    times = sent_times(stack, campaign, start, start + timedelta(seconds=seconds))
    cancel_campaigns(stack, campaign)
    stack.stop_engine()
    measured = len(times) / seconds
    return {
        "limit": limit,
        "measured_per_second": round(measured, 2),
        "ratio": round(measured / limit, 4),
        "largest_1s_burst": largest_burst(times),
        "burst_ratio": round(largest_burst(times) / limit, 3),
    }
