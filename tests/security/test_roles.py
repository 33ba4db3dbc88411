"""The roles of docs/roles.md, as the migration creates them: each may do what the page says
and nothing more. An Editor writes and tests campaigns but cannot send one."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from guardian.shortcuts import assign_perm

from campaigns.models import Campaign
from subscribers.models import Subscriber
from tests.factories import (
    CampaignFactory,
    MailingListFactory,
    SubscriberFactory,
    SubscriptionFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("roles")]

ROLES = ["Admin", "Campaign manager", "Editor", "Analyst", "Subscriber manager"]


def member(client, role: str):
    user = User.objects.create_user(
        role.lower().replace(" ", "-"), f"{role.split()[0].lower()}@shop.example", is_staff=True
    )
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return client


def given(mailing_list, *permissions: str):
    """The list, given to every role's group (on its Object permissions page)."""
    for role in ROLES:
        for permission in permissions or ("view_mailinglist", "send_to_mailinglist"):
            assign_perm(f"subscribers.{permission}", Group.objects.get(name=role), mailing_list)
    return mailing_list


def draft() -> Campaign:
    return CampaignFactory(lists=[given(MailingListFactory())])


def test_the_migration_creates_every_role():
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLES)
    assert Group.objects.get(name="Admin").permissions.filter(codename="send_campaign").exists()


def test_an_editor_edits_and_tests_but_cannot_start(client):
    editor = member(client, "Editor")
    campaign = draft()

    report = editor.get(f"/admin/campaigns/campaign/{campaign.pk}/report/").content.decode()
    assert 'value="Start"' not in report and 'value="Send a test to me"' in report
    assert editor.post(f"/admin/campaigns/campaign/{campaign.pk}/act/start/").status_code == 403
    changelist = editor.get("/admin/campaigns/campaign/").content.decode()
    assert 'value="start"' not in changelist
    editor.post(
        "/admin/campaigns/campaign/", {"action": "start", "_selected_action": [campaign.pk]}
    )
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    assert editor.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").status_code == 200


def test_a_campaign_manager_starts_campaigns(client):
    manager = member(client, "Campaign manager")
    campaign = draft()
    report = manager.get(f"/admin/campaigns/campaign/{campaign.pk}/report/").content.decode()
    assert 'value="Start"' in report
    manager.post(f"/admin/campaigns/campaign/{campaign.pk}/act/start/")
    campaign.refresh_from_db()
    assert campaign.status != Campaign.Status.DRAFT


def test_an_analyst_reads_reports_and_changes_nothing(client):
    analyst = member(client, "Analyst")
    campaign = draft()
    report = analyst.get(f"/admin/campaigns/campaign/{campaign.pk}/report/")
    assert report.status_code == 200 and b'value="Send a test to me"' not in report.content
    assert analyst.post(f"/admin/campaigns/campaign/{campaign.pk}/act/test/").status_code == 403
    assert analyst.get("/admin/campaigns/campaign/add/").status_code == 403
    assert analyst.get("/admin/subscribers/subscriber/").status_code == 403


def test_a_subscriber_manager_blocklists_and_erases_but_has_no_campaigns(client):
    manager = member(client, "Subscriber manager")
    customers = given(MailingListFactory())
    first, second = SubscriberFactory(), SubscriberFactory()
    for subscriber in (first, second):
        SubscriptionFactory(subscriber=subscriber, mailing_list=customers)
    changelist = "/admin/subscribers/subscriber/"
    manager.post(changelist, {"action": "blocklist", "_selected_action": [first.pk]})
    manager.post(changelist, {"action": "erase", "_selected_action": [second.pk]})
    first.refresh_from_db()
    assert first.status == Subscriber.Status.BLOCKLISTED
    assert not Subscriber.objects.filter(pk=second.pk).exists()
    assert manager.get("/admin/subscribers/subscriberimport/add/").status_code == 200
    assert manager.get("/admin/campaigns/campaign/").status_code == 403
