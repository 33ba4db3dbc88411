"""Subscriber writes: normalising addresses and importing CSV files in bulk."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from django.db import connection, transaction
from email_validator import EmailNotValidError, validate_email

from subscribers.models import MailingList, Subscription

# Rows per INSERT statement: large enough that the database does the work in bulk, small
# enough that one statement's arrays stay a few hundred kilobytes.
IMPORT_CHUNK = 5000
MAX_NAME = 200


class ImportFileError(ValueError):
    """The file as a whole cannot be imported; nothing was written."""


def normalise_email(raw: str) -> str:
    """A valid address in the form it is stored (lower case), or EmailNotValidError."""
    result = validate_email(raw.strip(), check_deliverability=False)
    return result.normalized.lower()


@dataclass
class ImportReport:
    imported: int = 0
    rows: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def add_error(self, line: int, reason: str) -> None:
        self.skipped.append((line, reason))


def _decoded_lines(stream: BinaryIO, bad_lines: set[int]) -> Iterator[str]:
    """Decode line by line, so one badly encoded line is reported instead of failing the file."""
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
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


def _write_chunk(rows: list[tuple[str, str, str]], mailing_list: MailingList, status: str) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            UPSERT_SUBSCRIBERS,
            [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]],
        )
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(INSERT_SUBSCRIPTIONS, [mailing_list.pk, status, ids])
    return len(ids)


def subscribers_import_csv(
    *,
    stream: BinaryIO,
    mailing_list: MailingList,
    confirmed: bool | None = None,
    progress: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Import `email`, `name` and attribute columns; bad rows are reported and skipped.

    confirmed: the status of new subscriptions; by default confirmed on single opt-in lists
    and unconfirmed on double opt-in lists (those subscribers get mail once they confirm).
    """
    if confirmed is None:
        confirmed = mailing_list.opt_in == MailingList.OptIn.SINGLE
    status = Subscription.Status.CONFIRMED if confirmed else Subscription.Status.UNCONFIRMED
    report = ImportReport()
    bad_encoding: set[int] = set()
    reader = csv.reader(_decoded_lines(stream, bad_encoding))
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
    attribute_columns = [(i, c) for i, c in enumerate(header) if c not in ("email", "name") and c]

    seen: dict[str, int] = {}
    pending: list[tuple[str, str, str]] = []
    for record in _records(reader, report):
        line, values = record
        report.rows += 1
        if line in bad_encoding:
            report.add_error(line, "the line is not valid UTF-8; save the file as UTF-8")
            continue
        if len(values) != len(header):
            report.add_error(line, f"{len(values)} columns where the header has {len(header)}")
            continue
        raw_email = values[email_at]
        try:
            email = normalise_email(raw_email)
        except EmailNotValidError as error:
            report.add_error(line, f"{raw_email!r} is not a valid email address: {error}")
            continue
        if email in seen:
            report.add_error(line, f"{email} already appears on line {seen[email]}")
            continue
        name = values[name_at].strip() if name_at is not None else ""
        if len(name) > MAX_NAME:
            report.add_error(line, f"the name is longer than {MAX_NAME} characters")
            continue
        seen[email] = line
        attributes = {column: values[i] for i, column in attribute_columns if values[i] != ""}
        pending.append((email, name, json.dumps(attributes)))
        if len(pending) >= IMPORT_CHUNK:
            report.imported += _write_chunk(pending, mailing_list, status)
            pending.clear()
            if progress:
                progress(report)
    if pending:
        report.imported += _write_chunk(pending, mailing_list, status)
    if progress:
        progress(report)
    return report


def _records(reader, report: ImportReport) -> Iterable[tuple[int, list[str]]]:
    """CSV records with the line each starts on; unreadable records are reported, not fatal."""
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            report.rows += 1
            report.add_error(start, f"cannot be read as CSV: {error}")
            continue
        if not any(v.strip() for v in values):
            continue  # blank line
        yield start, values
