"""Exported files are opened in spreadsheets, which run a cell that starts with = + - @ as a
formula: no cell the project writes may start like that, whoever chose its text."""

from __future__ import annotations

import csv
import io

import pytest

from subscribers.exports import subscribers_export_csv
from subscribers.imports import subscribers_import_csv
from subscribers.models import Subscriber
from tests.factories import MailingListFactory, SubscriberFactory

pytestmark = pytest.mark.django_db

# A valid address: "=" and "+" are allowed in the part before the @.
FORMULA_ADDRESS = "=1+2@example.com"


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_an_address_that_reads_as_a_formula_is_exported_defused_and_imports_back_the_same():
    SubscriberFactory(email=FORMULA_ADDRESS)

    exported = "".join(subscribers_export_csv(subscribers=Subscriber.objects.all()))
    report = subscribers_import_csv(
        stream=io.BytesIO(exported.encode()), mailing_list=MailingListFactory()
    )

    assert cells(exported)[1][0] == "'" + FORMULA_ADDRESS
    assert report.skipped == []
    assert list(Subscriber.objects.values_list("email", flat=True)) == [FORMULA_ADDRESS]


def test_the_report_of_skipped_lines_writes_no_formula():
    upload = f"email\n{FORMULA_ADDRESS}\n{FORMULA_ADDRESS}\n-cmd|calc@x\n".encode()

    report = subscribers_import_csv(stream=io.BytesIO(upload), mailing_list=MailingListFactory())
    rows = cells("".join(report.error_report_csv()))

    assert len(rows) == 3
    for line, reason in rows[1:]:
        assert line.isdigit()
        assert not reason.startswith(("=", "+", "-", "@"))
