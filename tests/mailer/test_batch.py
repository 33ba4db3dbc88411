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
