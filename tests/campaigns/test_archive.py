"""The public archive: campaigns marked so, once sent, on a page per list and in RSS and Atom
feeds, rendered for a placeholder subscriber without the links that act on a subscriber."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns.models import Campaign
from tests.factories import CampaignFactory, MailingListFactory, audience

pytestmark = pytest.mark.django_db

BODY = (
    "<p>Hello {{ subscriber.name }} from {{ subscriber.attributes.city }}.</p>"
    '<p><a href="https://shop.example/spring">The spring range</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> · '
    "<a href='{{ preferences_url }}'>Your preferences</a> · "
    '<a href="{{ view_url }}">View in a browser</a></p>'
)


def sent(mailing_list, name: str = "Spring news", **fields) -> Campaign:
    fields = {"archive": True, "body": BODY, "subject": "Spring for {{ subscriber.name }}"} | fields
    campaign = CampaignFactory(lists=[mailing_list], name=name, **fields)
    campaign.full_clean()
    campaign.status, campaign.started_at = Campaign.Status.FINISHED, timezone.now()
    campaign.save()
    return campaign


def test_a_sent_campaign_marked_for_the_archive_is_listed_on_its_lists_pages(client):
    news, other = MailingListFactory(name="News"), MailingListFactory(name="Other")
    shown = sent(news, archive_meta={"name": "Reader"})
    sent(news, name="Not marked", archive=False)
    draft = CampaignFactory(lists=[news], name="Draft", archive=True)
    draft.full_clean()
    draft.save()

    page = client.get("/archive/").content.decode()
    assert "Spring for Reader" in page and f"/archive/{shown.archive_slug}/" in page
    assert "Not marked" not in page and "Draft" not in page
    list_page = client.get(f"/archive/list/{news.uuid}/").content.decode()
    assert "Spring for Reader" in list_page and "News" in list_page
    assert "Spring for" not in client.get(f"/archive/list/{other.uuid}/").content.decode()


def test_the_archived_message_shows_a_placeholder_and_no_link_that_acts_on_a_subscriber(client):
    news = MailingListFactory()
    (reader,) = audience(news, 1, name="Real Person", attributes={"city": "Real City"})
    campaign = sent(news, archive_meta={"name": "Reader", "attributes": {"city": "Lyon"}})

    response = client.get(f"/archive/{campaign.archive_slug}/")

    page = response.content.decode()
    assert "Hello Reader from Lyon." in page
    assert "Real Person" not in page and "Real City" not in page and reader.email not in page
    assert 'href="https://shop.example/spring"' in page  # not a tracked redirect
    for removed in ("Unsubscribe", "Your preferences", "View in a browser", "/u/", "/p/", "/v/"):
        assert removed not in page
    assert "/o/" not in page  # no open pixel
    assert "script-src 'none'" in response["Content-Security-Policy"]


def test_campaigns_not_in_the_archive_have_no_page(client):
    news = MailingListFactory()
    hidden = sent(news, archive=False, archive_slug="hidden")
    assert client.get(f"/archive/{hidden.archive_slug}/").status_code == 404
    running_step = sent(news, name="A step", kind=Campaign.Kind.STEP)
    assert client.get(f"/archive/{running_step.archive_slug}/").status_code == 404
    assert client.get("/archive/no-such-campaign/").status_code == 404


def test_the_feeds_carry_the_archive_as_rss_and_atom(client):
    news = MailingListFactory(name="News", description="Our news, monthly.")
    sent(news, archive_meta={"name": "Reader"}, body=BODY + "<script>alert(1)</script>")

    # Our own feed, parsed in a test: no untrusted XML here.
    rss = ElementTree.fromstring(client.get(f"/archive/list/{news.uuid}/feed/").content)  # noqa: S314
    item = rss.find("channel/item")
    assert rss.findtext("channel/title") == "News: archive"
    assert item.findtext("title") == "Spring for Reader"
    assert "Hello Reader" in item.findtext("description")
    assert "<script" not in item.findtext("description")
    assert "Unsubscribe" not in item.findtext("description")
    assert item.findtext("link").endswith("/archive/spring-news/")

    atom = ElementTree.fromstring(client.get("/archive/feed/atom/").content)  # noqa: S314
    ns = {"a": "http://www.w3.org/2005/Atom"}
    assert atom.find("a:entry/a:title", ns).text == "Spring for Reader"


def test_archive_addresses_are_made_from_the_name_and_never_clash():
    news = MailingListFactory()
    first, second = sent(news, name="Spring news"), sent(news, name="Spring news")
    assert (first.archive_slug, second.archive_slug) == ("spring-news", "spring-news-2")
    assert sent(news, name="Feed").archive_slug == "feed-campaign"
    with pytest.raises(ValidationError, match="archive's own pages"):
        CampaignFactory(archive=True, archive_slug="list").full_clean()
    with pytest.raises(ValidationError, match="name"):
        CampaignFactory(archive=True, archive_meta={"email": "someone@example.com"}).full_clean()
