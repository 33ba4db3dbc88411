"""Scenario 7: how soon pause, resume and cancel take effect."""

from __future__ import annotations

import time

from bench.scenarios.common import (
    cancel_campaigns,
    create_campaign,
    db,
    import_audience,
    performance,
    reset,
    start_campaigns,
    wait_status,
)
from bench.stack import Stack


def control_latency(stack: Stack) -> dict:
    """Scenario 7: pause to the last message sent, resume to the first."""
    reset(stack)
    performance(stack)
    import_audience(stack, 100_000, "control", "c")
    campaign = create_campaign(stack, "control", ["control"])
    stack.start_engine(senders=2, concurrency=4)
    start_campaigns(stack, campaign)
    wait_status(stack, campaign, "running")
    time.sleep(3)
    # The instants of the status changes themselves (the command's own start-up excluded).
    changed = "SELECT updated_at FROM campaigns_campaign WHERE id = %s"
    stack.manage("campaign", "pause", str(campaign))
    time.sleep(3)
    with db(stack) as conn:
        paused_at = conn.execute(changed, [campaign]).fetchone()[0]
        last = conn.execute(
            "SELECT max(sent_at) FROM mailer_delivery WHERE campaign_id = %s", [campaign]
        ).fetchone()[0]
    stack.manage("campaign", "resume", str(campaign))
    with db(stack) as conn:
        resumed_at = conn.execute(changed, [campaign]).fetchone()[0]
    first = None
    deadline = time.monotonic() + 30
    while first is None and time.monotonic() < deadline:
        with db(stack) as conn:
            first = conn.execute(
                "SELECT min(sent_at) FROM mailer_delivery WHERE campaign_id = %s AND sent_at > %s",
                [campaign, resumed_at],
            ).fetchone()[0]
        time.sleep(0.05)
    cancel_campaigns(stack, campaign)
    stack.stop_engine()
    return {
        "pause_to_last_sent_seconds": round(max((last - paused_at).total_seconds(), 0), 3),
        "resume_to_first_sent_seconds": round((first - resumed_at).total_seconds(), 3)
        if first
        else None,
    }
