"""Exports: subscribers as CSV (streamed, and importable again as it is) and one subscriber's
data as JSON for an access request."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from subscribers.models import MailingList, Subscriber
from subscribers.signals import subscriber_data_requested

# Columns an export writes that are not attributes: ignored when the file is imported again.
EXPORT_ONLY = ("status", "subscription", "created_at")


class Echo:
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
    writer = csv.writer(Echo())
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
        cells = [cell(attributes.get(k)) for k in keys] if attributes else [""] * len(keys)
        yield writer.writerow(
            [cell(email), cell(name), status, *extra, created_at.isoformat(), *cells]
        )


# Spreadsheets run a cell that starts with one of these as a formula ("=cmd|' /C calc'!A0"):
# exported cells get a leading apostrophe, which spreadsheets hide and imports remove.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """A value as an exported cell, defused if a spreadsheet would run it."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def uncell(text: str) -> str:
    """An imported cell as the value it was exported from."""
    return text[1:] if text.startswith("'") and text[1:].startswith(_FORMULA_START) else text


def subscriber_export(*, subscriber: Subscriber) -> dict[str, Any]:
    """Everything stored about a subscriber, for a GDPR access request."""
    data: dict[str, Any] = {
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
    }
    # What other apps hold about the subscriber (the messages sent to them, say).
    for _, sections in subscriber_data_requested.send(sender=Subscriber, subscriber=subscriber):
        if isinstance(sections, dict):
            data.update(sections)
    return data
