"""The audit trail: every campaign state change, settings change, import, export, blocklist
and erase, with who and when; readable in the admin, never editable there; and an erased
subscriber's entry keeps no personal data."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns.services import campaign_start
from mailer.models import PerformanceSettings
from subscribers.imports import subscriber_import_run
from subscribers.models import SubscriberImport
from tests.factories import (
    CampaignFactory,
    MailingListFactory,
    SubscriberFactory,
    performance_form,
)

pytestmark = pytest.mark.django_db


def entries(event: str | None = None):
    found = LogEntry.objects.order_by("pk")
    return [e for e in found if event is None or (e.additional_data or {}).get("event") == event]


def test_campaign_state_changes_name_who_made_them(admin_client, admin_user):
    campaign = CampaignFactory(lists=[MailingListFactory()])
    admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/act/start/")
    admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/act/cancel/")
    changes = [(e.changes_dict["status"], e.actor) for e in entries("status")]
    assert [c for c, _ in changes][-1][1] == "cancelled"
    assert all(actor == admin_user for _, actor in changes)
    assert len(changes) >= 2


def test_a_change_by_the_engine_has_no_actor():
    campaign = CampaignFactory(lists=[MailingListFactory()])
    campaign_start(campaign=campaign)
    [entry] = entries("status")
    assert entry.actor is None and entry.changes_dict["status"][0] == "draft"


def test_settings_changes_are_recorded_with_old_and_new_values(admin_client, admin_user):
    PerformanceSettings.load()
    admin_client.post(
        "/admin/mailer/performancesettings/1/change/",
        performance_form(max_running_campaigns="7"),
    )
    [entry] = [
        e
        for e in entries()
        if e.content_type.model == "performancesettings" and e.action == LogEntry.Action.UPDATE
    ]
    assert entry.actor == admin_user
    assert entry.changes_dict["max_running_campaigns"][1] == "7"


def test_imports_blocklists_exports_and_erasures_are_recorded(
    admin_client, admin_user, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    news = MailingListFactory()
    upload = SimpleUploadedFile("people.csv", b"email\na@example.com\n")
    admin_client.post(
        "/admin/subscribers/subscriberimport/add/",
        {"file": upload, "mode": "subscribe", "mailing_list": news.pk},
    )
    subscriber_import_run(import_id=SubscriberImport.objects.get().pk)  # as the worker does
    imports = [e for e in entries() if e.content_type.model == "subscriberimport"]
    assert imports and all(e.actor == admin_user for e in imports)
    assert imports[-1].changes_dict["status"][1] == "done"

    target, gone = SubscriberFactory(), SubscriberFactory(email="private.person@example.com")
    changelist = "/admin/subscribers/subscriber/"
    admin_client.post(changelist, {"action": "blocklist", "_selected_action": [target.pk]})
    admin_client.post(changelist, {"action": "export_csv", "_selected_action": [target.pk]})
    admin_client.post(changelist, {"action": "erase", "_selected_action": [gone.pk]})

    assert [e.object_pk for e in entries("blocklisted")] == [str(target.pk)]
    assert entries("exported subscribers as CSV")[0].additional_data["subscribers"] == 1
    [erased] = entries("erased")
    assert erased.actor == admin_user and erased.action == LogEntry.Action.DELETE
    assert "private.person" not in repr(
        (erased.object_repr, erased.changes, erased.serialized_data, erased.additional_data)
    )


def test_the_trail_is_readable_in_the_admin_and_not_editable(admin_client):
    campaign_start(campaign=CampaignFactory(lists=[MailingListFactory()]))
    [entry] = entries("status")
    assert admin_client.get("/admin/auditlog/logentry/").status_code == 200
    page = admin_client.get(f"/admin/auditlog/logentry/{entry.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    admin_client.post(f"/admin/auditlog/logentry/{entry.pk}/delete/", {"post": "yes"})
    admin_client.post(
        "/admin/auditlog/logentry/", {"action": "delete_selected", "_selected_action": [entry.pk]}
    )
    assert LogEntry.objects.filter(pk=entry.pk).exists()
