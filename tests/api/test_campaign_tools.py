"""The API beyond listmonk's campaign endpoints: conditions (attributes and behaviour),
clone, resend to non-openers and A/B tests, with what each role and list access allows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Open
from mailer.models import Delivery
from tests.factories import CampaignFactory, MailingListFactory, audience

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent():
    """A finished campaign X to three subscribers; the first opened it."""
    news = MailingListFactory()
    people = audience(news, 3)
    x = CampaignFactory(lists=[news], name="X")
    Campaign.objects.filter(pk=x.pk).update(
        status="finished", started_at=timezone.now() - timedelta(days=1)
    )
    x.refresh_from_db()
    for person in people:
        Delivery.objects.create(
            campaign=x, subscriber=person, email=person.email, status="sent", sent_at=timezone.now()
        )
    Open.objects.create(campaign=x, subscriber_id=people[0].pk, at=timezone.now())
    return {"x": x, "news": news, "people": people}


def test_conditions_on_behaviour_narrow_the_audience(api_client, sent):
    draft = CampaignFactory(lists=[sent["news"]])
    path = f"/campaigns/{draft.pk}/conditions"
    assert api_client.get(path).json()["data"]["audience"] == 3
    body = [
        {"kind": "received", "campaign_id": sent["x"].pk},
        {"kind": "opened", "campaign_id": sent["x"].pk, "negate": True},
    ]
    data = api_client.put(path, body).json()["data"]
    assert data["audience"] == 2
    assert [c["description"] for c in data["conditions"]][1].startswith("did not: opened")
    bad = api_client.put(path, [{"kind": "received"}])
    assert bad.status_code == 400 and "Choose the campaign" in bad.json()["message"]
    assert api_client.put(path, [{"kind": "teleported"}]).status_code == 400
    assert api_client.get(path).json()["data"]["audience"] == 2  # the refused change kept none


def test_clone_and_resend_to_non_openers(api_client, sent):
    copy = api_client.post(f"/campaigns/{sent['x'].pk}/clone", {}).json()["data"]
    assert (copy["name"], copy["status"]) == ("Copy of X", "draft")
    follow_up = api_client.post(f"/campaigns/{sent['x'].pk}/resend", {"subject": "Again"})
    data = follow_up.json()["data"]
    assert (data["subject"], data["status"], data["audience"]) == ("Again", "draft", 2)
    never_sent = api_client.post(f"/campaigns/{copy['id']}/resend", {"subject": "Again"})
    assert never_sent.status_code == 400 and "has not sent" in never_sent.json()["message"]


def test_an_ab_test_through_the_api(api_client, queued):
    news = MailingListFactory()
    audience(news, 40)
    draft = CampaignFactory(lists=[news])
    body = {"test_percent": 50, "variants": [{"subject": "One"}, {"subject": "Two"}]}
    created = api_client.post(f"/campaigns/{draft.pk}/ab", body).json()["data"]
    assert [v["label"] for v in created["variants"]] == ["A", "B"]
    assert api_client.post(f"/campaigns/{draft.pk}/ab", body).status_code == 409
    started = api_client.put(f"/campaigns/{draft.pk}/ab/status", {"status": "testing"})
    assert started.json()["data"]["status"] == "testing"
    assert api_client.get(f"/campaigns/{draft.pk}/ab").json()["data"]["verdict"] == (
        "Nothing sent yet."
    )
    # Starting the tested campaign by hand is refused while its test runs.
    refused = api_client.put(f"/campaigns/{draft.pk}/status", {"status": "running"})
    assert refused.status_code == 400 and "start its test" in refused.json()["message"]
    chosen = api_client.post(f"/campaigns/{draft.pk}/ab/winner", {"label": "B"}).json()["data"]
    assert chosen["status"] == "decided"
    assert Campaign.objects.get(pk=draft.pk).subject == "Two"


def test_an_editor_builds_a_test_but_cannot_start_it(make_api_client, queued):
    news = MailingListFactory()
    audience(news, 4)
    draft = CampaignFactory(lists=[news])
    editor = make_api_client("writer", role="Editor", lists=[news])
    body = {"variants": [{"subject": "One"}, {"subject": "Two"}]}
    assert editor.post(f"/campaigns/{draft.pk}/ab", body).status_code == 200
    assert editor.put(f"/campaigns/{draft.pk}/ab/status", {"status": "testing"}).status_code == 403
    analyst = make_api_client("reader", role="Analyst", lists=[news])
    assert analyst.post(f"/campaigns/{draft.pk}/clone", {}).status_code == 403
    assert analyst.put(f"/campaigns/{draft.pk}/conditions", []).status_code == 403
    stranger = make_api_client("other", role="Campaign manager", lists=[MailingListFactory()])
    assert stranger.get(f"/campaigns/{draft.pk}/ab").status_code == 404
