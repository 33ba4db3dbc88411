"""Transactional messages and webhooks end to end: requests to the real web app (gunicorn),
messages sent by a real worker to the SMTP sink, a later one sent by the dispatcher's sweep,
and a webhook delivered by a real worker to a real HTTP server, signed."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook

from api.tokens import api_user_create
from campaigns.models import Template
from mailer.tx_models import TxMessage
from tests.e2e.helpers import wait_until
from webhooks.models import Endpoint

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def call(base: str, authorization: str, method: str, path: str, body: dict | None = None):
    request = urllib.request.Request(  # noqa: S310 (the test's own server)
        f"{base}/api{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": authorization, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


@pytest.fixture
def app(processes, sink_server, roles):
    processes.env["WEBHOOKS_ALLOW_PRIVATE_URLS"] = "true"
    base = processes.web()
    processes.system(senders=1, concurrency=1)
    _, secret = api_user_create(name="shop", role="Admin", list_ids=[])
    Template.objects.create(
        name="Receipt", kind="tx", subject="Receipt {{ tx.data.order }}",
        html="<p>Order {{ tx.data.order }}</p>",
    )  # fmt: skip
    return base, f"token shop:{secret}"


def test_a_message_and_a_later_one_reach_the_server(app, smtp_sink):
    base, authorization = app
    now = call(base, authorization, "POST", "/tx", {
        "subscriber_email": "buyer@shop.example", "subscriber_mode": "external",
        "template_name": "Receipt", "data": {"order": "1"},
    })  # fmt: skip
    later_at = datetime.now(UTC) + timedelta(seconds=3)
    later = call(base, authorization, "POST", "/tx", {
        "subscriber_email": "buyer@shop.example", "subscriber_mode": "external",
        "template_name": "Receipt", "data": {"order": "2"}, "send_at": later_at.isoformat(),
    })  # fmt: skip

    first_id = now["messages"][0]["id"]
    wait_until(lambda: TxMessage.objects.get(pk=first_id).status == "sent", 20, "the first")
    shown = call(base, authorization, "GET", f"/tx/{first_id}")["data"]
    assert shown["reply"].startswith("250")
    later_id = later["messages"][0]["id"]
    wait_until(lambda: TxMessage.objects.get(pk=later_id).status == "sent", 20, "the later one")
    assert TxMessage.objects.get(pk=later_id).sent_at >= later_at
    subjects = sorted(m.message()["Subject"] for m in smtp_sink.messages())
    assert subjects == ["Receipt 1", "Receipt 2"]


class Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_webhook_is_delivered_by_a_worker(app):
    base, authorization = app
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = Endpoint.objects.create(
            name="CRM",
            url=f"http://127.0.0.1:{server.server_address[1]}/in",
            events=["subscriber.created"],
        )
        started = time.monotonic()
        call(base, authorization, "POST", "/subscribers", {"email": "ada@example.com"})

        wait_until(lambda: Receiver.received, 20, "the webhook")
        headers, body = Receiver.received[0]
        event = Webhook(endpoint.secret).verify(body, headers)
        assert event["type"] == "subscriber.created"
        assert event["data"]["email"] == "ada@example.com"
        # Queued by the change itself, not left to beat's next sweep.
        assert time.monotonic() - started < 5
    finally:
        server.shutdown()
