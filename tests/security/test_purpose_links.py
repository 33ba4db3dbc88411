"""Each link of a message opens only what it was made for. The view link is the one people
forward and paste: whoever holds it sees the message and nothing else, not the preferences
page, the subscriber's data or the erase button. The data is only ever mailed to the
subscriber's own address."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re

import pytest
from django.conf import settings

from campaigns.views import render_for
from subscribers import links
from subscribers.models import Subscriber, Subscription
from tests.factories import CampaignFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

BODY = (
    "Hi {{ subscriber.name }}. <a href='{{ view_url }}'>View</a> "
    "<a href='{{ preferences_url }}'>Preferences</a> <a href='{{ unsubscribe_url }}'>Leave</a>"
)


def message_links(settings) -> tuple[Subscriber, dict[str, str]]:
    """A subscriber and the links of the campaign message they received, by path letter."""
    settings.SITE_URL = "https://news.example"
    subscription = SubscriptionFactory(subscriber__attributes={"secret": "s3cr3t-attribute"})
    campaign = CampaignFactory(lists=[subscription.mailing_list], body=BODY)
    _, _, html = render_for(campaign, subscription.subscriber)
    assert html is not None
    found = dict(re.findall(r"https://news\.example/([a-z])/([^/]+)/", html))
    assert set(found) >= {"v", "p", "u", "o"}
    return subscription.subscriber, found


def test_a_forwarded_view_link_opens_only_the_view(client, settings):
    subscriber, found = message_links(settings)
    view = found["v"]

    assert client.get(f"/v/{view}/").status_code == 200
    for path in (f"/p/{view}/", f"/p/{view}/export/", f"/p/{view}/erase/"):
        response = client.post(path, {"confirm": "yes", "lists": []})
        assert response.status_code == 404, path
        assert b"s3cr3t-attribute" not in response.content
    assert client.get(f"/p/{view}/").status_code == 404
    assert client.post(f"/u/{view}/").status_code == 404

    assert Subscriber.objects.filter(pk=subscriber.pk).exists()
    assert Subscription.objects.get(subscriber=subscriber).status == "confirmed"


def test_each_link_is_refused_for_every_other_purpose(client, settings):
    _, found = message_links(settings)
    assert client.get(f"/v/{found['p']}/").status_code == 404
    assert client.get(f"/v/{found['u']}/").status_code == 404
    assert client.get(f"/p/{found['u']}/").status_code == 404
    assert client.get(f"/p/{found['o']}/").status_code == 404
    assert client.get(f"/u/{found['o']}/").status_code == 404
    # The tracking token only records opens and clicks.
    assert client.get(f"/o/{found['o']}/")["Content-Type"] == "image/gif"


def test_the_data_export_is_mailed_to_the_subscriber_never_shown(
    client, settings, sink_server, smtp_sink, queued
):
    subscriber, found = message_links(settings)
    preferences = f"/p/{found['p']}/"

    assert client.get(preferences + "export/").status_code == 405
    answer = client.post(preferences + "export/")

    assert answer.status_code == 200
    assert b"s3cr3t-attribute" not in answer.content
    assert answer["Content-Type"].startswith("text/html")
    queued.run()
    [received] = smtp_sink.messages()
    assert received.rcpt_to == subscriber.email
    [attachment] = received.message().iter_attachments()
    assert json.loads(attachment.get_content())["attributes"] == {"secret": "s3cr3t-attribute"}


def test_erasing_takes_a_post_with_an_explicit_confirmation(client, settings):
    subscriber, found = message_links(settings)
    erase = f"/p/{found['p']}/erase/"

    assert client.get(erase).status_code == 405
    assert b"Nothing was erased" in client.post(erase).content
    assert Subscriber.objects.filter(pk=subscriber.pk).exists()
    client.post(erase, {"confirm": "yes"})
    assert not Subscriber.objects.filter(pk=subscriber.pk).exists()


def test_the_unsubscribe_page_mails_a_preferences_link_instead_of_showing_one(
    client, settings, sink_server, smtp_sink, queued
):
    subscriber, found = message_links(settings)

    page = client.get(f"/u/{found['u']}/").content.decode()
    assert "/p/" not in page
    client.post(f"/u/{found['u']}/preferences/")

    queued.run()
    [received] = smtp_sink.messages()
    assert received.rcpt_to == subscriber.email
    text = received.message().get_body(("plain",)).get_content()
    [mailed] = re.findall(r"https://news\.example/p/([^/]+)/", text)
    assert client.get(f"/p/{mailed}/").status_code == 200


def test_messages_can_be_mailed_only_a_few_times_an_hour(client, settings, queued):
    _, found = message_links(settings)
    answers = [client.post(f"/u/{found['u']}/preferences/").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    assert len(queued.calls) == 3


def old_token(subscriber_id: int, campaign_id: int) -> str:
    """A link as messages sent before purpose-bound links carried it (one HMAC for all)."""
    key = hashlib.sha256(f"subscribers.links{settings.SECRET_KEY}".encode()).digest()
    value = f"{subscriber_id}.{campaign_id}"
    digest = hmac.new(key, value.encode(), hashlib.sha256).digest()
    return f"{value}:{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


def test_links_of_older_messages_still_unsubscribe_but_no_longer_open_preferences(
    client, sink_server, smtp_sink, queued
):
    subscription = SubscriptionFactory()
    subscriber = subscription.subscriber
    campaign = CampaignFactory(lists=[subscription.mailing_list])
    old = old_token(subscriber.pk, campaign.pk)

    refused = client.get(f"/p/{old}/")
    assert refused.status_code == 403 and b"replaced" in refused.content
    assert client.post(f"/p/{old}/erase/", {"confirm": "yes"}).status_code == 403
    assert client.get(f"/v/{old}/").status_code == 200
    client.post(f"/u/{old}/preferences/")
    queued.run()
    assert [m.rcpt_to for m in smtp_sink.messages()] == [subscriber.email]

    client.post(f"/u/{old}/")
    subscription.refresh_from_db()
    assert subscription.status == "unsubscribed"
    assert Subscriber.objects.filter(pk=subscriber.pk).exists()


def test_a_token_signed_for_one_subscriber_does_not_open_anothers(client):
    first, second = SubscriberFactory(), SubscriberFactory()
    mine = links.token(links.Purpose.PREFERENCES, first.pk, None)
    forged = f"{second.pk}.0:{mine.rpartition(':')[2]}"
    assert client.get(f"/p/{forged}/").status_code == 404
