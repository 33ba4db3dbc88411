"""Rows added to the ledger of a running campaign one group of subscribers at a time: the
messages of a sequence's step (automations.engine), where a campaign's are written once
at its start (mailer.ledger.snapshot).

The unique key (campaign, subscriber, round) makes each message once, however often a
crashed or repeated step asks for it; the campaign's total grows in the same statement.
"""

from __future__ import annotations

from typing import Any

from django.db import connection

from campaigns.audience import BASE_WHERE
from mailer.ledger import CAMPAIGN, DELIVERY, SUBSCRIBER

_APPEND_SQL = f"""
WITH wanted(sid, rnd) AS (
    SELECT * FROM unnest(%(subscribers)s::bigint[], %(rounds)s::integer[])
),
eligible AS (
    SELECT w.sid, w.rnd, s.email
    FROM wanted w JOIN {SUBSCRIBER} s ON s.id = w.sid
    WHERE {BASE_WHERE}
),
added AS (
    INSERT INTO {DELIVERY} (campaign_id, subscriber_id, email, status, attempts, reply, round)
    SELECT %(campaign)s, sid, email, 'pending', 0, '', rnd FROM eligible ORDER BY sid
    ON CONFLICT (campaign_id, subscriber_id, round) DO NOTHING
    RETURNING 1
),
counted AS (
    UPDATE {CAMPAIGN} SET total = total + (SELECT count(*) FROM added)
    WHERE id = %(campaign)s
    RETURNING 1
)
SELECT sid, (SELECT count(*) FROM counted) FROM eligible
"""  # noqa: S608 (only table names and fixed SQL are interpolated)


def append(*, campaign_id: int, subscriber_ids: list[int], rounds: list[int]) -> set[int]:
    """Queue the campaign's message for these subscribers (each with its round), those who
    still receive its lists' mail (enabled, on a list, confirmed where it is double opt-in);
    returns who they are. Who already has this round's message is not given another."""
    if not subscriber_ids:
        return set()
    params: dict[str, Any] = {
        "campaign": campaign_id,
        "subscribers": subscriber_ids,
        "rounds": rounds,
    }
    with connection.cursor() as cursor:
        cursor.execute(_APPEND_SQL, params)
        return {sid for sid, _ in cursor.fetchall()}
