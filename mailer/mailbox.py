"""The bounce mailbox: for installs whose provider sends no webhooks, bounces and complaints
arrive as mail at the campaigns' envelope sender. A periodic task reads that mailbox over
IMAP or POP3 (settings: BOUNCE_MAILBOX_URL), reads each report (mailer.dsn), ties it to the
delivery it is about, records the bounce with the Bounce settings' thresholds
(mailer.bounces), and then deletes the message or moves it to a folder.

Trust: anyone can send mail to a bounce address, so a report only counts when it names a
message of ours: a Message-ID quoted from the original whose signature checks (it names the
campaign and delivery, mailer.message.message_id), or our X-Campaign-ID header together with
an address that campaign was sent to. A report that names only an address is kept, with the
reason, in "Bounce mailbox" in the admin, where a person may apply it; nothing read is lost.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import poplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from mailer import dsn, folding
from mailer.bounces import bounce_record
from mailer.message import id_signature
from mailer.models import Delivery, MailboxReport
from settings.redis import get_redis, key
from subscribers.models import Subscriber

log = structlog.get_logger(__name__)

# Messages read per run; the next run (BOUNCE_MAILBOX_INTERVAL later) goes on.
PER_RUN = 500
KEEP_RAW = 1024 * 1024
TIMEOUT = 30


def read_mailbox(config: dict[str, Any] | None = None, *, keep_in: str | None = None) -> dict:
    """One reading of the mailbox: what was applied, what was not, and why."""
    config = config or settings.BOUNCE_MAILBOX
    if not config:
        return {"skipped": "BOUNCE_MAILBOX_URL is not set"}
    keep_in = settings.BOUNCE_MAILBOX_KEEP_IN if keep_in is None else keep_in
    lock = get_redis().lock(key("bounce-mailbox"), timeout=300, blocking=False)
    if not lock.acquire():
        return {"skipped": "another worker is reading the mailbox"}
    try:
        read = _read_pop3 if config["protocol"] == "pop3" else _read_imap
        counts: dict[str, int] = {}
        for outcome in read(config, keep_in):
            counts[outcome] = counts.get(outcome, 0) + 1
    finally:
        lock.release()
    log.info("bounce mailbox read", host=config["host"], **counts)
    return counts


def _read_imap(config: dict[str, Any], keep_in: str) -> Iterator[str]:
    with _imap(config) as mailbox:
        if keep_in and not mailbox.folder.exists(keep_in):
            mailbox.folder.create(keep_in)
        for uid in mailbox.uids("ALL")[:PER_RUN]:
            raw = _fetch_raw(mailbox.client, uid)
            if raw is None:
                continue
            outcome = handle(raw)
            # Only once the row is committed is the message let go of.
            if keep_in:
                mailbox.move(uid, keep_in)
            else:
                mailbox.delete(uid)
            yield outcome


def _fetch_raw(client: Any, uid: str) -> bytes | None:
    """The message exactly as the server holds it (PEEK: it is not marked as seen)."""
    status, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
    if status != "OK":
        return None
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            return bytes(item[1])
    return None


@contextmanager
def _imap(config: dict[str, Any]) -> Iterator[Any]:
    # Loaded here, where a mailbox is read: every worker imports this module, few read mail.
    from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted

    host, port = config["host"], config["port"]
    if config["security"] == "tls":
        box: Any = MailBox(host, port, timeout=TIMEOUT, ssl_context=ssl.create_default_context())
    elif config["security"] == "starttls":
        box = MailBoxStartTls(host, port, timeout=TIMEOUT)
    else:
        box = MailBoxUnencrypted(host, port, timeout=TIMEOUT)
    with box.login(config["user"], config["password"], config["folder"]) as mailbox:
        yield mailbox


def _read_pop3(config: dict[str, Any], keep_in: str) -> Iterator[str]:
    host, port = config["host"], config["port"]
    if config["security"] == "tls":
        pop: poplib.POP3 = poplib.POP3_SSL(
            host, port, timeout=TIMEOUT, context=ssl.create_default_context()
        )
    else:
        pop = poplib.POP3(host, port, timeout=TIMEOUT)
        if config["security"] == "starttls":
            pop.stls(ssl.create_default_context())
    try:
        pop.user(config["user"])
        pop.pass_(config["password"])
        count, _ = pop.stat()
        for number in range(1, min(count, PER_RUN) + 1):
            _, lines, _ = pop.retr(number)
            outcome = handle(b"\r\n".join(lines) + b"\r\n")
            pop.dele(number)  # takes effect at QUIT, after every row above is committed
            yield outcome
        pop.quit()
    except BaseException:
        pop.close()  # without QUIT nothing is deleted: the messages are read again next time
        raise


def handle(raw: bytes) -> str:
    """Read one message and record what it reports, once: the same message read again (a
    crash before it was deleted) finds its row and changes nothing."""
    digest = hashlib.sha256(raw).hexdigest()
    existing = MailboxReport.objects.filter(digest=digest).values_list("outcome", flat=True)
    if existing:
        return existing[0]
    report = dsn.read(raw)
    header = email.message_from_bytes(raw[:65536], policy=email.policy.compat32)
    row = MailboxReport(
        digest=digest,
        sender=str(header.get("From", ""))[:254],
        subject=report.subject,
        format=report.format,
    )
    try:
        with transaction.atomic():
            row.outcome, row.reason, row.bounces = _apply(report, _date(header))
            if row.outcome != MailboxReport.Outcome.APPLIED:
                row.raw = raw[:KEEP_RAW]
            row.save()
    except IntegrityError:  # another reader recorded the same message at the same moment
        return MailboxReport.objects.get(digest=digest).outcome
    return row.outcome


def _apply(report: dsn.Report, at: datetime) -> tuple[str, str, int]:
    Outcome = MailboxReport.Outcome
    if report.format == "none":
        unreadable = report.problem.startswith(("unreadable", "larger"))
        reason = report.problem or "neither a delivery-status notification nor a complaint"
        return (Outcome.UNREADABLE if unreadable else Outcome.NOT_A_REPORT), reason, 0
    if not report.failures:
        return Outcome.UNMATCHED, report.problem or "no failed recipient in the report", 0
    deliveries = _signed_deliveries(report)
    recorded, missing = 0, []
    for failure in report.failures:
        delivery = _delivery_for(failure, report, deliveries)
        if delivery is None:
            missing.append(failure.email)
            continue
        bounce_record(
            email=delivery.email,
            kind=failure.kind,
            source="mailbox",
            description=" ".join(filter(None, [failure.status, failure.diagnostic])),
            campaign_id=delivery.campaign_id,
            at=at,
        )
        recorded += 1
    if recorded:
        return Outcome.APPLIED, "", recorded
    return (
        Outcome.UNMATCHED,
        f"{', '.join(missing)[:300]}: the report quotes no Message-ID of ours whose signature "
        "checks, nor an X-Campaign-ID of a campaign sent to that address",
        0,
    )


def apply_by_hand(row: MailboxReport) -> int:
    """A person's decision that a report naming only addresses is to be believed: each
    address that is a subscriber's gets the bounce (tied to the campaign last sent to it)."""
    if row.outcome != MailboxReport.Outcome.UNMATCHED or not row.raw:
        return 0
    report = dsn.read(bytes(row.raw))
    known = set(
        Subscriber.objects.filter(email__in=[f.email for f in report.failures]).values_list(
            "email", flat=True
        )
    )
    with transaction.atomic():
        for failure in report.failures:
            if failure.email in known:
                bounce_record(
                    email=failure.email,
                    kind=failure.kind,
                    source="mailbox",
                    description=" ".join(filter(None, [failure.status, failure.diagnostic])),
                )
        applied = sum(1 for f in report.failures if f.email in known)
        MailboxReport.objects.filter(pk=row.pk).update(
            outcome=MailboxReport.Outcome.APPLIED,
            bounces=applied,
            reason=f"applied by hand ({applied} of {len(report.failures)} addresses known)",
        )
    return applied


def _signed_deliveries(report: dsn.Report) -> list[Delivery]:
    secret = settings.SECRET_KEY
    wanted = {
        delivery_id: campaign_id
        for campaign_id, delivery_id, signature in report.signed_ids
        if hmac.compare_digest(
            signature,
            id_signature(campaign_id=campaign_id, delivery_id=delivery_id, secret=secret),
        )
    }
    rows = list(Delivery.objects.filter(pk__in=list(wanted)).only("pk", "campaign_id", "email"))
    found = {row.pk for row in rows}
    for delivery_id, campaign_id in wanted.items():
        if delivery_id not in found and (folded := folding.row(campaign_id, delivery_id)):
            rows.append(folding.as_delivery(folded))  # a campaign folded since it sent
    return [row for row in rows if wanted[row.pk] == row.campaign_id]


def _delivery_for(
    failure: dsn.Failure, report: dsn.Report, signed: list[Delivery]
) -> Delivery | None:
    for delivery in signed:
        if delivery.email == failure.email:
            return delivery
    if len(signed) == 1 and len(report.failures) == 1:
        # The report is about that one message, though the server names the address it was
        # forwarded to.
        return signed[0]
    if report.campaign_ids:
        hot = (
            # Through the subscriber's address (a unique index), then the ledger's unique
            # (campaign, subscriber) index: a campaign's rows are never scanned by address.
            Delivery.objects.filter(
                campaign_id__in=report.campaign_ids,
                subscriber__email=failure.email,
                email=failure.email,
                status=Delivery.Status.SENT,
            )
            .only("pk", "campaign_id", "email")
            .first()
        )
        if hot is not None:
            return hot
        subscriber = Subscriber.objects.filter(email=failure.email).values_list("pk", flat=True)
        if (subscriber_id := subscriber.first()) is None:
            return None
        for folded in folding.deliveries_of(subscriber_id, list(report.campaign_ids)):
            if folded.email == failure.email and folded.status == Delivery.Status.SENT:
                return folded
    return None


def _date(header: email.message.Message) -> datetime:
    try:
        at = parsedate_to_datetime(str(header.get("Date", "")))
    except (TypeError, ValueError):
        return timezone.now()
    if at.tzinfo is None or at > timezone.now():
        return timezone.now()
    return at
