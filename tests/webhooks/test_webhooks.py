"""Outgoing webhooks: events written to the outbox in the change's transaction, delivered to a
real HTTP server signed per Standard Webhooks, retried with back-off, logged, replayed; and
endpoints on loopback or private addresses refused unless a setting allows them."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from campaigns.models import Campaign
from mailer.bounces import bounce_record
from subscribers.models import Subscriber
from subscribers.services import subscriber_blocklist, subscriber_unsubscribe
from tests.factories import CampaignFactory, SubscriberFactory, SubscriptionFactory
from webhooks import delivery
from webhooks.addresses import UnsafeURL, checked_address
from webhooks.models import Delivery, Endpoint, Event

pytestmark = pytest.mark.django_db


class Receiver:
    """A real HTTP server that records what it is sent and answers `status`."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 204
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks?from=mailer"

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.server.shutdown()


@pytest.fixture
def endpoint(receiver, settings) -> Endpoint:
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True  # the test receiver is on loopback
    endpoint = Endpoint(name="CRM", url=receiver.url)
    endpoint.full_clean()
    endpoint.save()
    return endpoint


def test_events_are_delivered_signed_and_logged(endpoint, receiver, queued):
    subscriber = SubscriberFactory(email="ann@example.com", name="Ann")
    subscriber.name = "Ann B"
    subscriber.save()

    assert set(queued.run()) == {"webhooks.tasks.deliver_webhooks"}
    kinds = [event["type"] for event in receiver.events()]
    assert kinds == ["subscriber.created", "subscriber.updated"]
    headers, body = receiver.requests[1]
    # The receiver's check, as the README shows it.
    payload = Webhook(endpoint.secret).verify(body, headers)
    assert payload["data"]["email"] == "ann@example.com"
    assert payload["data"]["name"] == "Ann B"
    assert headers["webhook-id"].startswith("evt_")
    assert Delivery.objects.filter(status="delivered", last_status_code=204).count() == 2


def test_a_rolled_back_change_announces_nothing(endpoint, queued):
    with pytest.raises(RuntimeError), transaction.atomic():
        SubscriberFactory()
        raise RuntimeError("the change fails")

    assert Event.objects.count() == 0 and Delivery.objects.count() == 0


def test_every_kind_of_event_reaches_the_outbox(endpoint, queued, sink_server):
    subscription = SubscriptionFactory()
    subscriber = subscription.subscriber
    subscriber_unsubscribe(subscriber=subscriber)
    subscriber_blocklist(subscribers=[SubscriberFactory()])
    bounce_record(email=subscriber.email, kind="hard", source="test")
    bounce_record(email=subscriber.email, kind="complaint", source="test")
    campaign = CampaignFactory(lists=[subscription.mailing_list])
    campaign.change_status(Campaign.Status.SCHEDULED)
    campaign.change_status(Campaign.Status.RUNNING)
    campaign.change_status(Campaign.Status.PAUSED)

    kinds = set(Event.objects.values_list("kind", flat=True))
    assert {
        "subscriber.created",
        "subscriber.unsubscribed",
        "subscriber.blocklisted",
        "bounce.received",
        "complaint.received",
        "campaign.started",
        "campaign.paused",
    } <= kinds


def test_an_endpoint_gets_only_the_events_it_asked_for(endpoint, queued):
    endpoint.events = ["subscriber.blocklisted"]
    endpoint.save()
    subscriber = SubscriberFactory()
    subscriber_blocklist(subscribers=[subscriber])

    assert list(Event.objects.values_list("kind", flat=True)) == ["subscriber.blocklisted"]
    assert Subscriber.objects.get(pk=subscriber.pk).status == "blocklisted"


def test_a_failing_endpoint_is_retried_with_back_off_then_given_up(endpoint, receiver, queued):
    receiver.status = 500
    SubscriberFactory()

    queued.run()
    row = Delivery.objects.get()
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 500)
    wait = (row.next_attempt_at - timezone.now()).total_seconds()
    assert 8 < wait <= 10
    assert delivery.deliver_due() == 0  # not due yet

    Delivery.objects.update(next_attempt_at=timezone.now())
    delivery.deliver_due()
    row.refresh_from_db()
    assert row.attempts == 2
    assert 18 < (row.next_attempt_at - timezone.now()).total_seconds() <= 20

    # A day after the event, the next failure is the last.
    Event.objects.update(created_at=timezone.now() - timedelta(days=1, seconds=1))
    Delivery.objects.update(next_attempt_at=timezone.now())
    delivery.deliver_due()
    row.refresh_from_db()
    assert row.status == "failed" and row.attempts == 3

    # Replay sends it again, as a new delivery in the log.
    receiver.status = 200
    assert delivery.replay([row]) == 1
    delivery.deliver_due()
    assert Delivery.objects.filter(status="delivered").count() == 1
    assert len(receiver.requests) == 4
    assert len({headers["webhook-id"] for headers, _ in receiver.requests}) == 1


def test_loopback_and_private_urls_are_refused_by_default(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    for url in (
        "http://127.0.0.1:8000/x",
        "http://localhost/x",
        "http://10.0.0.5/x",
        "http://192.168.1.1/x",
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "ftp://example.com/x",
    ):
        with pytest.raises(ValidationError) as refused:
            Endpoint(name="x", url=url).full_clean()
        assert "url" in refused.value.message_dict, url


def test_an_endpoint_allowed_once_is_checked_again_at_each_delivery(
    endpoint, receiver, settings, queued
):
    # Saved while private addresses were allowed (or its name resolved elsewhere then).
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    with pytest.raises(UnsafeURL):
        checked_address(endpoint.url)
    SubscriberFactory()

    queued.run()

    assert receiver.requests == []
    row = Delivery.objects.get()
    assert row.status == "pending" and row.last_response.startswith("refused:")


def test_endpoints_and_the_log_need_their_permissions(client, django_user_model, roles):
    editor = django_user_model.objects.create_user("ed", password="pw", is_staff=True)
    editor.groups.add(Group.objects.get(name="Campaign manager"))
    client.force_login(editor)

    assert client.get("/admin/webhooks/endpoint/").status_code == 403
    assert client.get("/admin/webhooks/delivery/").status_code == 403
