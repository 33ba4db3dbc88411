"""Delivering the outbox: each due delivery is claimed (FOR UPDATE SKIP LOCKED, then leased
for a minute, so two workers never post the same one and a worker that dies mid-post leaves
it to be retried), POSTed with Standard Webhooks headers, and recorded. A 2xx delivers it;
anything else is retried with exponential back-off, 10 s doubling to an hour, until the event
is a day old, when the delivery fails for good (the admin's Replay sends it again)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from urllib.parse import urlsplit

import structlog
import urllib3
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from webhooks.addresses import UnsafeURL, checked_address
from webhooks.models import Delivery

log = structlog.get_logger(__name__)

LEASE = timedelta(seconds=60)
FIRST_RETRY = 10  # seconds; doubling after each failed attempt
LONGEST_RETRY = 3600
GIVE_UP_AFTER = timedelta(days=1)
TIMEOUT = urllib3.Timeout(connect=5.0, read=10.0)
CLAIM = 20
# One task delivers for at most this long, then leaves the rest to the next.
TASK_SECONDS = 30.0
USER_AGENT = "campaign-mailer-webhooks/1"


def deliver_due() -> int:
    """Deliver what is due; returns how many attempts were made."""
    started, attempts = time.monotonic(), 0
    while time.monotonic() - started < TASK_SECONDS:
        now = timezone.now()
        with transaction.atomic():
            rows = list(
                Delivery.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
                .select_related("endpoint", "event")
                .order_by("next_attempt_at")[:CLAIM]
            )
            Delivery.objects.filter(pk__in=[r.pk for r in rows]).update(next_attempt_at=now + LEASE)
        if not rows:
            break
        for row in rows:
            attempt(row)
            attempts += 1
    return attempts


def signed_headers(row: Delivery, body: bytes) -> dict[str, str]:
    now = timezone.now()
    webhook_id = row.event.webhook_id
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(row.endpoint.secret).sign(webhook_id, now, body),
    }


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """POST to the address checked for the URL's host; the status and the answer's start."""
    address = checked_address(url)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    pool: urllib3.HTTPConnectionPool
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            port,
            timeout=TIMEOUT,
            retries=False,
            server_hostname=parts.hostname,
            assert_hostname=parts.hostname,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=TIMEOUT, retries=False)
    with pool:
        response = pool.urlopen(
            "POST",
            path,
            body=body,
            headers={**headers, "Host": parts.netloc.rpartition("@")[2]},
            redirect=False,
            preload_content=False,
        )
        answer = response.read(500, decode_content=False).decode(errors="replace")
        response.release_conn()
    return response.status, answer


def attempt(row: Delivery) -> None:
    body = json.dumps(row.event.payload, separators=(",", ":")).encode()
    status: int | None = None
    try:
        status, answer = post(row.endpoint.url, body, signed_headers(row, body))
    except UnsafeURL as error:
        answer = f"refused: {error}"
    except urllib3.exceptions.HTTPError as error:
        answer = f"no answer: {error}"
    now = timezone.now()
    changes: dict = {"attempts": row.attempts + 1, "last_status_code": status}
    changes["last_response"] = answer if status is None else f"{status} {answer}".strip()
    if status is not None and 200 <= status < 300:
        changes.update(status=Delivery.Status.DELIVERED, delivered_at=now)
    elif now - row.event.created_at > GIVE_UP_AFTER:
        changes["status"] = Delivery.Status.FAILED
    else:
        delay = min(FIRST_RETRY * 2**row.attempts, LONGEST_RETRY)
        changes["next_attempt_at"] = now + timedelta(seconds=delay)
    Delivery.objects.filter(pk=row.pk).update(**changes)
    log.info(
        "webhook delivered" if status and 200 <= status < 300 else "webhook not delivered",
        delivery_id=row.pk,
        endpoint=row.endpoint.name,
        kind=row.event.kind,
        status=status,
        attempts=changes["attempts"],
    )


def replay(rows: list[Delivery]) -> int:
    """Send these deliveries' events to their endpoints again, as new deliveries."""
    copies = [Delivery(endpoint_id=r.endpoint_id, event_id=r.event_id) for r in rows]
    Delivery.objects.bulk_create(copies)
    return len(copies)
