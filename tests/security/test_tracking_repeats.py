"""One message's tracking token cannot inflate a campaign's report: loading its pixel or a
link again and again counts that subscriber once per campaign and once per link."""

from __future__ import annotations

import pytest

from campaigns import tracking
from subscribers import links
from tests.factories import CampaignFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


def test_a_token_replayed_many_times_counts_once(client):
    campaign = CampaignFactory()
    link = campaign.tracked_link_id("https://shop.example/")
    other = campaign.tracked_link_id("https://shop.example/other")
    token = links.token(links.Purpose.TRACK, SubscriberFactory().pk, campaign.pk)
    for _ in range(30):
        client.get(f"/o/{token}/")
        client.get(f"/c/{token}/{link}/")
    client.get(f"/c/{token}/{other}/")
    tracking.flush()
    for _ in range(5):  # and again after the first ones were written
        client.get(f"/o/{token}/")
        client.get(f"/c/{token}/{link}/")
    tracking.flush()

    stats = tracking.campaign_stats(campaign.pk)
    assert (stats["opens"], stats["unique_opens"]) == (1, 1)
    assert (stats["clicks"], stats["unique_clicks"]) == (2, 1)


def test_a_test_messages_links_count_nothing(client):
    campaign = CampaignFactory()
    link = campaign.tracked_link_id("https://shop.example/")
    token = links.token(links.Purpose.TRACK, None, campaign.pk)
    client.get(f"/o/{token}/")
    assert client.get(f"/c/{token}/{link}/").status_code == 302
    assert tracking.flush() == 0
