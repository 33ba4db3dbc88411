from __future__ import annotations

import time
import uuid

import pytest

from campaigns.models import Campaign
from mailer import scheduler
from mailer.batch import run_batch
from mailer.models import Delivery, PerformanceSettings
from mailer.sender import MAX_SERVER_FAILURES
from mailer.smtp import pool
from settings.redis import get_redis, key
from tests.factories import (
    SmtpServerFactory,
    TemplateFactory,
    running_campaign,
)
from tests.smtp_sink import SmtpSink

pytestmark = pytest.mark.django_db


def batch() -> dict:
    return run_batch(batch_id=str(uuid.uuid4()))


def test_it_sends_each_due_recipient_a_personalised_message(sink_server, smtp_sink):
    campaign = running_campaign(3, template=TemplateFactory())

    summary = batch()

    assert summary["sent"] == 3 and summary["campaigns"] == {campaign.pk: 3}
    received = {r.rcpt_to: r.message() for r in smtp_sink.messages()}
    deliveries = Delivery.objects.filter(campaign=campaign).select_related("subscriber")
    assert set(received) == {d.email for d in deliveries}
    for delivery in deliveries:
        message = received[delivery.email]
        name = delivery.subscriber.name
        assert message["Subject"] == f"Hello {name}"
        assert f"Hi {name} from Lyon" in message.get_body(("html",)).get_content()
        assert f"Hi {name} from Lyon" in message.get_body(("plain",)).get_content()
        assert "footer" in message.get_body(("html",)).get_content()
        assert message["X-Campaign-ID"] == str(campaign.pk)
        assert delivery.status == "sent" and delivery.sent_at and delivery.attempts == 1
    campaign.refresh_from_db()
    assert campaign.sent == 3


def test_one_batch_serves_every_running_campaign_in_slices(sink_server, smtp_sink):
    PerformanceSettings.objects.update_or_create(pk=1, defaults={"batch_size": 2})
    first, second = running_campaign(5), running_campaign(5)

    summary = batch()

    assert summary["campaigns"] == {first.pk: 5, second.pk: 5}
    order = [m.campaign for m in smtp_sink.messages()]
    # Slices of two: both campaigns are under way from the start, not one after the other.
    assert set(order[:4]) == {str(first.pk), str(second.pk)}
    assert order.count(str(first.pk)) == order.count(str(second.pk)) == 5


def test_a_permanent_refusal_fails_the_recipient_and_a_temporary_one_retries_later(
    sink_server, smtp_sink
):
    campaign = running_campaign(3)
    bounce, later, fine = Delivery.objects.filter(campaign=campaign).order_by("id")
    replies = {bounce.email: "550 5.1.1 no such mailbox", later.email: "421 4.7.0 try later"}
    smtp_sink.handler.rcpt_reply = replies.get

    summary = batch()

    assert (summary["sent"], summary["failed"], summary["retry"]) == (1, 1, 1)
    bounce.refresh_from_db()
    later.refresh_from_db()
    fine.refresh_from_db()
    assert bounce.status == "failed" and bounce.reply.startswith("550")
    assert later.status == "pending" and later.next_attempt_at is not None
    assert later.reply.startswith("421") and later.attempts == 1
    assert fine.status == "sent"
    assert [r.rcpt_to for r in smtp_sink.messages()] == [fine.email]


def test_a_paused_campaign_sends_nothing_more(sink_server, smtp_sink):
    campaign = running_campaign(3)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)

    summary = batch()

    assert summary["sent"] == 0
    assert smtp_sink.messages() == []
    assert Delivery.objects.filter(campaign=campaign, status="pending").count() == 3
    assert campaign.pk not in scheduler.active_campaigns()


def test_a_refused_login_pauses_the_campaign_with_the_reason(db, monkeypatch):
    sink = SmtpSink(password="right").start()
    try:
        monkeypatch.setenv("SMTP_PASSWORD_SINK", "wrong")
        SmtpServerFactory(port=sink.port, username="mailer", password_env="SMTP_PASSWORD_SINK")
        campaign = running_campaign(3)
        batch()
    finally:
        sink.stop()

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert "refused the login for 'mailer'" in campaign.status_reason
    assert "password variable" in campaign.status_reason
    assert Delivery.objects.filter(campaign=campaign, status="pending").count() == 3


def test_the_right_password_from_the_environment_logs_in(db, monkeypatch):
    sink = SmtpSink(password="right").start()
    try:
        monkeypatch.setenv("SMTP_PASSWORD_SINK", "right")
        SmtpServerFactory(port=sink.port, username="mailer", password_env="SMTP_PASSWORD_SINK")
        running_campaign(2)
        summary = batch()
    finally:
        sink.stop()
        pool.close_all()
    assert summary["sent"] == 2


def test_an_unreachable_server_backs_off_then_pauses_the_campaign(db):
    SmtpServerFactory(port=1)  # nothing listens on port 1
    campaign = running_campaign(2)

    batch()
    assert scheduler.held(campaign.pk).startswith("SMTP server unavailable")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    assert Delivery.objects.filter(campaign=campaign, status="pending").count() == 2

    for _ in range(MAX_SERVER_FAILURES - 1):
        scheduler.release_hold(campaign.pk)
        batch()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert campaign.status_reason.startswith("paused after 5 failed attempts to connect")
    assert Delivery.objects.filter(campaign=campaign, status="pending").count() == 2
    assert get_redis().get(key("server-failures", campaign.pk)) == b"5"


def test_too_many_failures_pause_the_campaign(sink_server, smtp_sink):
    PerformanceSettings.objects.update_or_create(pk=1, defaults={"max_send_errors": 3})
    campaign = running_campaign(120)
    smtp_sink.handler.rcpt_reply = lambda address: "550 5.1.1 unknown user"

    summary = batch()

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert (
        "paused by errors: 50 failed sends in the last 10 minutes (limit 3"
        in campaign.status_reason
    )
    assert "550 5.1.1 unknown user" in campaign.status_reason
    # It stopped after the first slice; the rest waits for a person to look.
    assert summary["failed"] == 50
    assert Delivery.objects.filter(campaign=campaign, status="pending").count() == 70


def test_a_rate_limited_campaign_is_sent_at_its_rate(sink_server, smtp_sink):
    running_campaign(5, rate_limit=2)  # two a second: a slice of one every half second

    started = time.monotonic()
    summary = batch()

    assert summary["sent"] == 5
    times = [m.at for m in smtp_sink.messages()]
    assert times[-1] - times[0] >= 1.9
    assert time.monotonic() - started < 5


def test_a_test_send_renders_the_campaign_for_the_matching_subscriber(sink_server, smtp_sink):
    from mailer.transactional import send_campaign_test

    campaign = running_campaign(1)
    subscriber = Delivery.objects.get(campaign=campaign).subscriber

    replies = send_campaign_test(
        campaign_id=campaign.pk, to=[subscriber.email, "someone@else.example"]
    )

    assert all(reply.startswith("250") for reply in replies.values())
    received = {r.rcpt_to: r.message() for r in smtp_sink.messages()}
    assert received[subscriber.email]["Subject"] == f"[Test] Hello {subscriber.name}"
    assert received["someone@else.example"]["Subject"] == "[Test] Hello Test Recipient"
    # A test send is not part of the campaign: the ledger and counters are untouched.
    campaign.refresh_from_db()
    assert campaign.sent == 0


@pytest.mark.parametrize("pipelining", [True, False])
def test_replies_mean_the_same_with_and_without_pipelining(sink_server, smtp_sink, pipelining):
    smtp_sink.handler.pipelining = pipelining
    campaign = running_campaign(4, body="<p>.leading dot\n.another</p>")
    bounce, later, fine, also_fine = Delivery.objects.filter(campaign=campaign).order_by("id")
    replies = {bounce.email: "550 5.1.1 no such mailbox", later.email: "451 4.3.0 try later"}
    smtp_sink.handler.rcpt_reply = replies.get

    summary = batch()

    assert (summary["sent"], summary["failed"], summary["retry"]) == (2, 1, 1)
    received = {r.rcpt_to: r.message() for r in smtp_sink.messages()}
    assert set(received) == {fine.email, also_fine.email}
    # Lines starting with a dot arrive intact (dot-stuffing both ways).
    assert ".leading dot" in received[fine.email].get_body(("plain",)).get_content()
    later.refresh_from_db()
    assert later.status == "pending" and later.reply.startswith("451")
