"""Transactional messages: recorded first (TxMessage), then sent by a task on the
`transactional` queue, which bulk senders never consume.

- Exactly once: a task claims its row with a conditional update (queued -> sending), so a
  task delivered twice, or queued again by the sweep, sends nothing the second time.
- Ahead of bulk sending, within the same limits: the message takes its token from the global
  and SMTP-server buckets with a larger burst (throttle.PRIORITY_BURST_SECONDS), so it never
  waits behind a campaign, and the campaign waits for the token instead; the total stays at
  the configured rates.
- Idempotent requests: rows carry the request's Idempotency-Key; a unique constraint makes
  two racing requests with one key insert once, and the loser answers with the winner's rows.
- Later, without Celery ETAs: a message with `send_at` waits in the table; the dispatcher's
  tick (sweep) queues what is due, and queues again any task that got lost.
"""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, parseaddr
from typing import Any

import structlog
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from campaigns.models import Template
from campaigns.rendering import PreparedContent, RenderedContent
from mailer import throttle
from mailer.models import PerformanceSettings
from mailer.sender import domain_rates
from mailer.signals import tx_message_finished
from mailer.smtp import Outcome, ServerUnavailable, choose_server, pool
from mailer.tx_models import TxMessage
from settings import queues
from subscribers import links
from subscribers.addresses import domain_of
from subscribers.models import Subscriber

log = structlog.get_logger(__name__)

IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_ATTEMPTS = 8
RETRY_DELAY = 5  # seconds before the second attempt, doubling after each
LONGEST_RETRY_DELAY = 3600
# A task waits this long for tokens at most; beyond, the row waits in the table instead.
MAX_TOKEN_WAIT = 5.0
# A row claimed longer ago than this was being sent by a worker that stopped.
STALE_CLAIM = timedelta(minutes=10)
# A queued task not taken this long after it was queued is queued again (lost with Redis).
REQUEUE_AFTER = timedelta(seconds=60)
SWEEP_LIMIT = 500
# Headers a request may not set: the message's own structure and identity.
RESERVED_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "subject", "date", "message-id", "mime-version", "sender"}
)


class IdempotencyConflict(Exception):
    """The key was used within 24 h for a different request."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Outgoing:
    """One message ready to be recorded."""

    to_email: str
    envelope_from: str
    subject: str
    message_id: str
    data: bytes
    subscriber_id: int | None = None
    template_id: int | None = None
    smtp_server_id: int | None = None


@functools.lru_cache(maxsize=64)
def _compiled(subject: str, body: str, format: str) -> PreparedContent:
    return Template(kind=Template.Kind.TX, subject=subject, html=body).content(format)


def render(
    template: Template,
    *,
    email: str,
    subscriber: Subscriber | None,
    data: dict[str, Any],
    format: str = "html",
) -> RenderedContent:
    """A transactional template filled for one recipient (raises TemplateError). Compiled
    once per subject, body and format, however many messages use it."""
    context = {
        "subscriber": {
            "email": email,
            "name": subscriber.name if subscriber else "",
            "uuid": str(subscriber.uuid) if subscriber else "",
            "attributes": subscriber.attributes if subscriber else {},
        },
        "campaign": {"id": None, "name": ""},
        "tx": {"data": data},
        **links.urls(subscriber.pk if subscriber else None, None),
    }
    return _compiled(template.subject, template.html, format).render(context)


def template_attachments(template: Template) -> list[Attachment]:
    """The files a transactional template carries from the media library."""
    if template.pk is None:  # a body sent with the request, not a stored template
        return []
    return [
        Attachment(filename=m.name, content_type=m.content_type, content=m.read())
        for m in template.attachments.all()
    ]


def compose(
    *,
    sender: str,
    to: str,
    content: RenderedContent,
    headers: list[tuple[str, str]],
    attachments: list[Attachment],
) -> Outgoing:
    """The message as bytes (raises ValueError for a header it may not have)."""
    envelope_from = parseaddr(sender)[1]
    domain = envelope_from.rpartition("@")[2] or "localhost"
    message = EmailMessage(policy=SMTP)
    msgid = f"<tx.{uuid.uuid4().hex}@{domain}>"
    message["From"] = sender
    message["To"] = to
    message["Subject"] = content.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = msgid
    for name, value in headers:
        if name.lower() in RESERVED_HEADERS or name.lower().startswith("content-"):
            raise ValueError(f"The header {name} is set by the message itself; leave it out.")
        message[name] = value
    message.set_content(content.text)
    if content.html is not None:
        message.add_alternative(content.html, subtype="html")
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.content,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return Outgoing(
        to_email=parseaddr(to)[1] or to,
        envelope_from=envelope_from,
        subject=content.subject,
        message_id=msgid,
        data=message.as_bytes(),
    )


def record(
    outgoing: list[Outgoing],
    *,
    user_id: int | None = None,
    key: str | None = None,
    digest: str = "",
    send_at: datetime | None = None,
    kind: str = "api",
    enqueue: bool = True,
) -> tuple[list[TxMessage], bool]:
    """Store the messages and queue them once the transaction commits. Returns the rows and
    whether they are an earlier request's (the same Idempotency-Key within 24 h)."""
    now = timezone.now()
    if key:
        # A key older than the window is free again.
        TxMessage.objects.filter(
            created_by_id=user_id, idempotency_key=key, created_at__lt=now - IDEMPOTENCY_WINDOW
        ).update(idempotency_key="")
    due = send_at is None or send_at <= now
    rows = [
        TxMessage(
            created_by_id=user_id,
            idempotency_key=key or "",
            position=position,
            request_digest=digest,
            kind=kind,
            template_id=message.template_id,
            subscriber_id=message.subscriber_id,
            smtp_server_id=message.smtp_server_id,
            to_email=message.to_email,
            envelope_from=message.envelope_from,
            subject=message.subject[:998],
            message_id=message.message_id,
            data=message.data,
            size=len(message.data),
            send_at=send_at,
            enqueued_at=now if due and enqueue else None,
        )
        for position, message in enumerate(outgoing)
    ]
    try:
        with transaction.atomic():
            TxMessage.objects.bulk_create(rows)
    except IntegrityError:
        # Another request with this key committed first (the insert waited for it).
        earlier = list(
            TxMessage.objects.filter(created_by_id=user_id, idempotency_key=key).order_by(
                "position"
            )
        )
        if not key or not earlier:
            raise
        if earlier[0].request_digest != digest:
            raise IdempotencyConflict(key) from None
        return earlier, True
    if due and enqueue:
        for row in rows:
            queues.enqueue_on_commit(queues.SEND_TX, message_id=row.pk)
    return rows, False


def deliver(message_id: int) -> str:
    """Send one queued message that is due; returns what happened (for the task's log)."""
    now = timezone.now()
    claimed = (
        TxMessage.objects.filter(pk=message_id, status=TxMessage.Status.QUEUED)
        .filter(Q(send_at__isnull=True) | Q(send_at__lte=now))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(status=TxMessage.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return "not due, or taken by another task"
    row = TxMessage.objects.get(pk=message_id)
    performance = PerformanceSettings.load()
    try:
        config = choose_server(row.smtp_server_id)
        if waited := _take_token(row, config, performance):
            return waited
        connection = pool.acquire(config)
    except ServerUnavailable as error:
        return _retry(row, str(error))
    try:
        result = connection.send(row.envelope_from, row.to_email, bytes(row.data))
    finally:
        pool.release(connection)
    if result.outcome == Outcome.SENT:
        return _finish(row, TxMessage.Status.SENT, result.reply)
    if result.outcome == Outcome.PERMANENT:
        return _finish(row, TxMessage.Status.FAILED, result.reply)
    if result.outcome == Outcome.UNKNOWN and not performance.retry_unknown:
        return _finish(row, TxMessage.Status.FAILED, result.reply)
    return _retry(row, result.reply)


def _take_token(row: TxMessage, config: Any, performance: PerformanceSettings) -> str:
    """Wait for the message's token; "" once it has one, else what the row now waits for."""
    bucket = throttle.Throttle(
        campaign_id=None,
        campaign_rate=None,
        global_rate=performance.message_rate,
        server_key=config.key,
        server_rate=config.rate_limit,
        domain_rates=domain_rates(),
        burst=throttle.PRIORITY_BURST_SECONDS,
    )
    waited = 0.0
    while True:
        grant = bucket.acquire([domain_of(row.to_email)])
        if grant.positions:
            return ""
        if waited + grant.wait > MAX_TOKEN_WAIT:
            _put_back(row, delay=grant.wait, reply=f"waiting for the {grant.limited_by} limit")
            return f"waiting for the {grant.limited_by} limit"
        time.sleep(grant.wait)
        waited += grant.wait


def _put_back(row: TxMessage, *, delay: float, reply: str, attempt_used: bool = False) -> None:
    TxMessage.objects.filter(pk=row.pk, status=TxMessage.Status.SENDING).update(
        status=TxMessage.Status.QUEUED,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        enqueued_at=None,
        reply=reply,
        attempts=F("attempts") - (0 if attempt_used else 1),
    )


def _retry(row: TxMessage, reply: str) -> str:
    if row.attempts >= MAX_ATTEMPTS:
        return _finish(row, TxMessage.Status.FAILED, f"{reply} (gave up after {row.attempts})")
    delay = min(RETRY_DELAY * 2 ** (row.attempts - 1), LONGEST_RETRY_DELAY)
    _put_back(row, delay=delay, reply=reply, attempt_used=True)
    log.info("transactional message deferred", message_id=row.pk, reply=reply, delay=delay)
    return f"deferred {delay} s: {reply}"


def _finish(row: TxMessage, status: str, reply: str) -> str:
    now = timezone.now()
    with transaction.atomic():
        TxMessage.objects.filter(pk=row.pk).update(
            status=status, reply=reply, sent_at=now if status == "sent" else None, data=b""
        )
        row.refresh_from_db()
        tx_message_finished.send(sender=TxMessage, message=row)
    log.info("transactional message " + status, message_id=row.pk, to=row.to_email, reply=reply)
    return f"{status}: {reply}"


def sweep(performance: PerformanceSettings) -> int:
    """Queue what is due and not queued (later messages, retries, lost tasks), and take
    back rows whose worker stopped while sending them. Returns how many were queued."""
    now = timezone.now()
    stale = TxMessage.objects.filter(
        status=TxMessage.Status.SENDING, claimed_at__lt=now - STALE_CLAIM
    )
    if performance.retry_unknown:
        stale.update(status=TxMessage.Status.QUEUED, enqueued_at=None, next_attempt_at=now)
    else:
        for row in stale:
            _finish(row, TxMessage.Status.FAILED, "outcome unknown: its worker stopped")
    due = list(
        TxMessage.objects.filter(status=TxMessage.Status.QUEUED)
        .filter(Q(send_at__isnull=True) | Q(send_at__lte=now))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - REQUEUE_AFTER))
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    if not due:
        return 0
    TxMessage.objects.filter(pk__in=due).update(enqueued_at=now)
    for message_id in due:
        queues.enqueue(queues.SEND_TX, message_id=message_id)
    return len(due)
