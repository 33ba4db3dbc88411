"""/api/tx: transactional messages with listmonk's documented request, recorded from request
to reply, idempotent, scheduled, with attachments, within the shared limits and ahead of them;
and the project's own mail through the same path (the e-mail backend)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.mail import send_mail
from django.db import connections
from django.test import Client
from django.utils import timezone

from campaigns.models import Template
from mailer import throttle, tx
from mailer.models import PerformanceSettings
from mailer.tx_models import TxMessage
from subscribers.services import subscriber_erase
from tests.api.conftest import ApiClient
from tests.factories import MailingListFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

# listmonk's documentation: a tx template, then `POST /api/tx` with its example body.
LISTMONK_TX_TEMPLATE = {
    "name": "Order confirmation",
    "type": "tx",
    "subject": "Order {{ .Tx.Data.order_id }} confirmed",
    "body": "<p>Hi {{ .Subscriber.Name }}, order {{ .Tx.Data.order_id }} of "
    '{{ index .Tx.Data "date" }} is on its way. ({{ .Subscriber.UUID }})</p>',
}


@pytest.fixture
def template(api_client) -> dict:
    response = api_client.post("/templates", LISTMONK_TX_TEMPLATE)
    assert response.status_code == 200, response.content
    return response.json()["data"]


@pytest.fixture
def subscriber():
    return SubscriptionFactory(
        subscriber__email="user@listmonk.app", subscriber__name="Ann"
    ).subscriber


def example(template_id: int, **changes) -> dict:
    return {
        "subscriber_email": "user@listmonk.app",
        "template_id": template_id,
        "data": {"order_id": "1234", "date": "2022-07-30", "items": [1, 2, 3]},
        "content_type": "html",
        **changes,
    }


def test_listmonks_example_is_recorded_sent_and_shown(
    api_client, template, subscriber, sink_server, smtp_sink, queued
):
    assert template["type"] == "tx"
    assert template["subject"] == "Order {{ tx.data.order_id }} confirmed"

    response = api_client.post("/tx", example(template["id"]))

    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["data"] is True  # listmonk's answer, unchanged
    [queued_message] = answer["messages"]
    assert queued_message["status"] == "queued"
    assert response["Location"] == f"/api/tx/{queued_message['id']}"
    assert queued.run() == ["mailer.tasks.send_tx"]
    [received] = smtp_sink.messages()
    message = received.message()
    assert received.rcpt_to == "user@listmonk.app"
    assert message["Subject"] == "Order 1234 confirmed"
    html = message.get_body(("html",)).get_content()
    assert "Hi Ann, order 1234 of 2022-07-30" in html and str(subscriber.uuid) in html

    shown = api_client.get(f"/tx/{queued_message['id']}").json()["data"]
    assert shown["status"] == "sent"
    assert shown["reply"].startswith("250")
    assert shown["message_id"] == message["Message-ID"]
    assert shown["sent_at"] is not None
    # The encoded message is not kept once it went.
    assert bytes(TxMessage.objects.get(pk=shown["id"]).data) == b""


def test_the_same_idempotency_key_sends_once_and_answers_the_same(
    api_client, template, subscriber, sink_server, smtp_sink, queued
):
    headers = {"HTTP_IDEMPOTENCY_KEY": "order-1234"}
    first = post(api_client, example(template["id"]), **headers)
    again = post(api_client, example(template["id"]), **headers)
    other = post(api_client, example(template["id"], data={"order_id": "9"}), **headers)

    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["messages"][0]["id"] == first.json()["messages"][0]["id"]
    assert other.status_code == 422 and "different request" in other.json()["message"]
    queued.run()
    assert len(smtp_sink.messages()) == 1


@pytest.mark.django_db(transaction=True)
def test_racing_requests_with_one_key_make_one_message(make_api_client, sink_server, queued):
    api_client = make_api_client()
    template_id = api_client.post("/templates", LISTMONK_TX_TEMPLATE).json()["data"]["id"]
    SubscriptionFactory(subscriber__email="user@listmonk.app")
    answers: list = []
    # Three racers: with this process's own connection, the pool's four (DB_POOL_MAX_SIZE).
    start = threading.Barrier(3)

    def request() -> None:
        racer = ApiClient(Client(), api_client.authorization)
        start.wait()
        try:
            answers.append(post(racer, example(template_id), HTTP_IDEMPOTENCY_KEY="race"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=request) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [a.status_code for a in answers] == [200] * 3
    assert sorted(a.get("Idempotent-Replayed", "") for a in answers) == ["", "true", "true"]
    assert len({a.json()["messages"][0]["id"] for a in answers}) == 1
    assert TxMessage.objects.count() == 1


def test_send_at_waits_in_the_table_until_the_sweep_finds_it_due(
    api_client, template, subscriber, sink_server, smtp_sink, queued
):
    later = timezone.now() + timedelta(hours=2)
    response = api_client.post("/tx", example(template["id"], send_at=later.isoformat()))

    assert response.status_code == 200
    assert queued.calls == []  # no Celery ETA: the row waits
    assert tx.sweep(PerformanceSettings.load()) == 0
    TxMessage.objects.update(send_at=timezone.now() - timedelta(seconds=1))
    assert tx.sweep(PerformanceSettings.load()) == 1
    queued.run()
    assert len(smtp_sink.messages()) == 1
    assert tx.sweep(PerformanceSettings.load()) == 0


def test_attachments_go_as_multipart_within_a_size_limit(
    api_client, template, subscriber, sink_server, smtp_sink, queued, monkeypatch
):
    files = [make_file("invoice.pdf", b"%PDF-1.4 ..."), make_file("notes.txt", b"hello")]
    response = post_multipart(api_client, example(template["id"]), files)

    assert response.status_code == 200, response.content
    queued.run()
    [received] = smtp_sink.messages()
    names = {a.get_filename(): a.get_content() for a in received.message().iter_attachments()}
    assert names == {"invoice.pdf": b"%PDF-1.4 ...", "notes.txt": b"hello"}

    monkeypatch.setattr("api.tx.MAX_ATTACHMENT_BYTES", 1000)
    oversized = post_multipart(
        api_client, example(template["id"]), [make_file("big.bin", b"x" * 1001)]
    )
    assert oversized.status_code == 413 and "over" in oversized.json()["message"]
    assert TxMessage.objects.count() == 1


def test_refusals_say_what_is_wrong(make_api_client, api_client, template, subscriber, queued):
    other_list = MailingListFactory()
    scoped = make_api_client("scoped", role="Campaign manager", lists=[other_list])

    # A token for one list does not reach another list's subscriber.
    hidden = scoped.post("/tx", example(template["id"]))
    assert hidden.status_code == 404
    by_id = scoped.post("/tx", example(template["id"], subscriber_email=None,
                                       subscriber_id=subscriber.pk))  # fmt: skip
    assert by_id.status_code == 404
    stranger = api_client.post("/tx", example(template["id"], subscriber_email="x@y.example"))
    assert stranger.status_code == 404 and "external" in stranger.json()["message"]
    header = api_client.post("/tx", example(template["id"], headers=[{"From": "ceo@x.example"}]))
    assert header.status_code == 400 and "From" in header.json()["message"]
    layout = Template.objects.create(name="Layout", html="<div>{{ content }}</div>")
    wrong = api_client.post("/tx", example(layout.pk))
    assert wrong.status_code == 404 and "tx" in wrong.json()["message"]
    assert (
        api_client.post("/tx", example(template["id"], send_at="2026-01-01T10:00")).status_code
        == 400
    )
    assert TxMessage.objects.count() == 0
    assert queued.calls == []


def test_external_mode_sends_to_any_address(api_client, template, sink_server, smtp_sink, queued):
    response = api_client.post(
        "/tx",
        example(template["id"], subscriber_email="buyer@shop.example", subscriber_mode="external"),
    )

    assert response.status_code == 200, response.content
    queued.run()
    [received] = smtp_sink.messages()
    assert received.rcpt_to == "buyer@shop.example"


def test_a_refused_message_fails_and_a_deferred_one_is_retried(
    api_client, template, subscriber, sink_server, smtp_sink, queued
):
    replies = iter(["451 4.3.0 try later", None])
    smtp_sink.handler.data_reply = lambda envelope: next(replies)

    message_id = api_client.post("/tx", example(template["id"])).json()["messages"][0]["id"]
    queued.run()
    row = TxMessage.objects.get(pk=message_id)
    assert (row.status, row.attempts, row.reply) == ("queued", 1, "451 4.3.0 try later")
    TxMessage.objects.update(next_attempt_at=timezone.now())
    assert tx.sweep(PerformanceSettings.load()) == 1
    queued.run()
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 2)

    smtp_sink.handler.data_reply = lambda envelope: "554 5.7.1 rejected"
    refused = api_client.post("/tx", example(template["id"])).json()["messages"][0]["id"]
    queued.run()
    assert TxMessage.objects.get(pk=refused).status == "failed"


def test_a_transactional_message_goes_ahead_of_a_campaign_within_the_global_rate(db):
    PerformanceSettings.objects.update(message_rate=20)
    bulk = throttle.Throttle(
        campaign_id=1, campaign_rate=None, global_rate=20, server_key="s", server_rate=None,
        domain_rates={},
    )  # fmt: skip
    urgent = throttle.Throttle(
        campaign_id=None, campaign_rate=None, global_rate=20, server_key="s", server_rate=None,
        domain_rates={}, burst=throttle.PRIORITY_BURST_SECONDS,
    )  # fmt: skip
    # The campaign empties the global bucket, as a campaign sending at full speed does.
    while bulk.acquire(["example.com"]).positions:
        pass

    assert urgent.acquire(["example.com"]).positions == [0]
    # The campaign now waits for the token the message took: the total stays at the rate.
    refused = bulk.acquire(["example.com"])
    assert refused.positions == [] and refused.limited_by == "global"
    assert refused.wait > 1 / 20


def test_djangos_own_mail_goes_through_the_same_path(settings, sink_server, smtp_sink, queued):
    settings.MAILERS = {"default": {"BACKEND": "mailer.email_backend.TransactionalBackend"}}

    send_mail("Reset your password", "Follow the link.", "site@shop.example", ["ann@x.example"])

    [row] = TxMessage.objects.all()
    assert (row.kind, row.status, row.to_email) == ("site", "queued", "ann@x.example")
    queued.run()
    [received] = smtp_sink.messages()
    assert received.message()["Subject"] == "Reset your password"
    row.refresh_from_db()
    assert row.status == "sent" and row.message_id == received.message()["Message-ID"]


def post(api_client: ApiClient, body: dict, **headers):
    return api_client.client.post(
        "/api/tx",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=api_client.authorization,
        **headers,
    )


def make_file(name: str, content: bytes):
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def post_multipart(api_client: ApiClient, body: dict, files: list):
    return api_client.client.post(
        "/api/tx",
        {"data": json.dumps(body), "file": files},
        HTTP_AUTHORIZATION=api_client.authorization,
    )


def test_erasing_a_subscriber_scrubs_their_transactional_messages(
    api_client, template, subscriber, sink_server, queued
):
    api_client.post("/tx", example(template["id"]))
    queued.run()

    subscriber_erase(subscriber=subscriber)

    [row] = TxMessage.objects.all()
    assert (row.to_email, row.subject, row.subscriber_id) == ("erased", "", None)
    assert row.status == "sent" and row.reply.startswith("250")


def test_markdown_and_plain_bodies_and_a_subject_of_the_request(
    api_client, subscriber, sink_server, smtp_sink, queued
):
    markdown = api_client.post("/templates", {
        "name": "Shipped", "type": "tx", "subject": "Shipped",
        "body": "**Order {{ .Tx.Data.order_id }}** has shipped.",
    }).json()["data"]  # fmt: skip

    as_markdown = example(markdown["id"], content_type="markdown",
                          subject="Your order {{ .Tx.Data.order_id }}")  # fmt: skip
    assert api_client.post("/tx", as_markdown).status_code == 200
    assert api_client.post("/tx", example(markdown["id"], content_type="plain")).status_code == 200
    queued.run()

    html_message, plain_message = (m.message() for m in smtp_sink.messages())
    assert html_message["Subject"] == "Your order 1234"
    assert "<strong>Order 1234</strong>" in html_message.get_body(("html",)).get_content()
    assert plain_message.get_body(("html",)) is None
    assert "**Order 1234** has shipped." in plain_message.get_body(("plain",)).get_content()
