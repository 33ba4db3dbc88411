"""The folded ledger: a finished campaign's rows, a thousand to a row of arrays.

A ledger row in the hot table costs about 220 bytes with its indexes, and a finished
campaign's rows never change again. Some time after a campaign finishes (LEDGER_FOLD_AFTER_DAYS,
once its report's figures are kept: mailer.rollups) `fold` moves its rows, BLOCK at a time,
into `LedgerBlock`s: the i-th element of each array is the i-th row, and PostgreSQL compresses
each array as a whole (a thousand addresses of a few domains, one reply repeated, one sending
time per chunk). Each statement moves one range of rows, deleted and inserted together, so a
fold that stops half way leaves every row in exactly one of the two forms.

Nothing is lost: who got the message, its address, when, after how many attempts, the server's
reply, the content version. The view `mailer_ledger` shows both forms as one table (for SQL).
The project reads the folded rows where it needs a finished campaign's rows: a subscriber's
history and data export, erasure, bounces tied to their message, the segments of who received
a campaign. Only regular campaigns are folded; a sequence's step is never finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef
from django.utils import timezone

from campaigns.models import Campaign
from mailer.models import Delivery, LedgerBlock
from mailer.rollup_models import CampaignRollup

log = structlog.get_logger(__name__)

BLOCK = 1000
# Rows moved by one statement (one transaction), a whole number of blocks.
CHUNK = 100 * BLOCK

DELIVERY = Delivery._meta.db_table
BLOCKS = LedgerBlock._meta.db_table

_FOLD_SQL = f"""
WITH moved AS (
    DELETE FROM {DELIVERY}
    WHERE campaign_id = %(campaign)s AND id >= %(low)s AND id < %(high)s
      AND status IN ('sent', 'failed') AND round = 0
    RETURNING id, subscriber_id, email, status, attempts, sent_at, reply, content_version
),
numbered AS (
    SELECT *, (row_number() OVER (ORDER BY id) - 1) / {BLOCK} AS block FROM moved
),
placed AS (
    SELECT *, min(id) OVER (PARTITION BY block) AS first FROM numbered
)
INSERT INTO {BLOCKS} (campaign_id, first_id, last_id, min_subscriber, max_subscriber, size,
                      offsets, subscriber_ids, emails, statuses, attempts, sent_at, replies,
                      content_versions)
SELECT %(campaign)s, min(id), max(id), min(subscriber_id), max(subscriber_id), count(*),
       CASE WHEN max(id) - min(id) + 1 = count(*) THEN NULL
            ELSE array_agg((id - first)::integer ORDER BY id) END,
       array_agg(subscriber_id ORDER BY id), array_agg(email::text ORDER BY id),
       string_agg(CASE status WHEN 'sent' THEN 's' ELSE 'f' END, '' ORDER BY id),
       array_agg(attempts ORDER BY id), array_agg(sent_at ORDER BY id),
       array_agg(reply::text ORDER BY id), array_agg(content_version ORDER BY id)
FROM placed GROUP BY block
RETURNING size
"""  # noqa: S608 (only table names and a constant are interpolated)

# A block's rows, with the ledger's columns; {where} filters the blocks (b) and the rows.
ROWS_SQL = f"""
SELECT b.first_id + coalesce(b.offsets[u.n], u.n - 1) AS id, b.campaign_id, u.subscriber_id,
       u.email, CASE substr(b.statuses, u.n::integer, 1) WHEN 's' THEN 'sent'
                ELSE 'failed' END AS status,
       u.attempts, u.sent_at, u.reply, u.content_version
FROM {BLOCKS} b
CROSS JOIN LATERAL unnest(b.subscriber_ids, b.emails, b.attempts, b.sent_at, b.replies,
                          b.content_versions)
    WITH ORDINALITY AS u(subscriber_id, email, attempts, sent_at, reply, content_version, n)
WHERE {{where}}
"""  # noqa: S608 (only a table name is interpolated)

# The blocks that may hold a subscriber: the GiST index on the range of their subscribers.
HOLDS_SUBSCRIBER = (
    "int8range(b.min_subscriber, b.max_subscriber, '[]') @> %(subscriber)s::bigint "
    "AND u.subscriber_id = %(subscriber)s"
)


@dataclass
class FoldedRow:
    id: int
    campaign_id: int
    subscriber_id: int | None
    email: str
    status: str
    attempts: int
    sent_at: datetime | None
    reply: str
    content_version: int | None


def rows(where: str, params: dict[str, Any]) -> list[FoldedRow]:
    """Folded rows matching `where` (on the blocks `b` and the rows `u`), by delivery id."""
    with connection.cursor() as cursor:
        cursor.execute(ROWS_SQL.replace("{where}", where) + " ORDER BY 1", params)
        return [FoldedRow(*row) for row in cursor.fetchall()]


def rows_of(subscriber_id: int, campaign_ids: list[int] | None = None) -> list[FoldedRow]:
    """A subscriber's folded rows (in those campaigns only, if given)."""
    where = HOLDS_SUBSCRIBER
    params: dict[str, Any] = {"subscriber": subscriber_id}
    if campaign_ids is not None:
        where += " AND b.campaign_id = ANY(%(campaigns)s)"
        params["campaigns"] = campaign_ids
    return rows(where, params)


def deliveries_of(subscriber_id: int, campaign_ids: list[int] | None = None) -> list[Delivery]:
    """A subscriber's folded rows as (unsaved, read-only) Delivery objects, to be read beside
    the hot table's."""
    return [as_delivery(r) for r in rows_of(subscriber_id, campaign_ids)]


def ledger_of(subscriber_id: int) -> list[Delivery]:
    """Every ledger row of a subscriber, hot and folded, oldest first (the subscriber index,
    then the blocks' subscriber ranges): their history and their data export read this."""
    hot = list(Delivery.objects.filter(subscriber_id=subscriber_id))
    return sorted([*hot, *deliveries_of(subscriber_id)], key=lambda d: d.pk)


def as_delivery(r: FoldedRow) -> Delivery:
    return Delivery(
        pk=r.id,
        campaign_id=r.campaign_id,
        subscriber_id=r.subscriber_id,
        email=r.email,
        status=r.status,
        attempts=r.attempts,
        sent_at=r.sent_at,
        reply=r.reply,
        content_version=r.content_version,
    )


def row(campaign_id: int, delivery_id: int) -> FoldedRow | None:
    """One folded row by its delivery id (a bounce's Message-ID names both)."""
    # The block is the last one of the campaign to start at or before the id: one probe of
    # the unique (campaign, first id) index, where a range test on both ends walks it.
    found = rows(
        f"b.id = (SELECT id FROM {BLOCKS} WHERE campaign_id = %(campaign)s "  # noqa: S608
        "AND first_id <= %(id)s ORDER BY first_id DESC LIMIT 1) "
        "AND b.last_id >= %(id)s AND b.first_id + coalesce(b.offsets[u.n], u.n - 1) = %(id)s",
        {"campaign": campaign_id, "id": delivery_id},
    )
    return found[0] if found else None


def received_sql(param: str) -> str:
    """Subscriber ids (`s.id`) with a folded `sent` row of the campaign named by `param`:
    computed once for the whole segment (a hashed subplan), not once per subscriber. Erased
    subscribers' rows (no id) are left out, so that NOT IN stays true or false."""
    return f"""s.id IN (SELECT u.subscriber_id FROM {BLOCKS} b
        CROSS JOIN LATERAL unnest(b.subscriber_ids) WITH ORDINALITY AS u(subscriber_id, n)
        WHERE b.campaign_id = %({param})s AND u.subscriber_id IS NOT NULL
          AND substr(b.statuses, u.n::integer, 1) = 's')"""  # noqa: S608


def scrub(subscriber_id: int, email: str = "erased@invalid") -> int:
    """An erased subscriber's folded rows keep their outcome, lose their address and id."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {BLOCKS} b SET
                emails = (SELECT array_agg(CASE WHEN s = %(subscriber)s THEN %(email)s ELSE e END
                                           ORDER BY n)
                          FROM unnest(b.subscriber_ids, b.emails) WITH ORDINALITY AS u(s, e, n)),
                subscriber_ids = array_replace(b.subscriber_ids, %(subscriber)s::bigint, NULL)
            WHERE int8range(b.min_subscriber, b.max_subscriber, '[]') @> %(subscriber)s::bigint
              AND %(subscriber)s::bigint = ANY(b.subscriber_ids)
            """,  # noqa: S608
            {"subscriber": subscriber_id, "email": email},
        )
        return cursor.rowcount


def fold(campaign_id: int) -> int:
    """Fold a finished campaign's rows into blocks; returns how many rows moved. Refuses a
    campaign that is not a finished regular campaign with its figures kept."""
    campaign = Campaign.objects.get(pk=campaign_id)
    if campaign.kind != Campaign.Kind.CAMPAIGN or campaign.status != Campaign.Status.FINISHED:
        raise ValueError(
            f"Campaign {campaign_id} is {campaign.status} ({campaign.kind}): only a finished "
            "regular campaign's ledger can be folded."
        )
    if not CampaignRollup.objects.filter(pk=campaign_id).exists():
        raise ValueError(
            f"Campaign {campaign_id}'s report figures are not kept yet (mailer.rollups); "
            "its ledger is folded after they are."
        )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT min(id), max(id) FROM {DELIVERY} WHERE campaign_id = %s",  # noqa: S608
            [campaign_id],
        )
        low, high = cursor.fetchone()
        moved = 0
        if low is None:
            return 0
        while low <= high:
            params = {"campaign": campaign_id, "low": low, "high": low + CHUNK}
            cursor.execute(_FOLD_SQL, params)  # one statement: its own transaction
            moved += sum(size for (size,) in cursor.fetchall())
            low += CHUNK
    return moved


def due(now: datetime | None = None) -> list[int]:
    """Finished regular campaigns whose figures were kept LEDGER_FOLD_AFTER_DAYS ago or more
    and that still have rows in the hot table, oldest first."""
    before = (now or timezone.now()) - timedelta(days=settings.LEDGER_FOLD_AFTER_DAYS)
    hot = Delivery.objects.filter(campaign_id=OuterRef("pk"))
    return list(
        Campaign.objects.filter(
            kind=Campaign.Kind.CAMPAIGN,
            status=Campaign.Status.FINISHED,
            rollup__made_at__lte=before,
        )
        .filter(Exists(hot))
        .order_by("rollup__made_at")
        .values_list("pk", flat=True)
    )


def fold_next() -> int:
    """Fold the oldest campaign that is due, if any (the hourly task); rows moved."""
    for campaign_id in due()[:1]:
        moved = fold(campaign_id)
        log.info("ledger folded", campaign_id=campaign_id, rows=moved)
        return moved
    return 0
