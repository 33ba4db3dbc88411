"""Open and click tracking: signed tokens, redirects only to the campaign's own links,
batched writes, and the per-campaign figures."""

from __future__ import annotations

import re

import pytest

from campaigns import tracking
from campaigns.content import prepared_content
from campaigns.models import TrackedLink
from campaigns.views import PIXEL
from mailer.compose import CampaignComposer
from subscribers import links
from tests.factories import CampaignFactory, SubscriberFactory

pytestmark = pytest.mark.django_db

BODY = (
    '<p><a href="https://shop.example/spring?x=1&amp;y=2">Spring</a> '
    '<a href="https://shop.example/about">About</a> '
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a> '
    '<a href="https://shop.example/u/{{ subscriber.email }}">Mine</a></p>'
)


def html_for(campaign, subscriber) -> str:
    composer = CampaignComposer(campaign, prepared_content(campaign))
    context = composer.context(
        subscriber_id=subscriber.pk,
        email=subscriber.email,
        name=subscriber.name,
        attributes=subscriber.attributes,
    )
    return composer.content.render(context).html or ""


def test_links_go_through_the_redirect_and_the_pixel_is_added(settings):
    settings.SITE_URL = "https://news.example"
    campaign = CampaignFactory(body=BODY)
    subscriber = SubscriberFactory()

    html = html_for(campaign, subscriber)

    token = links.token(links.Purpose.TRACK, subscriber.pk, campaign.pk)
    spring = TrackedLink.objects.get(url="https://shop.example/spring?x=1&y=2")
    assert f'href="https://news.example/c/{token}/{spring.pk}/"' in html
    # Its own links and links that differ per subscriber are left as they are.
    unsubscribe = links.token(links.Purpose.UNSUBSCRIBE, subscriber.pk, campaign.pk)
    assert f'href="https://news.example/u/{unsubscribe}/"' in html
    assert f'href="https://shop.example/u/{subscriber.email}"' in html
    assert TrackedLink.objects.filter(campaign=campaign).count() == 2
    assert f'<img src="https://news.example/o/{token}/"' in html


def test_tracking_can_be_turned_off(settings):
    campaign = CampaignFactory(body=BODY, track_opens=False, track_clicks=False)
    html = html_for(campaign, SubscriberFactory())
    assert 'href="https://shop.example/spring?x=1&amp;y=2"' in html
    assert "/o/" not in html and not TrackedLink.objects.exists()


def test_a_click_redirects_to_the_link_and_is_recorded_in_a_batch(client):
    campaign = CampaignFactory(body=BODY)
    subscriber = SubscriberFactory()
    html = html_for(campaign, subscriber)
    path = re.search(r'href="http://[^/]+(/c/[^"]+)"', html).group(1)

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == "https://shop.example/spring?x=1&y=2"
    assert tracking.campaign_stats(campaign.pk)["clicks"] == 0  # not written yet
    assert tracking.flush() == 1
    stats = tracking.campaign_stats(campaign.pk)
    assert (stats["clicks"], stats["unique_clicks"]) == (1, 1)
    assert stats["top_links"][0]["url"] == "https://shop.example/spring?x=1&y=2"


def test_a_click_never_redirects_outside_the_campaigns_links(client):
    campaign = CampaignFactory(body=BODY)
    other = CampaignFactory(body='<a href="https://evil.example/">x</a>')
    subscriber = SubscriberFactory()
    html_for(campaign, subscriber)
    html_for(other, subscriber)
    foreign = TrackedLink.objects.get(campaign=other)
    token = links.token(links.Purpose.TRACK, subscriber.pk, campaign.pk)

    assert client.get(f"/c/{token}/{foreign.pk}/").status_code == 404
    tampered = (
        links.token(links.Purpose.TRACK, subscriber.pk, other.pk).split(":")[0]
        + ":"
        + token.split(":")[1]
    )
    assert client.get(f"/c/{tampered}/{foreign.pk}/").status_code == 404
    assert tracking.flush() == 0


def test_opens_count_each_subscriber_once(client):
    campaign = CampaignFactory()
    ann, bob = SubscriberFactory(), SubscriberFactory()
    for subscriber in (ann, ann, bob):
        response = client.get(f"/o/{links.token(links.Purpose.TRACK, subscriber.pk, campaign.pk)}/")
        assert response.content == PIXEL and response["Content-Type"] == "image/gif"
    assert client.get("/o/forged:token/").status_code == 200  # an image, recorded nowhere

    tracking.flush()

    stats = tracking.campaign_stats(campaign.pk)
    assert (stats["opens"], stats["unique_opens"]) == (2, 2)


def test_the_report_shows_opens_clicks_and_top_links(admin_client, client):
    campaign = CampaignFactory(body=BODY)
    subscriber = SubscriberFactory()
    html = html_for(campaign, subscriber)
    client.get(re.search(r'href="http://[^/]+(/c/[^"]+)"', html).group(1))
    client.get(f"/o/{links.token(links.Purpose.TRACK, subscriber.pk, campaign.pk)}/")
    tracking.flush()

    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/report/").content.decode()

    counts = re.search(r'<tr id="tracking-counts">(.*?)</tr>', page).group(1)
    # opens, opened by, clicks, clicked by, unsubscribed
    assert re.findall(r"<td>(\d+)</td>", counts) == ["1", "1", "1", "1", "0"]
    assert "https://shop.example/spring?x=1&amp;y=2" in page
