from __future__ import annotations

import pytest
from django.urls import reverse

from campaigns.models import Campaign
from tests.factories import CampaignFactory, MailingListFactory, SubscriberFactory, audience

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "subscribers_subscriber",
    "subscribers_mailinglist",
    "subscribers_subscription",
    "campaigns_campaign",
    "campaigns_template",
    "mailer_delivery",
    "mailer_smtpserver",
    "mailer_domainthrottle",
]


@pytest.mark.parametrize("name", CHANGELISTS)
def test_every_changelist_and_add_page_opens_for_staff(admin_client, name):
    SubscriberFactory()
    assert admin_client.get(reverse(f"admin:{name}_changelist")).status_code == 200
    if name != "mailer_delivery":
        assert admin_client.get(reverse(f"admin:{name}_add")).status_code == 200


def test_the_admin_requires_login(client):
    response = client.get(reverse("admin:campaigns_campaign_changelist"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_performance_settings_open_on_their_single_row(admin_client):
    response = admin_client.get(reverse("admin:mailer_performancesettings_changelist"))
    assert response.status_code == 302
    assert admin_client.get(response["Location"]).status_code == 200


def test_campaign_list_shows_progress(admin_client):
    CampaignFactory(name="Spring sale", status=Campaign.Status.RUNNING, total=200, sent=50)

    page = admin_client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()

    assert "Spring sale" in page and '<progress value="25"' in page and "50 / 200" in page


def test_start_and_pause_actions_go_through_the_services(admin_client):
    mailing_list = MailingListFactory()
    audience(mailing_list, 1)
    good = CampaignFactory(lists=[mailing_list])
    broken = CampaignFactory(lists=[mailing_list], body="{% if %}")
    url = reverse("admin:campaigns_campaign_changelist")

    response = admin_client.post(
        url, {"action": "start", "_selected_action": [good.pk, broken.pk]}, follow=True
    )

    page = response.content.decode()
    assert "Started 1 campaign(s)." in page
    assert f"Campaign {broken.pk} cannot start" in page
    good.refresh_from_db()
    broken.refresh_from_db()
    assert good.status == Campaign.Status.SCHEDULED
    assert broken.status == Campaign.Status.DRAFT

    admin_client.post(url, {"action": "pause", "_selected_action": [good.pk]})
    good.refresh_from_db()
    assert good.status == Campaign.Status.PAUSED


def test_a_domain_throttle_is_added_in_the_admin_and_stored_lower_case(admin_client):
    from mailer.models import DomainThrottle

    response = admin_client.post(
        reverse("admin:mailer_domainthrottle_add"), {"domain": "GMail.com ", "rate_limit": "50"}
    )

    assert response.status_code == 302
    assert DomainThrottle.objects.get().domain == "gmail.com"
    refused = admin_client.post(
        reverse("admin:mailer_domainthrottle_add"), {"domain": "x.example", "rate_limit": "0"}
    )
    assert refused.status_code == 200
    assert "at least 1 message per second" in refused.content.decode()
