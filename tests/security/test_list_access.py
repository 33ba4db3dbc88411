"""Per-list access: a user given some lists sees only their subscribers, imports and
campaigns, no other list's name, and starts a campaign only to lists they may send to. The
status page and its JSON show only their campaigns."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from guardian.shortcuts import assign_perm

from campaigns.models import Campaign
from subscribers.models import SubscriberImport
from tests.factories import (
    CampaignFactory,
    MailingListFactory,
    SubscriberFactory,
    SubscriptionFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("roles")]


@pytest.fixture
def lists():
    ours, theirs = MailingListFactory(name="Our customers"), MailingListFactory(name="Secret VIPs")
    SubscriptionFactory(mailing_list=ours, subscriber=SubscriberFactory(email="ann@ours.example"))
    SubscriptionFactory(
        mailing_list=theirs, subscriber=SubscriberFactory(email="bob@theirs.example")
    )
    return ours, theirs


def manager(client, *given, send: bool = False):
    user = User.objects.create_user("manager", "m@shop.example", is_staff=True)
    user.groups.add(Group.objects.get(name="Campaign manager"))
    user.groups.add(Group.objects.get(name="Subscriber manager"))
    for mailing_list in given:
        assign_perm("subscribers.view_mailinglist", user, mailing_list)
        if send:
            assign_perm("subscribers.send_to_mailinglist", user, mailing_list)
    client.force_login(user)
    return client


def test_a_user_sees_only_the_subscribers_lists_and_campaigns_of_their_lists(client, lists):
    ours, theirs = lists
    mine = CampaignFactory(name="Our news", lists=[ours])
    hidden = CampaignFactory(name="VIP preview", lists=[ours, theirs])
    SubscriberImport.objects.create(file="x.csv", mailing_list=theirs)
    manager(client, ours)

    subscribers = client.get("/admin/subscribers/subscriber/").content.decode()
    assert "ann@ours.example" in subscribers and "bob@theirs.example" not in subscribers
    assert "Secret VIPs" not in subscribers  # not even in the filter
    lists_page = client.get("/admin/subscribers/mailinglist/").content.decode()
    assert "Our customers" in lists_page and "Secret VIPs" not in lists_page
    campaigns = client.get("/admin/campaigns/campaign/").content.decode()
    assert "Our news" in campaigns and "VIP preview" not in campaigns
    assert "Secret VIPs" not in campaigns
    assert "x.csv" not in client.get("/admin/subscribers/subscriberimport/").content.decode()
    assert client.get(f"/admin/campaigns/campaign/{hidden.pk}/report/").status_code == 404
    bob = theirs.subscriptions.get().subscriber
    assert client.get(f"/admin/subscribers/subscriber/{bob.pk}/change/").status_code == 302
    form = client.get(f"/admin/campaigns/campaign/{mine.pk}/change/").content.decode()
    assert "Our customers" in form and "Secret VIPs" not in form


def test_starting_needs_the_right_to_send_to_every_list(client, lists):
    ours, _ = lists
    campaign = CampaignFactory(lists=[ours])
    manager(client, ours)
    answer = client.post(f"/admin/campaigns/campaign/{campaign.pk}/act/start/", follow=True)
    assert "which you may not send to" in answer.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    client.post(
        "/admin/campaigns/campaign/", {"action": "start", "_selected_action": [campaign.pk]}
    )
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_with_the_right_to_send_the_campaign_starts(client, lists):
    ours, _ = lists
    campaign = CampaignFactory(lists=[ours])
    manager(client, ours, send=True)
    client.post(f"/admin/campaigns/campaign/{campaign.pk}/act/start/")
    campaign.refresh_from_db()
    assert campaign.status != Campaign.Status.DRAFT


def test_the_status_page_and_its_json_show_only_their_campaigns(client, lists):
    ours, theirs = lists
    CampaignFactory(name="Our news", lists=[ours], status=Campaign.Status.PAUSED)
    CampaignFactory(name="VIP preview", lists=[theirs], status=Campaign.Status.PAUSED)
    manager(client, ours)
    shown = client.get("/admin/status.json").json()
    names = [c["name"] for c in shown["running"] + shown["waiting"]]
    assert names == ["Our news"]
    page = client.get("/admin/status/").content.decode()
    assert "Our news" in page and "VIP preview" not in page


def test_the_preview_shows_only_subscribers_of_their_lists(client, lists):
    ours, _ = lists
    campaign = CampaignFactory(lists=[ours], body="Hi {{ subscriber.email }}")
    manager(client, ours)
    url = f"/admin/campaigns/campaign/{campaign.pk}/preview/"
    assert (
        "ann@ours.example" in client.get(url, {"subscriber": "ann@ours.example"}).content.decode()
    )
    assert "bob@theirs.example" not in client.get(
        url, {"subscriber": "bob@theirs.example"}
    ).content.decode().replace('value="bob@theirs.example"', "")


def test_imports_by_users_with_some_lists_only_subscribe(client, lists):
    ours, _ = lists
    manager(client, ours)
    page = client.get("/admin/subscribers/subscriberimport/add/").content.decode()
    assert 'value="subscribe"' in page
    assert 'value="blocklist"' not in page and 'value="update"' not in page
    assert "Secret VIPs" not in page


def test_an_admin_gives_a_list_to_a_group_on_its_object_permissions_page(admin_client, lists):
    ours, _ = lists
    page = admin_client.get(f"/admin/subscribers/mailinglist/{ours.pk}/permissions/")
    assert page.status_code == 200
    admin_client.post(
        f"/admin/subscribers/mailinglist/{ours.pk}/permissions/",
        {"group": "Editor", "submit_manage_group": "submit"},
    )
    answer = admin_client.post(
        f"/admin/subscribers/mailinglist/{ours.pk}/permissions/group-manage/"
        f"{Group.objects.get(name='Editor').pk}/",
        {"permissions": ["view_mailinglist"]},
    )
    assert answer.status_code == 302
    editor = User.objects.create_user("ed", "ed@shop.example", is_staff=True)
    editor.groups.add(Group.objects.get(name="Editor"))
    assert editor.has_perm("subscribers.view_mailinglist", ours)
