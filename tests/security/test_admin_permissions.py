"""A staff user can do in the admin only what their permissions say: a view permission shows,
it never acts, and never opens another model's data."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User

from campaigns.models import Campaign
from subscribers.models import Subscriber
from tests.factories import (
    CampaignFactory,
    MailingListFactory,
    SubscriberFactory,
    SubscriptionFactory,
)

pytestmark = pytest.mark.django_db


def staff_with(client, *codenames: str) -> User:
    user = User.objects.create_user("low", password="pw-low-privilege-1", is_staff=True)
    # Every list: these tests are about what each model permission allows (per-list access
    # has its own, tests/security/test_list_access.py).
    every = (*codenames, "access_all_lists")
    user.user_permissions.add(*Permission.objects.filter(codename__in=every))
    client.force_login(user)
    return user


def run_action(client, url: str, action: str, *ids: int):
    return client.post(url, {"action": action, "_selected_action": [str(i) for i in ids]})


@pytest.mark.parametrize("action", ["erase", "blocklist"])
def test_a_viewer_of_subscribers_cannot_erase_or_blocklist_them(client, action):
    staff_with(client, "view_subscriber")
    subscriber = SubscriberFactory()

    run_action(client, "/admin/subscribers/subscriber/", action, subscriber.pk)

    assert Subscriber.objects.filter(pk=subscriber.pk, status="enabled").exists()


def test_a_viewer_of_subscribers_is_not_shown_the_link_that_erases_them(client):
    staff_with(client, "view_subscriber")
    subscriber = SubscriberFactory()

    page = client.get(f"/admin/subscribers/subscriber/{subscriber.pk}/change/").content.decode()

    assert subscriber.email in page
    assert "/p/" not in page


@pytest.mark.parametrize("action", ["start", "cancel"])
def test_a_viewer_of_campaigns_cannot_start_or_cancel_them(client, action):
    staff_with(client, "view_campaign")
    campaign = CampaignFactory(lists=[MailingListFactory()])

    run_action(client, "/admin/campaigns/campaign/", action, campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_the_preview_shows_a_chosen_subscriber_only_to_those_who_may_view_subscribers(client):
    staff_with(client, "view_campaign")
    news = MailingListFactory()
    private = SubscriberFactory(name="Very Private", attributes={"city": "Secretville"})
    SubscriptionFactory(subscriber=private, mailing_list=news)
    campaign = CampaignFactory(
        lists=[news], body="Hello {{ subscriber.name }} of {{ subscriber.attributes.city }}"
    )

    typed = client.get(
        f"/admin/campaigns/campaign/{campaign.pk}/preview/?subscriber={private.email}"
    )
    default = client.get(f"/admin/campaigns/campaign/{campaign.pk}/preview/")

    for response in (typed, default):
        assert response.status_code == 200
        page = response.content.decode()
        assert "Very Private" not in page and "Secretville" not in page
        assert "Sample Subscriber" in page
