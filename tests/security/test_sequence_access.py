"""Sequences and least privilege: an Editor builds but cannot run them; a user limited to
some lists neither sees nor feeds a sequence mailing other lists, and cannot put a subscriber
of another list into one of theirs."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from guardian.shortcuts import assign_perm

from automations import services
from automations.models import Enrollment, Sequence
from tests.automations.helpers import sequence_with
from tests.factories import MailingListFactory, audience

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("roles")]


def member(client, role: str, lists=()):
    user = User.objects.create_user(role.lower().replace(" ", "-"), is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    for mailing_list in lists:
        assign_perm("subscribers.view_mailinglist", user, mailing_list)
        assign_perm("subscribers.send_to_mailinglist", user, mailing_list)
    client.force_login(user)
    return client


def active(mailing_list, name: str = "Welcome") -> Sequence:
    sequence = sequence_with(
        [{"kind": "send"}], lists=[mailing_list], trigger=Sequence.Trigger.MANUAL, name=name
    )
    return services.sequence_activate(sequence=sequence)


def test_an_editor_builds_but_cannot_activate_or_add_people(client, queued):
    news = MailingListFactory()
    (person,) = audience(news, 1)
    sequence = active(news)
    services.sequence_pause(sequence=sequence)
    editor = member(client, "Editor", [news])
    changelist = editor.get("/admin/automations/sequence/").content.decode()
    assert 'value="activate"' not in changelist
    editor.post(
        "/admin/automations/sequence/", {"action": "activate", "_selected_action": [sequence.pk]}
    )
    assert Sequence.objects.get().status == "paused"
    report = f"/admin/automations/sequence/{sequence.pk}/report/"
    assert "Add to the sequence" not in editor.get(report).content.decode()
    assert editor.post(report, {"addresses": person.email}).status_code == 403
    assert not Enrollment.objects.exists()


def test_a_user_of_some_lists_sees_and_feeds_only_sequences_of_their_lists(client, queued):
    ours, theirs = MailingListFactory(), MailingListFactory()
    (stranger,) = audience(theirs, 1)
    hidden = active(theirs, "Their welcome")
    mine = active(ours, "Our welcome")
    manager = member(client, "Campaign manager", [ours])
    assert manager.get(f"/admin/automations/sequence/{hidden.pk}/change/").status_code == 302
    report = f"/admin/automations/sequence/{hidden.pk}/report/"
    assert manager.get(report).status_code == 404
    assert manager.post(report, {"addresses": stranger.email}).status_code == 404
    # Their own sequence cannot take a subscriber they may not see.
    manager.post(f"/admin/automations/sequence/{mine.pk}/report/", {"addresses": stranger.email})
    assert not Enrollment.objects.exists()
    listing = manager.get("/admin/automations/sequence/").content.decode()
    assert mine.name in listing and hidden.name not in listing
