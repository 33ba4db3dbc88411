from __future__ import annotations

import uuid

import pytest

from campaigns.models import Campaign
from mailer import dispatcher
from mailer.batch import run_batch
from mailer.models import Delivery, PerformanceSettings
from tests.factories import CampaignFactory, MailingListFactory, TemplateFactory, audience

pytestmark = pytest.mark.django_db


def running_campaign(count: int, **kwargs) -> Campaign:
    mailing_list = MailingListFactory()
    audience(mailing_list, count)
    campaign = CampaignFactory(status=Campaign.Status.SCHEDULED, lists=[mailing_list], **kwargs)
    dispatcher.campaign_begin(campaign.pk)
    campaign.refresh_from_db()
    return campaign


def test_it_sends_each_claimed_recipient_a_personalised_message(sink_server, smtp_sink):
    campaign = running_campaign(3, template=TemplateFactory())

    counts = run_batch(campaign_id=campaign.pk, batch_id=str(uuid.uuid4()))

    assert counts["sent"] == 3
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


def test_it_claims_no_more_than_the_batch_size(sink_server, smtp_sink):
    PerformanceSettings.objects.update_or_create(pk=1, defaults={"batch_size": 2})
    campaign = running_campaign(5)

    run_batch(campaign_id=campaign.pk, batch_id=str(uuid.uuid4()))

    assert len(smtp_sink.messages()) == 2
    assert Delivery.objects.filter(campaign=campaign, status="pending").count() == 3


def test_a_permanent_refusal_fails_the_recipient_and_a_temporary_one_retries_later(
    sink_server, smtp_sink
):
    campaign = running_campaign(3)
    bounce, later, fine = Delivery.objects.filter(campaign=campaign).order_by("id")
    replies = {bounce.email: "550 5.1.1 no such mailbox", later.email: "421 4.7.0 try later"}
    smtp_sink.handler.rcpt_reply = replies.get

    counts = run_batch(campaign_id=campaign.pk, batch_id=str(uuid.uuid4()))

    assert counts == {"claimed": 3, "sent": 1, "failed": 1, "retry": 1, "given_back": 0}
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

    counts = run_batch(campaign_id=campaign.pk, batch_id=str(uuid.uuid4()))

    assert counts["sent"] == 0
    assert smtp_sink.messages() == []
    assert Delivery.objects.filter(campaign=campaign, status="pending").count() == 3


def test_an_unreachable_server_gives_every_claimed_row_back(smtp_sink, db):
    from tests.factories import SmtpServerFactory

    SmtpServerFactory(port=1)  # nothing listens on port 1
    campaign = running_campaign(2)

    counts = run_batch(campaign_id=campaign.pk, batch_id=str(uuid.uuid4()))

    assert counts["given_back"] == 2
    assert Delivery.objects.filter(campaign=campaign, status="pending").count() == 2


def test_a_refused_login_pauses_the_campaign_with_the_reason(db, monkeypatch):
    from tests.factories import SmtpServerFactory
    from tests.smtp_sink import SmtpSink

    sink = SmtpSink(password="right").start()
    try:
        monkeypatch.setenv("SINK_PASSWORD", "wrong")
        SmtpServerFactory(port=sink.port, username="mailer", password_env="SINK_PASSWORD")
        campaign = running_campaign(3)

        counts = run_batch(campaign_id=campaign.pk, batch_id=str(uuid.uuid4()))
    finally:
        sink.stop()

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert "refused the login for 'mailer'" in campaign.status_reason
    assert "password variable" in campaign.status_reason
    assert counts["given_back"] == 3
    assert Delivery.objects.filter(campaign=campaign, status="pending").count() == 3


def test_the_right_password_from_the_environment_logs_in(db, monkeypatch):
    from tests.factories import SmtpServerFactory
    from tests.smtp_sink import SmtpSink

    sink = SmtpSink(password="right").start()
    try:
        monkeypatch.setenv("SINK_PASSWORD", "right")
        SmtpServerFactory(port=sink.port, username="mailer", password_env="SINK_PASSWORD")
        campaign = running_campaign(2)
        counts = run_batch(campaign_id=campaign.pk, batch_id=str(uuid.uuid4()))
    finally:
        sink.stop()
        from mailer.smtp import pool

        pool.close_all()
    assert counts["sent"] == 2


def test_an_unreachable_server_backs_off_then_pauses_the_campaign(smtp_sink, db):
    from mailer import throttle
    from mailer.batch import MAX_SERVER_FAILURES
    from tests.factories import SmtpServerFactory

    SmtpServerFactory(port=1)
    campaign = running_campaign(2)

    run_batch(campaign_id=campaign.pk, batch_id=str(uuid.uuid4()))
    assert throttle.held(campaign.pk).startswith("SMTP server unavailable")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING

    for _ in range(MAX_SERVER_FAILURES - 1):
        from mailer.redis_store import get_redis, key

        get_redis().delete(key("hold", campaign.pk))
        run_batch(campaign_id=campaign.pk, batch_id=str(uuid.uuid4()))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert campaign.status_reason.startswith("paused after 5 failed attempts to connect")
    assert Delivery.objects.filter(campaign=campaign, status="pending").count() == 2


def test_too_many_failures_pause_the_campaign(sink_server, smtp_sink):
    PerformanceSettings.objects.update_or_create(pk=1, defaults={"max_send_errors": 3})
    campaign = running_campaign(120)
    smtp_sink.handler.rcpt_reply = lambda address: "550 5.1.1 unknown user"

    counts = run_batch(campaign_id=campaign.pk, batch_id=str(uuid.uuid4()))

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert (
        "paused by errors: 50 failed sends in the last 10 minutes (limit 3"
        in campaign.status_reason
    )
    assert "550 5.1.1 unknown user" in campaign.status_reason
    # It stopped after the first chunk; the rest waits for a person to look.
    assert counts["failed"] == 50
    assert Delivery.objects.filter(campaign=campaign, status="pending").count() == 70


def test_a_long_token_wait_ends_the_batch_and_holds_the_campaign(sink_server, smtp_sink):
    from mailer import throttle

    campaign = running_campaign(5, rate_limit=1)  # one message a second, burst of one

    counts = run_batch(campaign_id=campaign.pk, batch_id=str(uuid.uuid4()))

    # One message goes at once; the next is due in about a second, which the batch sleeps
    # through; it ends when the wait would be longer than it may hold a slot.
    assert 1 <= counts["sent"] <= 5
    assert counts["sent"] + counts["given_back"] == 5
