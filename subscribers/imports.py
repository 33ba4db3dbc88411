"""CSV imports: subscribe, update or blocklist the addresses of a file, in bulk.

Rows are written with one hand-written statement per few thousand rows (`unnest` arrays,
`ON CONFLICT` upserts): the ORM's bulk_create cannot merge attributes or keep an existing
subscription's status, and row-by-row saves are a hundred times slower at a million rows.
A bad row is reported with its line and skipped; the rest of the file goes in.
"""

from __future__ import annotations

import csv
import enum
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from settings import audit
from subscribers.addresses import EmailNotValidError, normalise_email
from subscribers.exports import EXPORT_ONLY, Echo, cell, uncell
from subscribers.models import MAX_NAME, MailingList, SubscriberImport, Subscription
from subscribers.uploads import MAX_LINE_BYTES

# Rows per INSERT statement: large enough that the database does the work in bulk, small
# enough that one statement's arrays stay a few hundred kilobytes.
IMPORT_CHUNK = 5000


class ImportFileError(ValueError):
    """The file as a whole cannot be imported; nothing was written."""


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
        writer = csv.writer(Echo(), quoting=csv.QUOTE_NONNUMERIC)
        yield "line,reason\r\n"
        for line, reason in self.skipped:
            # A reason quotes the line's text, which may read as a formula in a spreadsheet.
            yield writer.writerow([line, cell(reason)])


def _decoded_lines(stream: BinaryIO, bad_lines: set[int], report: ImportReport) -> Iterator[str]:
    """Decode line by line, so one badly encoded line is reported instead of failing the file."""
    number = 0
    while raw := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        report.bytes_read += len(raw)
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            # Read the rest of the line without keeping it, and say why it was skipped.
            while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                report.bytes_read += len(rest)
            report.bytes_read += len(rest)
            report.rows += 1
            report.add_error(
                number,
                f"a value is longer than {MAX_LINE_BYTES:,} bytes: the line is longer than any "
                "subscriber needs (is this a CSV file?)",
            )
            yield "\n"
            continue
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if number == 1 and (raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw):
            raise ImportFileError(
                _(
                    "The file is UTF-16 text (as Excel's 'Unicode Text' saves), not UTF-8; save "
                    "it as 'CSV UTF-8' and import it again."
                )
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
            raise ImportFileError(
                _("Choose the mailing list to subscribe the file's addresses to.")
            )
        if confirmed is None:
            confirmed = mailing_list.opt_in == MailingList.OptIn.SINGLE
        status = Subscription.Status.CONFIRMED if confirmed else Subscription.Status.UNCONFIRMED
    report = ImportReport()
    bad_encoding: set[int] = set()
    reader = csv.reader(_decoded_lines(stream, bad_encoding, report))
    try:
        header = [column.strip().lower() for column in next(reader)]
    except StopIteration:
        raise ImportFileError(
            _("The file is empty; the first row must name the columns.")
        ) from None
    except csv.Error as error:
        raise ImportFileError(
            _("The header row cannot be read as CSV: %(error)s.") % {"error": error}
        ) from None
    if "email" not in header:
        found = ", ".join(repr(c) for c in header) or "none"
        raise ImportFileError(
            _(
                "The file has no 'email' column (columns found: %(found)s). The first "
                "row must name the columns: 'email' is required, 'name' is optional, "
                "any other column is stored in the subscriber's attributes."
            )
            % {"found": found}
        )
    duplicates = [c for c in set(header) if header.count(c) > 1 and c]
    if duplicates:
        raise ImportFileError(
            _("The header names these columns twice: %(value)s; rename or remove the repeats.")
            % {"value": ", ".join(sorted(duplicates))}
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
        raw_email = uncell(values[email_at])
        try:
            email = normalise_email(raw_email)
        except EmailNotValidError as error:
            skip(line, last, f"{raw_email!r} is not a valid email address: {error}")
            continue
        if email in seen:
            skip(line, last, f"{email} already appears on line {seen[email]}")
            continue
        name = uncell(values[name_at].strip()) if name_at is not None else ""
        if len(name) > MAX_NAME:
            skip(line, last, f"the name is longer than {MAX_NAME} characters")
            continue
        if "\r" in name or "\n" in name:
            skip(line, last, "the name contains a line break")
            continue
        seen[email] = line
        attributes = {
            column: uncell(values[i]) for i, column in attribute_columns if values[i] != ""
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


class ImportStopped(Exception):
    """Somebody stopped the import while it ran (subscriber_import_stop)."""


def subscriber_import_stop(*, job: SubscriberImport) -> bool:
    """Stop a queued or running import: a queued one never starts, a running one stops at
    its next chunk, keeping what it wrote. Returns whether it was stopped."""
    return bool(
        SubscriberImport.objects.filter(
            pk=job.pk,
            status__in=[SubscriberImport.Status.QUEUED, SubscriberImport.Status.RUNNING],
        ).update(status=SubscriberImport.Status.STOPPED, finished_at=timezone.now())
    )


def subscriber_import_run(*, import_id: int) -> None:
    """Run an uploaded import (on a worker); its row shows progress, the result and a
    downloadable report of the skipped lines."""
    claimed = SubscriberImport.objects.filter(
        pk=import_id, status=SubscriberImport.Status.QUEUED
    ).update(status=SubscriberImport.Status.RUNNING, started_at=timezone.now())
    if not claimed:
        return  # another worker got there first, or it already ran
    job = SubscriberImport.objects.select_related("mailing_list").get(pk=import_id)
    # The audit trail names whoever uploaded the file as the one who imported it.
    with audit.acting_as(job.created_by):
        _run(job)


def _run(job: SubscriberImport) -> None:
    size = max(job.file.size, 1)

    def progress(report: ImportReport) -> None:
        figures = {
            "rows": report.rows,
            "imported": report.imported,
            "skipped": len(report.skipped),
            "progress": min(report.bytes_read / size, 1.0),
        }
        rows = SubscriberImport.objects.filter(pk=job.pk)
        if not rows.filter(status=SubscriberImport.Status.RUNNING).update(**figures):
            rows.update(**figures)  # stopped meanwhile: what it wrote is counted all the same
            raise ImportStopped

    try:
        with job.file.open("rb") as uploaded:
            report = subscribers_import_csv(
                stream=cast("BinaryIO", uploaded),
                mailing_list=job.mailing_list,
                mode=job.mode,
                progress=progress,
            )
    except ImportStopped:
        job.refresh_from_db()
        job.message = (
            f"Stopped: {job.imported:,} of the {job.rows:,} rows read were imported; the rest "
            "of the file was not read."
        )
        job.save(update_fields=["message"])
        return
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
