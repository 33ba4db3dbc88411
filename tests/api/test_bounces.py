"""/api/bounces with listmonk's shapes."""

from __future__ import annotations

import pytest
from django.utils import timezone

from mailer.models import Bounce
from tests.factories import CampaignFactory, MailingListFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def bounce(subscriber, campaign=None, kind="hard") -> Bounce:
    return Bounce.objects.create(
        email=subscriber.email,
        subscriber=subscriber,
        campaign=campaign,
        kind=kind,
        source="api",
        description="550 no such user",
        at=timezone.now(),
    )


def test_query_get_and_delete_bounces(api_client):
    subscriber = SubscriptionFactory().subscriber
    campaign = CampaignFactory(name="Spring")
    first = bounce(subscriber, campaign)
    second = bounce(subscriber, kind="complaint")
    page = api_client.get("/bounces", campaign_id=campaign.pk).json()["data"]
    assert page["total"] == 1
    row = page["results"][0]
    assert (row["id"], row["type"], row["email"], row["campaign"]) == (
        first.pk,
        "hard",
        subscriber.email,
        {"id": campaign.pk, "name": "Spring"},
    )
    assert row["subscriber_uuid"] == str(subscriber.uuid)
    assert api_client.get(f"/bounces/{second.pk}").json()["data"]["type"] == "complaint"
    mine = api_client.get(f"/subscribers/{subscriber.pk}/bounces").json()["data"]
    assert {b["id"] for b in mine} == {first.pk, second.pk}
    assert api_client.delete(f"/bounces/{first.pk}").json() == {"data": True}
    assert api_client.delete("/bounces").status_code == 400
    assert api_client.delete("/bounces", all="true").json() == {"data": True}
    assert not Bounce.objects.exists()


def test_a_list_scoped_user_sees_only_its_subscribers_bounces(make_api_client):
    mine, theirs = MailingListFactory(), MailingListFactory()
    kept = bounce(SubscriptionFactory(mailing_list=mine).subscriber)
    hidden = bounce(SubscriptionFactory(mailing_list=theirs).subscriber)
    analyst = make_api_client("reports", role="Analyst", lists=[mine])
    listed = analyst.get("/bounces").json()["data"]["results"]
    assert [b["id"] for b in listed] == [kept.pk]
    assert analyst.get(f"/bounces/{hidden.pk}").status_code == 404
