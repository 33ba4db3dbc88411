"""An import accepts a CSV text file of bounded size and reads every line within a bound: a
workbook, a binary, an oversized file or a line without end is refused or reported, never
left to fill a worker's memory or disk."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from subscribers.imports import subscribers_import_csv
from subscribers.models import Subscriber, SubscriberImport
from subscribers.uploads import MAX_LINE_BYTES
from tests.factories import MailingListFactory

pytestmark = pytest.mark.django_db


def upload(admin_client, name: str, data: bytes) -> str:
    response = admin_client.post(
        "/admin/subscribers/subscriberimport/add/",
        {
            "file": SimpleUploadedFile(name, data),
            "mode": "subscribe",
            "mailing_list": MailingListFactory().pk,
        },
    )
    assert response.status_code == 200  # the form again, with the reason
    assert not SubscriberImport.objects.exists()
    return response.content.decode()


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("people.xlsx", b"PK\x03\x04rest of a workbook", "must be a CSV file"),
        ("people.csv", b"PK\x03\x04rest of a workbook", "an Excel workbook or a zip archive"),
        ("people.csv", b"\xd0\xcf\x11\xe0old workbook", "old Excel"),
        ("people.csv", b"email\n\x00\x01\x02\x03binary", "binary data"),
        ("run.sh", b"email\na@example.com\n", "must be a CSV file"),
    ],
)
def test_files_that_are_not_csv_text_are_refused_on_upload(admin_client, name, data, reason):
    assert reason in upload(admin_client, name, data)


def test_a_file_over_the_size_limit_is_refused_on_upload(admin_client, settings):
    settings.IMPORT_MAX_MB = 1
    page = upload(admin_client, "big.csv", b"email\n" + b"a@example.com\n" * 80_000)
    assert "at most 1 MB (IMPORT_MAX_MB)" in page


def test_a_line_without_end_is_reported_and_the_rest_imported():
    endless = b"x" * (MAX_LINE_BYTES * 3)
    data = b"email,city\na@example.com,Oslo\n" + endless + b"\nb@example.com,Rome\n"
    report = subscribers_import_csv(stream=io.BytesIO(data), mailing_list=MailingListFactory())
    assert report.imported == 2
    [(line, reason)] = report.skipped
    assert line == 3 and reason.startswith(f"a value is longer than {MAX_LINE_BYTES:,} bytes")
    assert set(Subscriber.objects.values_list("email", flat=True)) == {
        "a@example.com",
        "b@example.com",
    }
