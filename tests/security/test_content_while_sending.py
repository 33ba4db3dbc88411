"""What a campaign says cannot change while it sends: its content, layout and lists are fixed
from the start until it is paused, and what changed while paused is checked again on resume."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign, Template
from campaigns.services import CampaignError, campaign_resume
from tests.factories import CampaignFactory, MailingListFactory, TemplateFactory

pytestmark = pytest.mark.django_db


def change_form(campaign: Campaign, **fields: object) -> dict:
    data = {
        "name": campaign.name,
        "subject": campaign.subject,
        "from_email": campaign.from_email,
        "lists": [m.pk for m in campaign.lists.all()],
        "template": campaign.template_id or "",
        "format": campaign.format,
        "body": campaign.body,
        "weight": campaign.weight,
        "track_opens": "on",
        "track_clicks": "on",
        "conditions-TOTAL_FORMS": "0",
        "conditions-INITIAL_FORMS": "0",
        "Media_campaigns-TOTAL_FORMS": "0",
        "Media_campaigns-INITIAL_FORMS": "0",
        **fields,
    }
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize("status", [Campaign.Status.RUNNING, Campaign.Status.SCHEDULED])
def test_a_sending_campaigns_subject_body_and_lists_cannot_be_changed(admin_client, status):
    campaign = CampaignFactory(status=status, lists=[MailingListFactory()])
    other = MailingListFactory()

    admin_client.post(
        f"/admin/campaigns/campaign/{campaign.pk}/change/",
        change_form(campaign, subject="Changed!", body="Changed body", lists=[other.pk]),
    )

    fresh = Campaign.objects.get(pk=campaign.pk)
    assert (fresh.subject, fresh.body) == (campaign.subject, campaign.body)
    assert list(fresh.lists.all()) != [other]


def test_a_paused_campaign_may_be_edited(admin_client):
    campaign = CampaignFactory(status=Campaign.Status.PAUSED, lists=[MailingListFactory()])

    admin_client.post(
        f"/admin/campaigns/campaign/{campaign.pk}/change/",
        change_form(campaign, subject="Corrected subject"),
    )

    assert Campaign.objects.get(pk=campaign.pk).subject == "Corrected subject"


def test_the_layout_of_a_sending_campaign_cannot_be_changed(admin_client):
    layout = TemplateFactory()
    CampaignFactory(status=Campaign.Status.RUNNING, template=layout)

    admin_client.post(
        f"/admin/campaigns/template/{layout.pk}/change/",
        {"name": layout.name, "html": "<html><body>{{ content }} changed</body></html>"},
    )

    assert Template.objects.get(pk=layout.pk).html == layout.html


def test_content_broken_while_paused_is_refused_on_resume():
    campaign = CampaignFactory(status=Campaign.Status.PAUSED, lists=[MailingListFactory()])
    Campaign.objects.filter(pk=campaign.pk).update(body="Hello {{ subscriber.name ")
    campaign.refresh_from_db()

    with pytest.raises(CampaignError, match="cannot start"):
        campaign_resume(campaign=campaign)

    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.PAUSED
