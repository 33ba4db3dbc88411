"""What the bounce mailbox kept names anyone's address: a user limited to some lists does not
see it, and only a role that may record bounces applies a report by hand."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from guardian.shortcuts import assign_perm

from mailer.models import Bounce, MailboxReport
from tests.factories import MailingListFactory, SubscriberFactory
from tests.mailer.test_bounce_mailbox import sample

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("roles")]

CHANGELIST = "/admin/mailer/mailboxreport/"


def kept_report(address: str) -> MailboxReport:
    return MailboxReport.objects.create(
        digest="d" * 64,
        format="other",
        outcome=MailboxReport.Outcome.UNMATCHED,
        reason="no Message-ID of ours",
        raw=sample("qmail_01.txt", address),
    )


def member(client, role: str, lists=()):
    user = User.objects.create_user(role.lower().replace(" ", "-"), is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    if not lists:  # every list
        assign_perm("subscribers.access_all_lists", user)
    for mailing_list in lists:
        assign_perm("subscribers.view_mailinglist", user, mailing_list)
    client.force_login(user)
    return client


def test_a_user_limited_to_some_lists_cannot_read_the_mailbox(client):
    row = kept_report("someone@elsewhere.example")
    manager = member(client, "Campaign manager", [MailingListFactory()])
    assert manager.get(CHANGELIST).status_code == 403
    assert manager.get(f"{CHANGELIST}{row.pk}/change/").status_code in (302, 403)
    assert b"someone@elsewhere.example" not in manager.get(f"{CHANGELIST}{row.pk}/change/").content


def test_a_campaign_manager_reads_it_but_cannot_apply_reports_by_hand(client):
    person = SubscriberFactory(email="person@readers.example")
    row = kept_report(person.email)
    manager = member(client, "Campaign manager")
    page = manager.get(f"{CHANGELIST}{row.pk}/change/").content.decode()
    assert "person@readers.example" in page
    assert 'value="apply_by_hand"' not in manager.get(CHANGELIST).content.decode()
    manager.post(CHANGELIST, {"action": "apply_by_hand", "_selected_action": [row.pk]})
    assert not Bounce.objects.exists()


def test_an_admin_applies_a_report_by_hand(client):
    person = SubscriberFactory(email="person@readers.example")
    row = kept_report(person.email)
    admin = member(client, "Admin")
    admin.post(CHANGELIST, {"action": "apply_by_hand", "_selected_action": [row.pk]})
    assert Bounce.objects.get().email == person.email
    assert MailboxReport.objects.get().outcome == "applied"
