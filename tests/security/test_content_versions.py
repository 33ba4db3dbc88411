"""A paused campaign may be edited; what it sends from then on is a new version, and the
report says how many recipients got which (every sent message records its version)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignVersion
from campaigns.services import campaign_start
from mailer import dispatcher
from mailer.batch import run_batch
from mailer.models import Delivery, PerformanceSettings
from tests.factories import CampaignFactory, MailingListFactory, audience
from tests.security.test_content_while_sending import change_form

pytestmark = pytest.mark.django_db


def send_due() -> None:
    dispatcher.admit_due_campaigns(PerformanceSettings.load())
    dispatcher.share_limits(PerformanceSettings.load())
    run_batch(batch_id=str(uuid.uuid4()))


def test_the_report_says_which_recipients_got_which_version(admin_client, sink_server, smtp_sink):
    mailing_list = MailingListFactory()
    audience(mailing_list, 4)
    campaign = CampaignFactory(lists=[mailing_list], subject="Spring sale")
    campaign_start(campaign=campaign)
    dispatcher.campaign_begin(campaign.pk)
    later = Delivery.objects.filter(campaign=campaign).order_by("pk")[2:]
    Delivery.objects.filter(pk__in=[d.pk for d in later]).update(
        next_attempt_at=timezone.now() + timedelta(hours=1)
    )
    send_due()  # the first two go out as version 1

    admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/act/pause/")
    campaign.refresh_from_db()
    url = f"/admin/campaigns/campaign/{campaign.pk}/change/"
    admin_client.post(url, change_form(campaign, subject="Spring sale: now 30% off"))
    admin_client.post(url, change_form(campaign, subject="Spring sale: now 40% off"))
    campaign.refresh_from_db()
    assert campaign.content_version == 2  # two edits before resuming make one version
    admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/act/resume/")
    Delivery.objects.filter(campaign=campaign).update(next_attempt_at=None)
    send_due()

    sent = dict(
        Delivery.objects.filter(campaign=campaign, status="sent").values_list(
            "email", "content_version"
        )
    )
    subjects = {m.rcpt_to: m.message()["Subject"] for m in smtp_sink.messages()}
    assert sorted(sent.values()) == [1, 1, 2, 2]
    for email, version in sent.items():
        expected = "Spring sale" if version == 1 else "Spring sale: now 40% off"
        assert subjects[email] == expected
    assert list(
        CampaignVersion.objects.filter(campaign=campaign).values_list("number", "subject")
    ) == [(1, "Spring sale"), (2, "Spring sale: now 40% off")]

    report = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/report/").content.decode()
    assert 'id="content-versions"' in report
    assert "Spring sale: now 40% off</td><td><a" in report


def test_a_campaign_sent_as_it_started_shows_no_versions(admin_client):
    campaign = CampaignFactory(lists=[MailingListFactory()])
    campaign_start(campaign=campaign)
    report = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/report/").content.decode()
    assert 'id="content-versions"' not in report
    assert Campaign.objects.get(pk=campaign.pk).content_version == 1
