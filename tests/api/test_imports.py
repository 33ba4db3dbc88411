"""/api/import/subscribers: upload a CSV as listmonk's clients do (multipart, `params` as
JSON and `file`), follow it, read its log, stop it."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from subscribers.imports import subscriber_import_run
from subscribers.models import Subscriber, SubscriberImport, Subscription
from tests.factories import MailingListFactory

pytestmark = pytest.mark.django_db(transaction=True)


def upload(api_client, content: bytes, params: dict, name: str = "people.csv"):
    return api_client.client.post(
        "/api/import/subscribers",
        {"params": json.dumps(params), "file": SimpleUploadedFile(name, content, "text/csv")},
        HTTP_AUTHORIZATION=api_client.authorization,
    )


def test_an_uploaded_csv_is_imported_by_a_worker_and_reported(api_client, queued):
    news = MailingListFactory()
    content = b"email,name,city\nada@example.com,Ada,London\nnot-an-address,X,Y\n"
    response = upload(api_client, content, {"mode": "subscribe", "lists": [news.pk]})
    assert response.status_code == 200, response.json()
    assert response.json()["data"]["status"] == "importing"
    assert queued.run() == ["subscribers.tasks.run_import"]
    status = api_client.get("/import/subscribers").json()["data"]
    assert (status["status"], status["total"], status["imported"]) == ("finished", 2, 1)
    assert Subscription.objects.filter(mailing_list=news, subscriber__email="ada@example.com")
    log = api_client.get("/import/subscribers/logs").json()["data"]
    assert "1 imported" in log and "not-an-address" in log


def test_bad_uploads_are_refused_with_what_to_do(api_client, queued):
    news = MailingListFactory()
    workbook = upload(api_client, b"PK\x03\x04...", {"lists": [news.pk]}, name="people.xlsx")
    assert workbook.status_code == 400 and "CSV" in workbook.json()["message"]
    no_list = upload(api_client, b"email\na@example.com\n", {"mode": "subscribe"})
    assert no_list.status_code == 400 and "one list" in no_list.json()["message"]
    tabs = upload(api_client, b"email\n", {"lists": [news.pk], "delim": "\t"})
    assert tabs.status_code == 400 and "comma" in tabs.json()["message"]
    assert not SubscriberImport.objects.exists() and queued.calls == []


def test_a_queued_import_that_is_stopped_never_runs(api_client, queued):
    news = MailingListFactory()
    upload(api_client, b"email\na@example.com\n", {"lists": [news.pk]})
    stopped = api_client.delete("/import/subscribers").json()["data"]
    assert stopped["status"] == "stopped"
    queued.run()
    assert not Subscriber.objects.exists()


def test_a_running_import_stops_at_its_next_chunk_keeping_what_it_wrote(api_client, queued):
    news = MailingListFactory()
    rows = 200_000
    content = b"email\n" + b"".join(b"p%d@example.com\n" % n for n in range(rows))
    upload(api_client, content, {"lists": [news.pk]})
    job = SubscriberImport.objects.get()
    worker = threading.Thread(target=subscriber_import_run, kwargs={"import_id": job.pk})
    worker.start()
    deadline = time.monotonic() + 60
    while SubscriberImport.objects.get(pk=job.pk).imported == 0:
        assert time.monotonic() < deadline, "the import did not begin"
        time.sleep(0.01)
    api_client.delete("/import/subscribers")
    worker.join(timeout=60)
    job.refresh_from_db()
    assert job.status == SubscriberImport.Status.STOPPED
    assert 0 < job.imported < rows and job.message.startswith("Stopped:")
    assert Subscriber.objects.count() == job.imported
