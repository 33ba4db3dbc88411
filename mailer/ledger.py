"""The Delivery ledger: one row per recipient of a campaign, and every statement on it.

A row is written once when its campaign first starts (`snapshot`) and then only moves
`pending → sending → sent | failed` (`pending` again, later, after a temporary failure):
a batch `claim`s rows, `record`s what the server said, and `give_back`s what it did not get
to; the dispatcher `settle`s rows of batches that died and finishes a campaign when
`nothing_left`; a subscriber who leaves has their unsent rows dropped (`drop_pending`).

The hot statements are hand-written SQL, each one round trip: the claim reads the
campaign's status and the subscriber's name and attributes with the rows it takes, and the
record writes the campaign's counters in the same statement as the rows they count. The
tables of the other apps that they read and write are named here, from their models.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, F, Min, OuterRef, Q
from django.utils import timezone

from campaigns.audience import audience_where
from campaigns.models import Campaign
from mailer import counters, folding
from mailer.models import Delivery
from mailer.smtp import UNKNOWN_REPLY
from subscribers.addresses import domain_of
from subscribers.models import Subscriber, Subscription

DELIVERY = Delivery._meta.db_table
CAMPAIGN = Campaign._meta.db_table
SUBSCRIBER = Subscriber._meta.db_table

# --- Snapshot: the audience, written once --------------------------------------------------

_SNAPSHOT_TEMPLATE = f"""
INSERT INTO {DELIVERY} (campaign_id, subscriber_id, email, status, attempts, reply)
SELECT %(campaign)s, s.id, s.email, 'pending', 0, ''
FROM {SUBSCRIBER} s
WHERE {{where}}
ORDER BY s.id
"""  # noqa: S608 (only fixed SQL and placeholders are interpolated)

# The audience of a campaign without conditions (the benchmark times this statement).
SNAPSHOT_SQL = _SNAPSHOT_TEMPLATE.replace("{where}", audience_where(0, [])[0])


def snapshot(campaign: Campaign) -> int:
    """Write the campaign's audience to the ledger in one INSERT … SELECT; returns its size.

    The same WHERE clause counts the audience in the admin (campaigns.audience), so the
    count shown before the start is the count sent.
    """
    where, params = audience_where(campaign.pk, campaign.condition_triples(), campaign.behaviours())
    with connection.cursor() as cursor:
        cursor.execute(_SNAPSHOT_TEMPLATE.replace("{where}", where), params)
        return cursor.rowcount


# --- Claim, record, give back: a batch's statements ----------------------------------------


@dataclass
class Claimed:
    id: int
    email: str
    attempts: int
    name: str
    attributes: dict[str, Any]
    enabled: bool
    subscriber_id: int | None
    uuid: str = ""  # the subscriber's public id ({{ subscriber.uuid }})

    @property
    def domain(self) -> str:
        return domain_of(self.email)


_CLAIM_TEMPLATE = f"""
WITH claimed AS (
    UPDATE {DELIVERY} d
    SET status = 'sending', claimed_by = %(batch)s, claimed_at = now()
    WHERE d.id IN (
        SELECT id FROM {DELIVERY}
        WHERE campaign_id = %(campaign)s AND status = 'pending'
          AND (next_attempt_at IS NULL OR next_attempt_at <= now())
          {{skip_domains}}
          AND EXISTS (
            SELECT 1 FROM {CAMPAIGN} WHERE id = %(campaign)s AND status = 'running'
          )
        ORDER BY id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    )
    RETURNING d.id, d.email, d.attempts, d.subscriber_id
)
SELECT c.id, c.email, c.attempts, coalesce(s.name, ''), coalesce(s.attributes, '{{}}'::jsonb),
       coalesce(s.status = 'enabled', false), c.subscriber_id, coalesce(s.uuid::text, '')
FROM claimed c LEFT JOIN {SUBSCRIBER} s ON s.id = c.subscriber_id
ORDER BY c.id
"""  # noqa: S608 (only table names and placeholders are interpolated)
# Without domains to skip, the statement has no per-row domain test at all.
CLAIM_SQL = _CLAIM_TEMPLATE.replace("{skip_domains}", "")
CLAIM_SKIPPING_SQL = _CLAIM_TEMPLATE.replace(
    "{skip_domains}", "AND split_part(email, '@', 2) <> ALL(%(skip_domains)s::text[])"
)


def claim(
    *, campaign_id: int, batch_id: str, limit: int, skip_domains: list[str] | None = None
) -> list[Claimed]:
    """Take up to `limit` due pending rows; SKIP LOCKED means two batches never share a row.

    Only rows of a running campaign are taken, so pause and cancel hold at the next chunk.
    Rows to `skip_domains` (domains whose throttle is empty now) stay where they are, so
    that a throttled domain does not hold back the rest of the campaign.
    """
    params: dict[str, Any] = {
        "batch": batch_id,
        "campaign": campaign_id,
        "limit": limit,
        "skip_domains": skip_domains or [],
    }
    # One statement, so one implicit transaction: no BEGIN and COMMIT round trips.
    with connection.cursor() as cursor:
        cursor.execute(CLAIM_SKIPPING_SQL if skip_domains else CLAIM_SQL, params)
        rows = cursor.fetchall()
    # Django's psycopg setup hands jsonb back as text, for JSONField to decode.
    return [
        Claimed(
            i,
            email,
            attempts,
            name,
            json.loads(attrs) if isinstance(attrs, str) else attrs,
            ok,
            subscriber_id,
            uuid,
        )
        for i, email, attempts, name, attrs, ok, subscriber_id, uuid in rows
    ]


@dataclass
class Result:
    delivery_id: int
    status: str
    reply: str
    next_attempt_at: datetime | None = None
    # Attempts this result uses up: none when the server refused for its own reasons (it
    # complained of too much mail, mailer.backoff), not for the recipient's.
    attempts: int = 1


# Fixed text, so psycopg parses it once per process (a VALUES list of one row per result made
# a new statement per chunk size, split and sent anew each time); the results go as arrays.
_RECORD_SQL = f"""
WITH v AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(statuses)s::text[], %(replies)s::text[],
                         %(next)s::timestamptz[], %(attempts)s::integer[])
        AS v(id, status, reply, next_attempt_at, attempts)
),
updated AS (
    UPDATE {DELIVERY} d
    SET status = v.status, reply = v.reply, next_attempt_at = v.next_attempt_at,
        attempts = d.attempts + v.attempts,
        sent_at = CASE WHEN v.status = 'sent' THEN now() ELSE d.sent_at END,
        content_version = CASE WHEN v.status = 'sent' THEN %(version)s::integer
                               ELSE d.content_version END,
        claimed_by = NULL, claimed_at = NULL
    FROM v
    WHERE d.id = v.id AND d.claimed_by = %(batch)s AND d.status = 'sending'
    RETURNING d.status
)
UPDATE {CAMPAIGN}
SET sent = sent + (SELECT count(*) FROM updated WHERE status = 'sent'),
    failed = failed + (SELECT count(*) FROM updated WHERE status = 'failed')
WHERE id = %(campaign)s
"""  # noqa: S608 (only table names are interpolated)


def record(
    *, campaign_id: int, batch_id: str, results: list[Result], content_version: int | None = None
) -> None:
    """Write a chunk's outcomes (and, for the sent ones, the content version they were built
    from) and the campaign's counters in one statement."""
    if not results:
        return
    params: dict[str, Any] = {
        "ids": [r.delivery_id for r in results],
        "statuses": [r.status for r in results],
        "replies": [r.reply for r in results],
        "next": [r.next_attempt_at for r in results],
        "attempts": [r.attempts for r in results],
        "version": content_version,
        "batch": batch_id,
        "campaign": campaign_id,
    }
    with connection.cursor() as cursor:  # one statement: its own transaction
        cursor.execute(_RECORD_SQL, params)


def give_back(*, batch_id: str, delivery_ids: list[int] | None) -> int:
    """Return claimed rows this batch did not get to, untouched, to `pending` (None: every
    row it still holds)."""
    if delivery_ids is not None and not delivery_ids:
        return 0  # twice a chunk, usually: before building a query (a third of a millisecond)
    rows = Delivery.objects.filter(claimed_by=batch_id, status=Delivery.Status.SENDING)
    if delivery_ids is not None:
        rows = rows.filter(id__in=delivery_ids)
    return rows.update(status=Delivery.Status.PENDING, claimed_by=None, claimed_at=None)


# --- The dispatcher's statements ------------------------------------------------------------


def has_due_rows(campaign_id: int) -> bool:
    return Delivery.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now()),
        campaign_id=campaign_id,
        status=Delivery.Status.PENDING,
    ).exists()


def holders(campaign_id: int) -> dict[str | None, datetime | None]:
    """The batches holding the campaign's rows in flight, each with its oldest claim."""
    return {
        None if holder is None else str(holder): oldest
        for holder, oldest in Delivery.objects.filter(
            campaign_id=campaign_id, status=Delivery.Status.SENDING
        )
        .values_list("claimed_by")
        .annotate(oldest=Min("claimed_at"))
        .values_list("claimed_by", "oldest")
    }


UNKNOWN_DEAD_REPLY = (
    f"{UNKNOWN_REPLY}: the worker died after sending the whole message, before the server's "
    "answer; counted as sent (Settings → Performance → retry unknown outcomes is off)"
)


def settle(
    *,
    campaign_id: int,
    batch_id: str,
    sent_ids: set[int],
    unknown_ids: Collection[int] = (),
    retry_unknown: bool = True,
    keep_ids: Collection[int] = (),
) -> tuple[int, int]:
    """Rows of a batch that died: those its send journal names are sent; those it ended
    without hearing the answer go back to pending with `retry_unknown`, else count as sent
    (outcome unknown); `keep_ids` stay with the batch for now (ended too recently to know);
    the rest go back to pending. Returns (sent, returned)."""
    with transaction.atomic():
        rows = Delivery.objects.filter(
            campaign_id=campaign_id, status=Delivery.Status.SENDING, claimed_by=batch_id
        ).exclude(id__in=keep_ids)
        sent = rows.filter(id__in=sent_ids).update(
            status=Delivery.Status.SENT,
            sent_at=timezone.now(),
            attempts=F("attempts") + 1,
            reply="accepted (recorded from the send journal after the worker died)",
            claimed_by=None,
            claimed_at=None,
        )
        unknown = rows.filter(id__in=unknown_ids)
        if retry_unknown:
            unanswered = unknown.count()  # pending again with the rest, just below
        else:
            unanswered = unknown.update(
                status=Delivery.Status.SENT,
                sent_at=timezone.now(),
                attempts=F("attempts") + 1,
                reply=UNKNOWN_DEAD_REPLY,
                claimed_by=None,
                claimed_at=None,
            )
            sent += unanswered
        counters.note_unknown(campaign_id, unanswered)
        returned = rows.update(status=Delivery.Status.PENDING, claimed_by=None, claimed_at=None)
        if sent:
            Campaign.objects.filter(pk=campaign_id).update(sent=F("sent") + sent)
    return sent, returned


def still_held(batch_id: str) -> bool:
    """Whether any campaign's rows are still claimed by the batch (a batch serves several)."""
    return Delivery.objects.filter(status=Delivery.Status.SENDING, claimed_by=batch_id).exists()


def nothing_left() -> Q:
    """The condition under which a running campaign is done: none of its rows pending or in
    flight. Two NOT EXISTS in the campaign's UPDATE (Campaign.change_status), so one
    statement and one snapshot: checked one after the other, a batch giving rows back
    (sending -> pending) between the two checks would make both look empty. Each uses its
    own partial index, where one `status IN (...)` would walk every row already sent."""
    rows = Delivery.objects.filter(campaign_id=OuterRef("pk"))
    return ~Exists(rows.filter(status=Delivery.Status.PENDING)) & ~Exists(
        rows.filter(status=Delivery.Status.SENDING)
    )


# --- A subscriber's rows --------------------------------------------------------------------


def drop_pending(*, subscriber: Subscriber, reason: str, keep_if_still_on_a_list: bool) -> int:
    """Take the subscriber's unsent messages out of running and waiting campaigns.

    The ledger is written when a campaign starts; someone who leaves afterwards must not
    get the rest. With `keep_if_still_on_a_list`, a campaign that also targets a list the
    subscriber is still on keeps its message.
    """
    pending = Delivery.objects.filter(subscriber=subscriber, status=Delivery.Status.PENDING)
    campaign_ids = set(pending.values_list("campaign_id", flat=True))
    if keep_if_still_on_a_list and campaign_ids:
        still_on = [
            s.mailing_list_id
            for s in Subscription.objects.filter(subscriber=subscriber).select_related(
                "mailing_list"
            )
            if s.receives_mail()
        ]
        campaign_ids -= set(
            Campaign.lists.through.objects.filter(
                campaign_id__in=campaign_ids, mailinglist_id__in=still_on
            ).values_list("campaign_id", flat=True)
        )
    dropped = 0
    for campaign_id in campaign_ids:
        with transaction.atomic():
            count = pending.filter(campaign_id=campaign_id).update(
                status=Delivery.Status.FAILED, reply=f"not sent: {reason}"
            )
            Campaign.objects.filter(pk=campaign_id).update(failed=F("failed") + count)
        dropped += count
    return dropped


def scrub(*, subscriber: Subscriber) -> None:
    """Remove an erased subscriber's address; sent rows stay, so campaign counts stay true."""
    Delivery.objects.filter(subscriber=subscriber).update(email="erased@invalid", subscriber=None)
    folding.scrub(subscriber.pk)


def last_campaign_to(email: str, *, since: datetime) -> int | None:
    """The campaign that last sent to the address since then (to tie a bounce to it)."""
    sent = [
        (d.sent_at, d.campaign_id)
        for d in Delivery.objects.filter(
            email=email, status=Delivery.Status.SENT, sent_at__gte=since
        ).order_by("-sent_at")[:1]
    ]
    for subscriber_id in Subscriber.objects.filter(email=email).values_list("pk", flat=True):
        sent += [
            (r.sent_at, r.campaign_id)
            for r in folding.rows_of(subscriber_id)
            if r.email == email and r.status == "sent" and r.sent_at and r.sent_at >= since
        ]
    return max(sent, key=lambda s: s[0] or since)[1] if sent else None


def messages_of(subscriber: Subscriber) -> list[dict[str, Any]]:
    """The campaigns' messages to a subscriber, for their data export."""
    rows = folding.ledger_of(subscriber.pk)
    names = dict(
        Campaign.objects.filter(pk__in={d.campaign_id for d in rows}).values_list("pk", "name")
    )
    return [
        {
            "campaign": names.get(d.campaign_id, ""),
            "status": d.status,
            "sent_at": d.sent_at.isoformat() if d.sent_at else None,
            "reply": d.reply,
        }
        for d in rows
    ]
