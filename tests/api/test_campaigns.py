"""/api/campaigns with listmonk's documented requests and responses."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from guardian.shortcuts import remove_perm

from campaigns.models import Campaign
from settings import queues
from subscribers.access import SEND
from tests.factories import CampaignFactory, MailingListFactory, TemplateFactory

pytestmark = pytest.mark.django_db


def test_create_a_campaign_as_listmonk_documents_it(api_client):
    news = MailingListFactory()
    layout = TemplateFactory()
    response = api_client.post(
        "/campaigns",
        {
            "name": "Test campaign",
            "subject": "Hello, {{ subscriber.name }}",
            "lists": [news.pk],
            "from_email": "Shop <news@shop.example>",
            "content_type": "richtext",
            "body": "<p>Hi {{ subscriber.name }}</p>",
            "template_id": layout.pk,
            "tags": ["spring"],
            "type": "regular",
            "messenger": "email",
        },
    )
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert (data["name"], data["status"], data["content_type"]) == (
        "Test campaign",
        "draft",
        "richtext",
    )
    assert data["lists"] == [{"id": news.pk, "name": news.name}]
    assert (data["template_id"], data["tags"], data["to_send"]) == (layout.pk, ["spring"], 0)
    campaign = Campaign.objects.get(pk=data["id"])
    assert (campaign.format, campaign.template_id) == ("html", layout.pk)


def test_a_body_that_does_not_compile_is_refused_with_the_line(api_client):
    news = MailingListFactory()
    response = api_client.post(
        "/campaigns",
        {"name": "Broken", "subject": "S", "lists": [news.pk], "body": "{{ subscribr.name }}"},
    )
    assert response.status_code == 400
    assert "subscribr" in response.json()["message"]
    assert not Campaign.objects.exists()


def test_query_get_update_and_delete(api_client):
    news = MailingListFactory()
    first = CampaignFactory(name="Spring sale", lists=[news])
    CampaignFactory(name="Summer", lists=[news], status=Campaign.Status.FINISHED)
    page = api_client.get("/campaigns", query="spring").json()["data"]
    assert [c["name"] for c in page["results"]] == ["Spring sale"] and page["total"] == 1
    finished = api_client.get("/campaigns", status="finished").json()["data"]["results"]
    assert [c["name"] for c in finished] == ["Summer"]
    assert api_client.get(f"/campaigns/{first.pk}").json()["data"]["name"] == "Spring sale"
    changed = api_client.put(f"/campaigns/{first.pk}", {"subject": "New subject"})
    assert changed.json()["data"]["subject"] == "New subject"
    assert api_client.delete(f"/campaigns/{first.pk}").json() == {"data": True}
    assert api_client.get(f"/campaigns/{first.pk}").status_code == 404


def test_a_sending_campaign_cannot_be_edited_or_deleted(api_client):
    running = CampaignFactory(lists=[MailingListFactory()], status=Campaign.Status.RUNNING)
    edit = api_client.put(f"/campaigns/{running.pk}", {"body": "changed"})
    assert edit.status_code == 400 and "Pause it to edit it" in edit.json()["message"]
    assert api_client.delete(f"/campaigns/{running.pk}").status_code == 400


def test_a_finished_campaign_is_put_in_the_archive_as_listmonk_does_it(api_client):
    finished = CampaignFactory(
        name="Spring news", lists=[MailingListFactory()], status=Campaign.Status.FINISHED
    )
    changed = api_client.put(
        f"/campaigns/{finished.pk}", {"archive": True, "archive_meta": {"name": "Reader"}}
    )
    assert changed.status_code == 200, changed.json()
    data = changed.json()["data"]
    assert (data["archive"], data["archive_slug"], data["archive_meta"]) == (
        True,
        "spring-news",
        {"name": "Reader"},
    )
    content = api_client.put(f"/campaigns/{finished.pk}", {"archive": False, "body": "new"})
    assert content.status_code == 400  # content still needs a draft or paused campaign
    bad = api_client.put(f"/campaigns/{finished.pk}", {"archive_meta": {"email": "x@y.z"}})
    assert bad.status_code == 400 and "archive_meta" in bad.json()["message"]


def test_start_pause_resume_and_cancel_through_status(api_client, queued):
    campaign = CampaignFactory(lists=[MailingListFactory()])
    started = api_client.put(f"/campaigns/{campaign.pk}/status", {"status": "running"})
    assert started.json()["data"]["status"] == "scheduled"  # the dispatcher starts it
    assert (queues.DISPATCH_TICK, {}) in queued.calls
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    paused = api_client.put(f"/campaigns/{campaign.pk}/status", {"status": "paused"})
    assert paused.json()["data"]["status"] == "paused"
    resumed = api_client.put(f"/campaigns/{campaign.pk}/status", {"status": "running"})
    assert resumed.json()["data"]["status"] == "scheduled"
    cancelled = api_client.put(f"/campaigns/{campaign.pk}/status", {"status": "cancelled"})
    assert cancelled.json()["data"]["status"] == "cancelled"
    again = api_client.put(f"/campaigns/{campaign.pk}/status", {"status": "running"})
    assert again.status_code == 400 and "cancelled" in again.json()["message"]


def test_an_editor_may_test_but_not_start(make_api_client, queued):
    news = MailingListFactory()
    campaign = CampaignFactory(lists=[news])
    editor = make_api_client("writer", role="Editor", lists=[news])
    refused = editor.put(f"/campaigns/{campaign.pk}/status", {"status": "running"})
    assert refused.status_code == 403 and "campaigns.send_campaign" in refused.json()["message"]
    tested = editor.post(f"/campaigns/{campaign.pk}/test", {"subscribers": ["me@example.com"]})
    assert tested.json() == {"data": True}
    assert queued.calls[0][0] == queues.SEND_TRANSACTIONAL
    assert queued.calls[0][1]["to"] == ["me@example.com"]


def test_a_list_scoped_user_starts_only_campaigns_to_its_lists(make_api_client):
    mine, theirs = MailingListFactory(), MailingListFactory()
    CampaignFactory(name="Theirs", lists=[theirs])
    ours = CampaignFactory(name="Ours", lists=[mine])
    manager = make_api_client("mgr", role="Campaign manager", lists=[mine])
    assert [c["name"] for c in manager.get("/campaigns").json()["data"]["results"]] == ["Ours"]
    # It may see the list, no longer send to it.
    remove_perm(SEND, get_user_model().objects.get(username="mgr"), mine)
    refused = manager.put(f"/campaigns/{ours.pk}/status", {"status": "running"})
    assert refused.status_code == 403 and mine.name in refused.json()["message"]


def test_preview_is_sanitised_and_runs_nothing(api_client):
    campaign = CampaignFactory(
        lists=[MailingListFactory()],
        body="<p>Hi {{ subscriber.name }}</p><script>alert(1)</script>",
    )
    response = api_client.get(f"/campaigns/{campaign.pk}/preview")
    page = response.content.decode()
    assert "Hi Sample Subscriber" in page and "<script>" not in page
    assert "script-src 'none'" in response["Content-Security-Policy"]


def test_running_stats(api_client):
    campaign = CampaignFactory(lists=[MailingListFactory()], status=Campaign.Status.RUNNING)
    stats = api_client.get("/campaigns/running/stats", campaign_id=campaign.pk).json()["data"]
    assert stats[0]["id"] == campaign.pk and stats[0]["status"] == "running"
    assert set(stats[0]) >= {"to_send", "sent", "rate", "net_rate", "started_at"}
