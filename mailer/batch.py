"""A batch: claim a slice of a campaign's pending deliveries, send them, record the results."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from email.utils import formatdate, parseaddr
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.rendering import PreparedContent
from mailer import leases, monitor
from mailer.message import build_message, encode_address, format_sender, message_id
from mailer.models import Delivery, PerformanceSettings
from mailer.smtp import Outcome, SendResult, ServerUnavailable, choose_server, pool

log = logging.getLogger(__name__)

# Results are written back, and the campaign's status checked, once per chunk: small enough
# that pause takes effect within about a second, large enough that the database sees one
# statement per CHUNK messages rather than one per message.
CHUNK = 50
# A batch gives its remaining rows back after this long, so that no campaign holds a worker
# slot for long and the dispatcher can share slots between campaigns.
MAX_BATCH_SECONDS = 20


@dataclass
class Claimed:
    id: int
    email: str
    attempts: int
    name: str
    attributes: dict[str, Any]
    enabled: bool


CLAIM_SQL = """
WITH claimed AS (
    UPDATE mailer_delivery d
    SET status = 'sending', claimed_by = %(batch)s, claimed_at = now()
    WHERE d.id IN (
        SELECT id FROM mailer_delivery
        WHERE campaign_id = %(campaign)s AND status = 'pending'
          AND (next_attempt_at IS NULL OR next_attempt_at <= now())
        ORDER BY id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    )
    RETURNING d.id, d.email, d.attempts, d.subscriber_id
)
SELECT c.id, c.email, c.attempts, coalesce(s.name, ''), coalesce(s.attributes, '{}'::jsonb),
       coalesce(s.status = 'enabled', false)
FROM claimed c LEFT JOIN subscribers_subscriber s ON s.id = c.subscriber_id
ORDER BY c.id
"""


def claim(*, campaign_id: int, batch_id: str, limit: int) -> list[Claimed]:
    """Take up to `limit` due pending rows; SKIP LOCKED means two batches never share a row."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(CLAIM_SQL, {"batch": batch_id, "campaign": campaign_id, "limit": limit})
        rows = cursor.fetchall()
    # Django's psycopg setup hands jsonb back as text, for JSONField to decode.
    return [
        Claimed(
            i, email, attempts, name, json.loads(attrs) if isinstance(attrs, str) else attrs, ok
        )
        for i, email, attempts, name, attrs, ok in rows
    ]


@dataclass
class Result:
    delivery_id: int
    status: str
    reply: str
    next_attempt_at: Any = None


def record(*, campaign_id: int, batch_id: str, results: list[Result]) -> None:
    """Write a chunk's outcomes and the campaign's counters in one transaction."""
    if not results:
        return
    values = ", ".join(["(%s::bigint, %s::text, %s::text, %s::timestamptz)"] * len(results))
    params: list[Any] = []
    for r in results:
        params += [r.delivery_id, r.status, r.reply, r.next_attempt_at]
    sql = f"""
    WITH v(id, status, reply, next_attempt_at) AS (VALUES {values}),
    updated AS (
        UPDATE mailer_delivery d
        SET status = v.status,
            reply = v.reply,
            next_attempt_at = v.next_attempt_at,
            attempts = d.attempts + 1,
            sent_at = CASE WHEN v.status = 'sent' THEN now() ELSE d.sent_at END,
            claimed_by = NULL,
            claimed_at = NULL
        FROM v
        WHERE d.id = v.id AND d.claimed_by = %s AND d.status = 'sending'
        RETURNING d.status
    )
    UPDATE campaigns_campaign
    SET sent = sent + (SELECT count(*) FROM updated WHERE status = 'sent'),
        failed = failed + (SELECT count(*) FROM updated WHERE status = 'failed')
    WHERE id = %s
    """  # noqa: S608 (only placeholders are interpolated)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [*params, batch_id, campaign_id])
    monitor.note_sent(campaign_id, sum(1 for r in results if r.status == Delivery.Status.SENT))


def give_back(*, batch_id: str, delivery_ids: list[int]) -> int:
    """Return claimed rows this batch did not get to, untouched, to `pending`."""
    if not delivery_ids:
        return 0
    return Delivery.objects.filter(
        id__in=delivery_ids, claimed_by=batch_id, status=Delivery.Status.SENDING
    ).update(status=Delivery.Status.PENDING, claimed_by=None, claimed_at=None)


# Prepared content per campaign, reused by every batch of that campaign in this process.
_prepared: dict[int, tuple[Any, PreparedContent]] = {}


def prepared_content(campaign: Campaign) -> PreparedContent:
    cached = _prepared.get(campaign.pk)
    if cached is not None and cached[0] == campaign.updated_at:
        return cached[1]
    content = PreparedContent(
        subject=campaign.subject,
        body=campaign.body,
        layout=campaign.template.html if campaign.template else None,
        is_html=campaign.format == Campaign.Format.HTML,
    )
    _prepared[campaign.pk] = (campaign.updated_at, content)
    return content


def retry_at(attempts: int, performance: PerformanceSettings):
    """After `attempts` attempts, when to try again; None once attempts are used up."""
    if attempts >= performance.max_attempts:
        return None
    return timezone.now() + timedelta(seconds=performance.retry_delay * 2 ** (attempts - 1))


def to_result(row: Claimed, sent: SendResult, performance: PerformanceSettings) -> Result:
    if sent.outcome == Outcome.SENT:
        return Result(row.id, Delivery.Status.SENT, sent.reply)
    if sent.outcome == Outcome.PERMANENT:
        return Result(row.id, Delivery.Status.FAILED, sent.reply)
    when = retry_at(row.attempts + 1, performance)
    if when is None:
        return Result(
            row.id,
            Delivery.Status.FAILED,
            f"gave up after {row.attempts + 1} attempts: {sent.reply}"[:500],
        )
    return Result(row.id, Delivery.Status.PENDING, sent.reply, when)


def campaign_status(campaign_id: int) -> str | None:
    return Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()


def run_batch(*, campaign_id: int, batch_id: str) -> dict[str, int]:
    """Send one batch of a campaign; returns counts for the task's log line."""
    started = time.monotonic()
    counts = {"claimed": 0, "sent": 0, "failed": 0, "retry": 0, "given_back": 0}
    leases.grant(campaign_id, batch_id, leases.LEASE_SECONDS)
    try:
        campaign = Campaign.objects.select_related("template").filter(pk=campaign_id).first()
        if campaign is None or campaign.status != Campaign.Status.RUNNING:
            return counts
        performance = PerformanceSettings.load()
        rows = claim(campaign_id=campaign_id, batch_id=batch_id, limit=performance.batch_size)
        counts["claimed"] = len(rows)
        if rows:
            _send_rows(campaign, batch_id, rows, performance, counts, started)
    finally:
        leases.release(campaign_id, batch_id)
    log.info(
        "batch done",
        extra={
            "campaign_id": campaign_id,
            "batch_id": batch_id,
            **counts,
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    return counts


def _send_rows(
    campaign: Campaign,
    batch_id: str,
    rows: list[Claimed],
    performance: PerformanceSettings,
    counts: dict[str, int],
    started: float,
) -> None:
    content = prepared_content(campaign)
    sender_header = format_sender(campaign.from_email or settings.DEFAULT_FROM_EMAIL)
    envelope_from = parseaddr(sender_header)[1]
    domain = envelope_from.rpartition("@")[2] or "localhost"
    date = formatdate(localtime=False)
    boundary = f"=_{uuid.uuid4().hex}"
    config = choose_server(campaign.smtp_server_id)
    campaign_context = {"id": campaign.pk, "name": campaign.name}
    next_renewal = time.monotonic() + leases.RENEW_EVERY
    done = 0
    try:
        connection_ = pool.acquire(config)
    except ServerUnavailable as error:
        counts["given_back"] = give_back(batch_id=batch_id, delivery_ids=[r.id for r in rows])
        log.error(
            "smtp server unavailable", extra={"campaign_id": campaign.pk, "error": str(error)}
        )
        return
    try:
        while done < len(rows):
            if campaign_status(campaign.pk) != Campaign.Status.RUNNING:
                break
            if time.monotonic() - started > MAX_BATCH_SECONDS:
                break
            chunk = rows[done : done + CHUNK]
            results: list[Result] = []
            for row in chunk:
                if not row.enabled:
                    results.append(
                        Result(row.id, Delivery.Status.FAILED, "not sent: subscriber blocklisted")
                    )
                    continue
                subscriber = {"email": row.email, "name": row.name, "attributes": row.attributes}
                rendered = content.render({"subscriber": subscriber, "campaign": campaign_context})
                to_header = encode_address(row.name, row.email)
                data = build_message(
                    headers=[
                        ("From", sender_header),
                        ("To", to_header),
                        ("Subject", rendered.subject),
                        ("Date", date),
                        (
                            "Message-ID",
                            message_id(
                                campaign_id=campaign.pk,
                                delivery_id=row.id,
                                domain=domain,
                                secret=settings.SECRET_KEY,
                            ),
                        ),
                        ("X-Campaign-ID", str(campaign.pk)),
                    ],
                    text=rendered.text,
                    html=rendered.html,
                    boundary=boundary,
                )
                results.append(
                    to_result(row, connection_.send(envelope_from, row.email, data), performance)
                )
                if time.monotonic() >= next_renewal:
                    leases.renew(campaign.pk, batch_id)
                    next_renewal = time.monotonic() + leases.RENEW_EVERY
            record(campaign_id=campaign.pk, batch_id=batch_id, results=results)
            for r in results:
                key = {"sent": "sent", "failed": "failed", "pending": "retry"}[r.status]
                counts[key] += 1
            done += len(chunk)
    finally:
        pool.release(connection_)
        counts["given_back"] += give_back(
            batch_id=batch_id, delivery_ids=[r.id for r in rows[done:]]
        )
