"""A batch: claim a slice of a campaign's pending deliveries, send them within the limits,
record the results.

A batch is short by design (at most MAX_BATCH_SECONDS and `batch_size` rows), so that worker
slots keep rotating between campaigns and pause takes effect quickly. It never sleeps long in
a worker slot: when the rate limits would make it wait more than MAX_SLEEP, it gives its
unsent rows back and puts the campaign on hold until tokens are due.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import formatdate, parseaddr
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.rendering import PreparedContent
from mailer import heartbeats, leases, monitor, throttle
from mailer.journal import Journal
from mailer.message import build_message, encode_address, format_sender, message_id
from mailer.models import Delivery, DomainThrottle, PerformanceSettings
from mailer.redis_store import get_redis, key
from mailer.smtp import Outcome, SendResult, ServerConfig, ServerUnavailable, choose_server, pool

log = logging.getLogger(__name__)

# Results are written back, tokens taken and the campaign's status checked once per chunk:
# small enough that pause takes effect within a fraction of a second and a crash leaves
# little unrecorded, large enough that PostgreSQL and Redis see one round trip per CHUNK
# messages rather than one per message.
CHUNK = 50
# A batch gives its remaining rows back after this long, so that no campaign holds a worker
# slot for long and the dispatcher can share slots between campaigns.
MAX_BATCH_SECONDS = 20
# Token waits up to this long are slept through; longer ones end the batch.
MAX_SLEEP = 1.0
# Consecutive failures to reach a campaign's SMTP server before the campaign pauses.
MAX_SERVER_FAILURES = 5


@dataclass
class Claimed:
    id: int
    email: str
    attempts: int
    name: str
    attributes: dict[str, Any]
    enabled: bool

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2].lower()


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
    next_attempt_at: datetime | None = None


def record(*, campaign_id: int, batch_id: str, results: list[Result]) -> None:
    """Write a chunk's outcomes and the campaign's counters in one statement."""
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


_domain_rates: tuple[float, dict[str, int]] = (0.0, {})


def domain_rates() -> dict[str, int]:
    """Domain throttles, re-read at most every few seconds (the live rates come from Redis)."""
    global _domain_rates
    loaded_at, rates = _domain_rates
    if time.monotonic() - loaded_at > 5:
        rates = dict(DomainThrottle.objects.values_list("domain", "rate_limit"))
        _domain_rates = (time.monotonic(), rates)
    return rates


def retry_at(attempts: int, performance: PerformanceSettings) -> datetime | None:
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
        reply = f"gave up after {row.attempts + 1} attempts: {sent.reply}"[:500]
        return Result(row.id, Delivery.Status.FAILED, reply)
    return Result(row.id, Delivery.Status.PENDING, sent.reply, when)


def campaign_status(campaign_id: int) -> str | None:
    return Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()


def pause_campaign(campaign_id: int, reason: str) -> None:
    from campaigns.services import CampaignError, campaign_pause

    campaign = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.RUNNING).first()
    if campaign is None:
        return
    try:
        campaign_pause(campaign=campaign, reason=reason)
    except CampaignError:
        return  # somebody paused or cancelled it meanwhile
    log.warning("campaign paused by errors", extra={"campaign_id": campaign_id, "reason": reason})


def run_batch(*, campaign_id: int, batch_id: str) -> dict[str, int]:
    """Send one batch of a campaign; returns counts for the task's log line."""
    started = time.monotonic()
    counts = {"claimed": 0, "sent": 0, "failed": 0, "retry": 0, "given_back": 0}
    owner = heartbeats.ensure_process_heartbeat()
    leases.grant(campaign_id, batch_id, leases.LEASE_SECONDS, owner=owner)
    try:
        campaign = Campaign.objects.select_related("template").filter(pk=campaign_id).first()
        if campaign is None or campaign.status != Campaign.Status.RUNNING:
            return counts
        if throttle.held(campaign_id):
            return counts
        performance = PerformanceSettings.load()
        limit = performance.batch_size
        own_rate = campaign.rate_limit or performance.default_campaign_rate
        if own_rate:
            # No point claiming more than the campaign may send before the batch ends.
            limit = min(limit, max(CHUNK, math.ceil(own_rate * MAX_BATCH_SECONDS)))
        rows = claim(campaign_id=campaign_id, batch_id=batch_id, limit=limit)
        counts["claimed"] = len(rows)
        if rows:
            BatchSender(campaign, batch_id, performance, started, counts).run(rows)
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


class BatchSender:
    def __init__(
        self,
        campaign: Campaign,
        batch_id: str,
        performance: PerformanceSettings,
        started: float,
        counts: dict[str, int],
    ) -> None:
        self.campaign = campaign
        self.batch_id = batch_id
        self.performance = performance
        self.started = started
        self.counts = counts
        self.content = prepared_content(campaign)
        self.sender_header = format_sender(campaign.from_email or settings.DEFAULT_FROM_EMAIL)
        self.envelope_from = parseaddr(self.sender_header)[1]
        self.domain = self.envelope_from.rpartition("@")[2] or "localhost"
        self.date = formatdate(localtime=False)
        self.boundary = f"=_{uuid.uuid4().hex}"
        self.context_campaign = {"id": campaign.pk, "name": campaign.name}
        self.server: ServerConfig = choose_server(campaign.smtp_server_id)
        self.throttle = throttle.Throttle(
            campaign_id=campaign.pk,
            campaign_rate=campaign.rate_limit or performance.default_campaign_rate,
            global_rate=performance.message_rate,
            server_key=self.server.key,
            server_rate=self.server.rate_limit,
            domain_rates=domain_rates(),
        )
        self.journal = Journal(batch_id)

    def message(self, row: Claimed) -> bytes:
        subscriber = {"email": row.email, "name": row.name, "attributes": row.attributes}
        rendered = self.content.render(
            {"subscriber": subscriber, "campaign": self.context_campaign}
        )
        return build_message(
            headers=[
                ("From", self.sender_header),
                ("To", encode_address(row.name, row.email)),
                ("Subject", rendered.subject),
                ("Date", self.date),
                (
                    "Message-ID",
                    message_id(
                        campaign_id=self.campaign.pk,
                        delivery_id=row.id,
                        domain=self.domain,
                        secret=settings.SECRET_KEY,
                    ),
                ),
                ("X-Campaign-ID", str(self.campaign.pk)),
            ],
            text=rendered.text,
            html=rendered.html,
            boundary=self.boundary,
        )

    def should_stop(self) -> bool:
        if time.monotonic() - self.started > MAX_BATCH_SECONDS:
            return True
        return campaign_status(self.campaign.pk) != Campaign.Status.RUNNING

    def run(self, rows: list[Claimed]) -> None:
        queue = deque(rows)
        connection_ = None
        next_renewal = time.monotonic() + leases.RENEW_EVERY
        any_sent = False
        # True while messages were sent whose results are not in the database yet: the
        # journal must then survive this batch, for the dispatcher's recovery to read it.
        unrecorded = False
        try:
            connection_ = pool.acquire(self.server)
            while queue and not self.should_stop():
                chunk = [queue.popleft() for _ in range(min(CHUNK, len(queue)))]
                grant = self.throttle.acquire([row.domain for row in chunk])
                granted = set(grant.positions)
                if grant.limited_by:
                    throttle.note_limited(self.campaign.pk, grant.limited_by)
                # Refused by a shared bucket: first in line next time. Refused by their own
                # domain's bucket only: to the back, so other domains go on meanwhile.
                later = [
                    r for i, r in enumerate(chunk) if i >= grant.stopped_at and i not in granted
                ]
                by_domain = [
                    r for i, r in enumerate(chunk) if i < grant.stopped_at and i not in granted
                ]
                queue.extendleft(reversed(later))
                queue.extend(by_domain)
                to_send = [chunk[i] for i in sorted(granted)]
                if to_send:
                    results: list[Result] = []
                    unrecorded = True
                    try:
                        for row in to_send:
                            results.append(self.send_one(connection_, row))
                    finally:
                        # Also when the server went away mid-chunk: what was sent is
                        # recorded, what was not goes back in line.
                        queue.extendleft(reversed(to_send[len(results) :]))
                        self.record(results)
                        unrecorded = False
                    any_sent = any_sent or any(r.status == Delivery.Status.SENT for r in results)
                    if self.too_many_errors(results):
                        break
                elif grant.wait <= MAX_SLEEP:
                    time.sleep(grant.wait)
                else:
                    throttle.hold(self.campaign.pk, grant.wait, f"limited by {grant.limited_by}")
                    break
                if time.monotonic() >= next_renewal:
                    leases.renew(self.campaign.pk, self.batch_id)
                    next_renewal = time.monotonic() + leases.RENEW_EVERY
        except ServerUnavailable as error:
            self.server_failed(error)
        finally:
            if connection_ is not None:
                pool.release(connection_)
            self.journal.close(discard=not unrecorded)
            if not unrecorded:
                self.counts["given_back"] += give_back(
                    batch_id=self.batch_id, delivery_ids=[r.id for r in queue]
                )
            if any_sent:
                get_redis().delete(key("server-failures", self.campaign.pk))

    def send_one(self, connection_, row: Claimed) -> Result:
        if not row.enabled:
            return Result(row.id, Delivery.Status.FAILED, "not sent: subscriber blocklisted")
        sent = connection_.send(self.envelope_from, row.email, self.message(row))
        if sent.outcome == Outcome.SENT:
            self.journal.note_sent(row.id)
        return to_result(row, sent, self.performance)

    def record(self, results: list[Result]) -> None:
        record(campaign_id=self.campaign.pk, batch_id=self.batch_id, results=results)
        for r in results:
            self.counts[{"sent": "sent", "failed": "failed", "pending": "retry"}[r.status]] += 1

    def too_many_errors(self, results: list[Result]) -> bool:
        failed = [r for r in results if r.status == Delivery.Status.FAILED]
        if not failed:
            return False
        recent = monitor.note_failed(self.campaign.pk, len(failed))
        if recent <= self.performance.max_send_errors:
            return False
        pause_campaign(
            self.campaign.pk,
            f"paused by errors: {recent} failed sends in the last "
            f"{monitor.ERROR_WINDOW // 60} minutes (limit {self.performance.max_send_errors}, "
            f"Settings → Performance); last reply: {failed[-1].reply}",
        )
        return True

    def server_failed(self, error: ServerUnavailable) -> None:
        campaign_id = self.campaign.pk
        if error.authentication:
            pause_campaign(campaign_id, f"paused: {error}")
            return
        client = get_redis()
        name = key("server-failures", campaign_id)
        failures = int(client.incr(name))
        client.expire(name, 3600)
        if failures >= MAX_SERVER_FAILURES:
            pause_campaign(
                campaign_id, f"paused after {failures} failed attempts to connect: {error}"
            )
            return
        # Back off 2, 4, 8, 16 s before the next batch tries the server again.
        throttle.hold(campaign_id, 2**failures, f"SMTP server unavailable: {error}")
        log.warning(
            "smtp server unavailable",
            extra={"campaign_id": campaign_id, "failures": failures, "error": str(error)},
        )
