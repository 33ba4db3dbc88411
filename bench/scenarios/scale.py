"""Scenario 6: the audience snapshot and the admin at scale."""

from __future__ import annotations

import os
import time

from bench.scenarios.common import (
    Sampler,
    cancel_campaigns,
    create_campaign,
    db,
    import_audience,
    performance,
    reset,
)
from bench.stack import Stack


def scale(stack: Stack, sizes: list[int]) -> dict:
    """Scenario 6: import of the largest audience, snapshot time and worker RSS per size."""
    reset(stack)
    performance(stack)
    largest = max(sizes)
    import_seconds = import_audience(stack, largest, "everyone", "s")
    os.environ.update(stack.env)
    import django

    django.setup()
    from mailer.ledger import SNAPSHOT_SQL

    results: dict = {"import_subscribers": largest, "import_seconds": round(import_seconds, 2)}
    for size in sizes:
        with db(stack) as conn:
            conn.execute(
                "INSERT INTO subscribers_mailinglist (name, description, opt_in, is_public,"
                " created_at) VALUES (%s, '', 'single', false, now())",
                [f"size{size}"],
            )
            conn.execute(
                "INSERT INTO subscribers_subscription (subscriber_id, mailing_list_id, status,"
                " created_at, updated_at) SELECT s.id, l.id, 'confirmed', now(), now()"
                " FROM subscribers_subscriber s, subscribers_mailinglist l"
                " WHERE l.name = %s AND s.id <= %s",
                [f"size{size}", size],
            )
        campaign = create_campaign(stack, f"size {size}", [f"size{size}"])
        with db(stack) as conn:
            conn.execute("ANALYZE")
            started = time.monotonic()
            conn.execute(SNAPSHOT_SQL.replace("%(campaign)s", str(campaign)))
            snapshot = time.monotonic() - started
            conn.execute(
                "UPDATE campaigns_campaign SET status = 'running', started_at = now(),"
                " total = (SELECT count(*) FROM mailer_delivery WHERE campaign_id = %s)"
                " WHERE id = %s",
                [campaign, campaign],
            )
        workers = stack.start_engine(senders=1, concurrency=4)
        sampler = Sampler(stack, workers)
        sampler.start()
        time.sleep(20)
        sampler.stopped.set()
        cancel_campaigns(stack, campaign)
        stack.stop_engine()
        results[f"snapshot_seconds_{size}"] = round(snapshot, 3)
        results[f"worker_rss_mb_{size}"] = round(max(sampler.peak_rss.values()) / 2**20, 1)
        with db(stack) as conn:
            conn.execute("DELETE FROM mailer_delivery WHERE campaign_id = %s", [campaign])
    return results
