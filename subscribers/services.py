"""Subscriber writes: normalising addresses and importing CSV files in bulk."""

from __future__ import annotations

import csv
import enum
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from django.db import connection, transaction
from django.db.models import F, QuerySet
from email_validator import EmailNotValidError, validate_email

from subscribers.models import MailingList, Subscriber, Subscription

# Columns an export writes that are not attributes: ignored when the file is imported again.
EXPORT_ONLY = ("status", "subscription", "created_at")
# Rows per INSERT statement: large enough that the database does the work in bulk, small
# enough that one statement's arrays stay a few hundred kilobytes.
IMPORT_CHUNK = 5000
MAX_NAME = 200


class ImportFileError(ValueError):
    """The file as a whole cannot be imported; nothing was written."""


# Plain ASCII addresses (dot-atom local part, letters-digits-hyphens domain): by far the most
# common kind, and the only one whose check here skips part of email-validator: the domain
# is checked by email-validator once per domain instead of once per address, which makes a
# million-row import about twice as fast. Anything else goes through email-validator whole.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN = re.compile(
    rf"(?P<local>{_ATEXT}(?:\.{_ATEXT})*)@"
    r"(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)


@functools.lru_cache(maxsize=10_000)
def _checked_domain(domain: str) -> str:
    return validate_email(f"a@{domain}", check_deliverability=False).domain


def normalise_email(raw: str) -> str:
    """A valid address in the form it is stored (lower case), or EmailNotValidError."""
    address = raw.strip()
    plain = _PLAIN.fullmatch(address)
    if plain is not None and len(plain["local"]) <= 64 and len(address) <= 254:
        return f"{plain['local']}@{_checked_domain(plain['domain'].lower())}".lower()
    result = validate_email(address, check_deliverability=False)
    return result.normalized.lower()


class ImportMode(enum.StrEnum):
    # Add or update subscribers and subscribe them to a list (never re-subscribing someone
    # who unsubscribed from it).
    SUBSCRIBE = "subscribe"
    # Update the name and attributes of subscribers already on file; nobody is added.
    UPDATE = "update"
    # Blocklist the addresses (adding those not on file), so they are never mailed.
    BLOCKLIST = "blocklist"


@dataclass
class ImportReport:
    imported: int = 0
    rows: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    bytes_read: int = 0

    def add_error(self, line: int, reason: str) -> None:
        self.skipped.append((line, reason))

    def error_report_csv(self) -> Iterator[str]:
        """The skipped lines as CSV (line, reason), for download."""
        yield "line,reason\r\n"
        for line, reason in self.skipped:
            yield f'{line},"{reason.replace(chr(34), chr(34) * 2)}"\r\n'


def _decoded_lines(stream: BinaryIO, bad_lines: set[int], report: ImportReport) -> Iterator[str]:
    """Decode line by line, so one badly encoded line is reported instead of failing the file."""
    for number, raw in enumerate(stream, start=1):
        report.bytes_read += len(raw)
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if number == 1 and (raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw):
            raise ImportFileError(
                "The file is UTF-16 text (as Excel's 'Unicode Text' saves), not UTF-8; save "
                "it as 'CSV UTF-8' and import it again."
            )
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            bad_lines.add(number)
            yield raw.decode("utf-8", errors="replace")


UPSERT_SUBSCRIBERS = """
INSERT INTO subscribers_subscriber (email, name, attributes, status, created_at, updated_at)
SELECT e, n, a::jsonb, 'enabled', now(), now()
FROM unnest(%s::text[], %s::text[], %s::text[]) AS t(e, n, a)
ON CONFLICT (email) DO UPDATE
SET name = CASE WHEN EXCLUDED.name <> '' THEN EXCLUDED.name
                ELSE subscribers_subscriber.name END,
    attributes = subscribers_subscriber.attributes || EXCLUDED.attributes,
    updated_at = now()
RETURNING id
"""

# Existing subscriptions keep their status: an import never re-subscribes somebody who
# unsubscribed from the list.
INSERT_SUBSCRIPTIONS = """
INSERT INTO subscribers_subscription
    (subscriber_id, mailing_list_id, status, created_at, updated_at)
SELECT s, %s, %s, now(), now() FROM unnest(%s::bigint[]) AS t(s)
ON CONFLICT (subscriber_id, mailing_list_id) DO NOTHING
"""

UPDATE_SUBSCRIBERS = """
UPDATE subscribers_subscriber s
SET name = CASE WHEN t.n <> '' THEN t.n ELSE s.name END,
    attributes = s.attributes || t.a::jsonb,
    updated_at = now()
FROM unnest(%s::text[], %s::text[], %s::text[]) AS t(e, n, a)
WHERE s.email = t.e
RETURNING s.email
"""

BLOCKLIST_SUBSCRIBERS = """
INSERT INTO subscribers_subscriber (email, name, attributes, status, created_at, updated_at)
SELECT e, n, a::jsonb, 'blocklisted', now(), now()
FROM unnest(%s::text[], %s::text[], %s::text[]) AS t(e, n, a)
ON CONFLICT (email) DO UPDATE SET status = 'blocklisted', updated_at = now()
RETURNING id
"""


@dataclass
class _Row:
    line: int
    email: str
    name: str
    attributes: str  # JSON


def _write_chunk(
    rows: list[_Row],
    *,
    mode: ImportMode,
    mailing_list: MailingList | None,
    status: str,
    report: ImportReport,
) -> int:
    columns = [[r.email for r in rows], [r.name for r in rows], [r.attributes for r in rows]]
    with transaction.atomic(), connection.cursor() as cursor:
        if mode == ImportMode.UPDATE:
            cursor.execute(UPDATE_SUBSCRIBERS, columns)
            found = {row[0] for row in cursor.fetchall()}
            for r in rows:
                if r.email not in found:
                    report.add_error(
                        r.line,
                        f"{r.email} is not a subscriber; import it with mode 'subscribe' to add it",
                    )
            return len(found)
        if mode == ImportMode.BLOCKLIST:
            cursor.execute(BLOCKLIST_SUBSCRIBERS, columns)
            return len(cursor.fetchall())
        assert mailing_list is not None
        cursor.execute(UPSERT_SUBSCRIBERS, columns)
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(INSERT_SUBSCRIPTIONS, [mailing_list.pk, status, ids])
    return len(ids)


def subscribers_import_csv(
    *,
    stream: BinaryIO,
    mailing_list: MailingList | None = None,
    mode: ImportMode | str = ImportMode.SUBSCRIBE,
    confirmed: bool | None = None,
    progress: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Import `email`, `name` and attribute columns; bad rows are reported and skipped.

    mode: subscribe (to `mailing_list`), update or blocklist (see ImportMode).
    confirmed: the status of new subscriptions; by default confirmed on single opt-in lists
    and unconfirmed on double opt-in lists (those subscribers get mail once they confirm).
    """
    mode = ImportMode(mode)
    status = ""
    if mode == ImportMode.SUBSCRIBE:
        if mailing_list is None:
            raise ImportFileError("Choose the mailing list to subscribe the file's addresses to.")
        if confirmed is None:
            confirmed = mailing_list.opt_in == MailingList.OptIn.SINGLE
        status = Subscription.Status.CONFIRMED if confirmed else Subscription.Status.UNCONFIRMED
    report = ImportReport()
    bad_encoding: set[int] = set()
    reader = csv.reader(_decoded_lines(stream, bad_encoding, report))
    try:
        header = [column.strip().lower() for column in next(reader)]
    except StopIteration:
        raise ImportFileError("The file is empty; the first row must name the columns.") from None
    except csv.Error as error:
        raise ImportFileError(f"The header row cannot be read as CSV: {error}.") from None
    if "email" not in header:
        found = ", ".join(repr(c) for c in header) or "none"
        raise ImportFileError(
            f"The file has no 'email' column (columns found: {found}). The first row must "
            "name the columns: 'email' is required, 'name' is optional, any other column is "
            "stored in the subscriber's attributes."
        )
    duplicates = [c for c in set(header) if header.count(c) > 1 and c]
    if duplicates:
        raise ImportFileError(
            f"The header names these columns twice: {', '.join(sorted(duplicates))}; "
            "rename or remove the repeats."
        )
    email_at = header.index("email")
    name_at = header.index("name") if "name" in header else None
    attribute_columns = [
        (i, c) for i, c in enumerate(header) if c and c not in ("email", "name", *EXPORT_ONLY)
    ]

    seen: dict[str, int] = {}
    pending: list[_Row] = []

    def flush() -> None:
        if pending:
            report.imported += _write_chunk(
                pending, mode=mode, mailing_list=mailing_list, status=status, report=report
            )
            pending.clear()
        if progress:
            progress(report)

    def skip(line: int, last: int, reason: str) -> None:
        if last > line:
            # Quotes may hold line breaks, but a quote left open swallows the lines below.
            reason += f" (the record runs from line {line} to {last}: is a quote left open?)"
        report.add_error(line, reason)

    for line, last, values in _records(reader, report):
        report.rows += 1

        if line in bad_encoding:
            skip(line, last, "the line is not valid UTF-8; save the file as UTF-8")
            continue
        if len(values) != len(header):
            skip(line, last, f"{len(values)} columns where the header has {len(header)}")
            continue
        raw_email = values[email_at]
        try:
            email = normalise_email(raw_email)
        except EmailNotValidError as error:
            skip(line, last, f"{raw_email!r} is not a valid email address: {error}")
            continue
        if email in seen:
            skip(line, last, f"{email} already appears on line {seen[email]}")
            continue
        name = _uncell(values[name_at].strip()) if name_at is not None else ""
        if len(name) > MAX_NAME:
            skip(line, last, f"the name is longer than {MAX_NAME} characters")
            continue
        if "\r" in name or "\n" in name:
            skip(line, last, "the name contains a line break")
            continue
        seen[email] = line
        attributes = {
            column: _uncell(values[i]) for i, column in attribute_columns if values[i] != ""
        }
        pending.append(_Row(line, email, name, json.dumps(attributes)))
        if len(pending) >= IMPORT_CHUNK:
            flush()
    flush()
    report.skipped.sort()
    return report


def _records(reader, report: ImportReport) -> Iterable[tuple[int, int, list[str]]]:
    """CSV records with the lines each starts and ends on; unreadable records are reported,
    not fatal."""
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            report.rows += 1
            if "field limit" in str(error):
                reason = (
                    f"a value is longer than {csv.field_size_limit():,} characters, which no "
                    "subscriber field needs (an unclosed quote can swallow the rest of a file)"
                )
            else:
                reason = f"cannot be read as CSV: {error}"
            report.add_error(start, reason)
            continue

        if not any(v.strip() for v in values):
            continue  # blank line
        yield start, reader.line_num, values


# --- Export ----------------------------------------------------------------------------------


class _Echo:
    """A file-like object whose write returns what it was given (for streaming CSV)."""

    def write(self, value: str) -> str:
        return value


def subscribers_export_csv(
    *, subscribers: QuerySet[Subscriber], mailing_list: MailingList | None = None
) -> Iterator[str]:
    """CSV of these subscribers, streamed in constant memory: email, name, status, (the
    subscription's status on `mailing_list`), created, then one column per attribute.

    The file can be imported again as it is.
    """
    with connection.cursor() as cursor:
        query, params = subscribers.values("attributes").query.sql_with_params()
        cursor.execute(
            f"SELECT DISTINCT jsonb_object_keys(attributes) FROM ({query}) AS s ORDER BY 1",  # noqa: S608
            params,
        )
        keys = [row[0] for row in cursor.fetchall()]
    writer = csv.writer(_Echo())
    list_column = ["subscription"] if mailing_list is not None else []
    yield writer.writerow(["email", "name", "status", *list_column, "created_at", *keys])
    rows = subscribers.order_by("pk")
    fields = ["email", "name", "status", "created_at", "attributes"]
    if mailing_list is not None:
        rows = rows.filter(subscriptions__mailing_list=mailing_list)
        fields.append("subscriptions__status")
    for values in rows.values_list(*fields).iterator(chunk_size=5000):
        email, name, status, created_at, attributes = values[:5]
        extra = [values[5]] if mailing_list is not None else []
        cells = [_cell(attributes.get(k)) for k in keys] if attributes else [""] * len(keys)
        yield writer.writerow([email, _cell(name), status, *extra, created_at.isoformat(), *cells])


# Spreadsheets run a cell that starts with one of these as a formula ("=cmd|' /C calc'!A0"):
# exported cells get a leading apostrophe, which spreadsheets hide and imports remove.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _uncell(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(_FORMULA_START) else text


# --- Subscriptions: the public form, confirmation, unsubscribe, preferences ----------------


class SubscriptionError(ValueError):
    """A subscription request that cannot be done; the message says why."""


def _active(status: str, mailing_list: MailingList) -> bool:
    return status == Subscription.Status.CONFIRMED or (
        status == Subscription.Status.UNCONFIRMED
        and mailing_list.opt_in == MailingList.OptIn.SINGLE
    )


@transaction.atomic
def subscriber_subscribe(
    *, email: str, name: str = "", lists: list[MailingList]
) -> tuple[Subscriber, list[MailingList]]:
    """Subscribe an address to public lists; returns it and the lists awaiting confirmation.

    Single opt-in lists take effect at once; double opt-in ones wait for the link in the
    confirmation message. A blocklisted address is left as it is, and the caller answers
    as if it had worked, so the form does not tell strangers who is blocklisted.
    """
    try:
        address = normalise_email(email)
    except EmailNotValidError as error:
        raise SubscriptionError(f"{email!r} is not a valid email address: {error}") from error
    if "\r" in name or "\n" in name:
        raise SubscriptionError("A name cannot contain line breaks.")
    subscriber, _ = Subscriber.objects.get_or_create(
        email=address, defaults={"name": name.strip()[:MAX_NAME]}
    )
    if subscriber.status == Subscriber.Status.BLOCKLISTED:
        return subscriber, []
    pending = []
    for mailing_list in lists:
        double = mailing_list.opt_in == MailingList.OptIn.DOUBLE
        subscription, _ = Subscription.objects.get_or_create(
            subscriber=subscriber,
            mailing_list=mailing_list,
            defaults={"status": Subscription.Status.UNCONFIRMED},
        )
        if subscription.status == Subscription.Status.CONFIRMED:
            continue
        # Someone who left a list and fills in its form again has asked to come back.
        subscription.status = (
            Subscription.Status.UNCONFIRMED if double else Subscription.Status.CONFIRMED
        )
        subscription.save(update_fields=["status", "updated_at"])
        if double:
            pending.append(mailing_list)
    return subscriber, pending


def subscription_confirm(*, subscriber_id: int, list_ids: list[int]) -> list[MailingList]:
    """Confirm the subscriptions a confirmation link names; returns the lists confirmed."""
    confirmed = Subscription.objects.filter(
        subscriber_id=subscriber_id,
        mailing_list_id__in=list_ids,
        status=Subscription.Status.UNCONFIRMED,
        subscriber__status=Subscriber.Status.ENABLED,
    )
    lists = list(MailingList.objects.filter(subscriptions__in=confirmed))
    confirmed.update(status=Subscription.Status.CONFIRMED)
    return lists


def subscriber_unsubscribe(
    *,
    subscriber: Subscriber,
    lists: Iterable[MailingList] | None = None,
    campaign_id: int | None = None,
) -> int:
    """Leave these lists (the lists of the campaign a link came from), or every list;
    messages not sent yet from campaigns to those lists are not sent. Returns how many
    subscriptions ended; when some did, the campaign whose link it was counts one
    unsubscribe."""
    subscriptions = Subscription.objects.filter(subscriber=subscriber).exclude(
        status=Subscription.Status.UNSUBSCRIBED
    )
    if lists is not None:
        subscriptions = subscriptions.filter(mailing_list__in=list(lists))
    left = subscriptions.update(status=Subscription.Status.UNSUBSCRIBED)
    _drop_pending(subscriber, "unsubscribed", keep_if_still_on_a_list=True)
    if left and campaign_id:
        from campaigns.models import Campaign, Unsubscribe

        if Campaign.objects.filter(pk=campaign_id).exists():
            Unsubscribe.objects.bulk_create(
                [Unsubscribe(campaign_id=campaign_id, subscriber_id=subscriber.pk)],
                ignore_conflicts=True,
            )
    return left


@transaction.atomic
def subscriber_set_lists(*, subscriber: Subscriber, wanted: set[int]) -> list[MailingList]:
    """The preferences page: stay on or join the public lists in `wanted`, leave the rest.

    Joining a double opt-in list from here needs no confirmation mail: the link the
    subscriber followed already proves the address is theirs. Returns the lists joined.
    """
    joined = []
    current = {
        s.mailing_list_id: s for s in subscriber.subscriptions.select_related("mailing_list")
    }
    for subscription in current.values():
        leaving = subscription.mailing_list_id not in wanted
        if leaving and subscription.status != Subscription.Status.UNSUBSCRIBED:
            subscription.status = Subscription.Status.UNSUBSCRIBED
            subscription.save(update_fields=["status", "updated_at"])
    for mailing_list in MailingList.objects.filter(pk__in=wanted):
        existing = current.get(mailing_list.pk)
        if existing is not None and _active(existing.status, mailing_list):
            continue
        if existing is None and not mailing_list.is_public:
            continue  # private lists are joined only by the people who run them
        Subscription.objects.update_or_create(
            subscriber=subscriber,
            mailing_list=mailing_list,
            defaults={"status": Subscription.Status.CONFIRMED},
        )
        joined.append(mailing_list)
    _drop_pending(subscriber, "unsubscribed", keep_if_still_on_a_list=True)
    return joined


def subscriber_blocklist(*, subscribers: Iterable[Subscriber]) -> int:
    """Never mail them again, whatever list they are on (their pending messages too)."""
    # Their unsent messages are refused at send time (the claim reads the status).
    ids = [s.pk for s in subscribers]
    return Subscriber.objects.filter(pk__in=ids).update(status=Subscriber.Status.BLOCKLISTED)


def subscriber_export(*, subscriber: Subscriber) -> dict:
    """Everything stored about a subscriber, for a GDPR access request."""
    from mailer.models import Delivery

    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "attributes": subscriber.attributes,
        "status": subscriber.status,
        "created_at": subscriber.created_at.isoformat(),
        "updated_at": subscriber.updated_at.isoformat(),
        "subscriptions": [
            {
                "list": s.mailing_list.name,
                "status": s.status,
                "since": s.created_at.isoformat(),
                "updated_at": s.updated_at.isoformat(),
            }
            for s in subscriber.subscriptions.select_related("mailing_list").order_by("pk")
        ],
        "messages": [
            {
                "campaign": d.campaign.name,
                "status": d.status,
                "sent_at": d.sent_at.isoformat() if d.sent_at else None,
                "reply": d.reply,
            }
            for d in Delivery.objects.filter(subscriber=subscriber)
            .select_related("campaign")
            .order_by("pk")
        ],
    }


def _drop_pending(subscriber: Subscriber, reason: str, *, keep_if_still_on_a_list: bool) -> int:
    """Take the subscriber's unsent messages out of running and waiting campaigns.

    The ledger is written when a campaign starts; someone who leaves afterwards must not
    get the rest. With `keep_if_still_on_a_list`, a campaign that also targets a list the
    subscriber is still on keeps its message.
    """
    from campaigns.models import Campaign
    from mailer.models import Delivery

    pending = Delivery.objects.filter(subscriber=subscriber, status=Delivery.Status.PENDING)
    campaign_ids = set(pending.values_list("campaign_id", flat=True))
    if keep_if_still_on_a_list and campaign_ids:
        still_on = [
            s.mailing_list_id
            for s in subscriber.subscriptions.select_related("mailing_list")
            if _active(s.status, s.mailing_list)
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


@transaction.atomic
def subscriber_erase(*, subscriber: Subscriber) -> None:
    """Delete a subscriber and scrub their address from the sending ledger (GDPR erasure)."""
    from mailer.models import Delivery

    _drop_pending(subscriber, "subscriber erased", keep_if_still_on_a_list=False)
    # Sent rows stay, without the address, so that campaign counts remain true.
    Delivery.objects.filter(subscriber=subscriber).update(email="erased@invalid", subscriber=None)
    subscriber.delete()


# --- Imports uploaded in the admin ----------------------------------------------------------


def subscriber_import_run(*, import_id: int) -> None:
    """Run an uploaded import (on a worker); its row shows progress, the result and a
    downloadable report of the skipped lines."""
    from django.core.files.base import ContentFile
    from django.utils import timezone

    from subscribers.models import SubscriberImport

    claimed = SubscriberImport.objects.filter(
        pk=import_id, status=SubscriberImport.Status.QUEUED
    ).update(status=SubscriberImport.Status.RUNNING, started_at=timezone.now())
    if not claimed:
        return  # another worker got there first, or it already ran
    job = SubscriberImport.objects.select_related("mailing_list").get(pk=import_id)
    size = max(job.file.size, 1)

    def progress(report: ImportReport) -> None:
        SubscriberImport.objects.filter(pk=job.pk).update(
            rows=report.rows,
            imported=report.imported,
            skipped=len(report.skipped),
            progress=min(report.bytes_read / size, 1.0),
        )

    try:
        with job.file.open("rb") as uploaded:
            report = subscribers_import_csv(
                stream=cast("BinaryIO", uploaded),
                mailing_list=job.mailing_list,
                mode=job.mode,
                progress=progress,
            )
    except (ImportFileError, OSError) as error:
        job.status = SubscriberImport.Status.FAILED
        job.message = f"{error} Nothing was imported."
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "message", "finished_at"])
        return
    if report.skipped:
        job.error_report.save(
            f"import-{job.pk}-skipped.csv",
            ContentFile("".join(report.error_report_csv()).encode()),
            save=False,
        )
    job.status = SubscriberImport.Status.DONE
    job.rows, job.imported, job.skipped = report.rows, report.imported, len(report.skipped)
    job.progress = 1.0
    job.message = (
        f"{report.imported:,} imported, {len(report.skipped):,} of {report.rows:,} rows "
        "skipped" + (" (see the report)" if report.skipped else "") + "."
    )
    job.finished_at = timezone.now()
    job.save()
