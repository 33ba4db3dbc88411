"""Opens and clicks: recorded by the public endpoints into a Redis list in one round trip,
and written to PostgreSQL in batches by a periodic task, so a burst of opens after a send
never waits on the database. Each subscriber counts once per campaign (opens) and once per
link (clicks): a message's links loaded again and again add nothing."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction

from campaigns.models import Click, Open
from settings.redis import get_redis, key

# Events written per database transaction.
FLUSH_BATCH = 5000


def _events_key() -> str:
    return key("tracking", "events")


def record_open(*, campaign_id: int, subscriber_id: int) -> None:
    if not subscriber_id:  # a test message's pixel: there is nobody to count
        return
    event = {"k": "o", "c": campaign_id, "s": subscriber_id or None, "t": time.time()}
    get_redis().rpush(_events_key(), json.dumps(event))


def record_click(*, campaign_id: int, subscriber_id: int, link_id: int) -> None:
    if not subscriber_id:
        return
    event = {"k": "c", "c": campaign_id, "s": subscriber_id or None, "l": link_id, "t": time.time()}
    get_redis().rpush(_events_key(), json.dumps(event))


def flush(limit: int = 200_000) -> int:
    """Move recorded events from Redis to the database; returns how many were written."""
    client = get_redis()
    written = 0
    while written < limit:
        pipe = client.pipeline(transaction=True)
        pipe.lrange(_events_key(), 0, FLUSH_BATCH - 1)
        pipe.ltrim(_events_key(), FLUSH_BATCH, -1)
        raw, _ = pipe.execute()
        if not raw:
            break
        events = [json.loads(r) for r in raw]
        opens, clicks = [], []
        for e in events:
            at = datetime.fromtimestamp(e["t"], UTC)
            if e["k"] == "o":
                opens.append(Open(campaign_id=e["c"], subscriber_id=e["s"], at=at))
            else:
                clicks.append(
                    Click(campaign_id=e["c"], link_id=e["l"], subscriber_id=e["s"], at=at)
                )
        # A subscriber opens a campaign once and follows each of its links once, however
        # often their message's links are loaded: the first time is kept.
        with transaction.atomic():
            Open.objects.bulk_create(opens, ignore_conflicts=True)
            Click.objects.bulk_create(clicks, ignore_conflicts=True)
        written += len(events)
    return written


def campaign_stats(campaign_id: int, top: int = 10) -> dict[str, Any]:
    """Opens and clicks, total and by distinct subscriber, and the most clicked links."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT subscriber_id) FROM campaigns_open "
            "WHERE campaign_id = %s",
            [campaign_id],
        )
        opens, unique_opens = cursor.fetchone()
        cursor.execute(
            "SELECT count(*), count(DISTINCT subscriber_id) FROM campaigns_click "
            "WHERE campaign_id = %s",
            [campaign_id],
        )
        clicks, unique_clicks = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM campaigns_unsubscribe WHERE campaign_id = %s", [campaign_id]
        )
        (unsubscribes,) = cursor.fetchone()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT l.url, count(c.id), count(DISTINCT c.subscriber_id)
            FROM campaigns_trackedlink l JOIN campaigns_click c ON c.link_id = l.id
            WHERE l.campaign_id = %s
            GROUP BY l.url ORDER BY 2 DESC, l.url LIMIT %s
            """,
            [campaign_id, top],
        )
        top_links = [
            {"url": url, "clicks": n, "unique_clicks": unique} for url, n, unique in cursor
        ]
    return {
        "opens": opens,
        "unique_opens": unique_opens,
        "clicks": clicks,
        "unique_clicks": unique_clicks,
        "unsubscribes": unsubscribes,
        "top_links": top_links,
    }
