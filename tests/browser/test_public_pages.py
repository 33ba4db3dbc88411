"""The public side in a real browser: a German list's subscribe form, its confirmation message
and confirm page in German; the list's archive page, a campaign in it without the links that
act on a subscriber, and its RSS feed."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from xml.etree import ElementTree

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from subscribers.models import Subscription
from tests.browser.conftest import Site, screenshot
from tests.factories import CampaignFactory, MailingListFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def arrived(site: Site, to: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        with urllib.request.urlopen(f"{site.mailbox}/api/messages?to={to}") as response:  # noqa: S310
            found = json.load(response)["messages"]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"nothing arrived for {to}"
        time.sleep(0.5)


def test_a_german_list_subscribes_and_confirms_in_german(page, site: Site):
    news = MailingListFactory(
        name="Gartenbrief",
        is_public=True,
        opt_in="double",
        language="de",
        description="Jeden Monat: was im Garten zu tun ist.",
    )
    page.goto(f"{site.base}/subscribe/{news.pk}/")
    assert page.get_attribute("html", "lang") == "de"
    assert page.inner_text("h1") == "Gartenbrief abonnieren"
    page.fill("#email", "grete@example.com")
    page.fill("#name", "Grete")
    screenshot(page, "10-subscribe-de")
    page.click("button[type=submit]")  # the proof of work runs first, in the page
    page.wait_for_selector("text=Fast geschafft")

    message = arrived(site, "grete@example.com")
    assert message["subject"] == "Bitte bestätigen Sie Ihr Abonnement von Gartenbrief"
    assert "bitte bestätigen Sie, dass Sie Gartenbrief" in message["text"]
    confirm_url = re.search(r"https?://\S+/confirm/\S+/", message["text"]).group(0)
    page.goto(confirm_url.replace("http://testserver", site.base))
    assert page.inner_text("h1") == "Abonnement bestätigen"
    page.click("button[type=submit]")
    page.wait_for_selector("text=Abonnement bestätigt")
    assert Subscription.objects.get(mailing_list=news).status == "confirmed"


def test_the_archive_page_a_campaign_in_it_and_the_feed(page, site: Site):
    news = MailingListFactory(name="Nouvelles du jardin", language="fr")
    campaign = CampaignFactory(
        lists=[news],
        name="Avril au jardin",
        subject="Avril, {{ subscriber.name }}",
        body="<p>Bonjour {{ subscriber.name }}, les semis commencent.</p>"
        '<p><a href="{{ unsubscribe_url }}">Se désabonner</a></p>',
        archive=True,
        archive_meta={"name": "jardinier"},
    )
    campaign.full_clean()
    campaign.save()
    Campaign.objects.filter(pk=campaign.pk).update(status="finished", started_at=timezone.now())

    page.goto(f"{site.base}/archive/list/{news.uuid}/")
    assert page.inner_text("h1") == "Nouvelles du jardin"
    assert "S'abonner au flux" in page.inner_text("main")
    screenshot(page, "10-archive")
    page.click("text=Avril, jardinier")
    assert "Bonjour jardinier, les semis commencent." in page.inner_text("body")
    assert page.locator("text=Se désabonner").count() == 0

    with urllib.request.urlopen(f"{site.base}/archive/list/{news.uuid}/feed/") as response:  # noqa: S310
        assert response.headers["Content-Type"].startswith("application/rss+xml")
        feed = ElementTree.fromstring(response.read())  # noqa: S314 (the test's own site)
    assert feed.findtext("channel/title") == "Nouvelles du jardin : archives"
    assert feed.findtext("channel/item/title") == "Avril, jardinier"
    assert feed.findtext("channel/item/link").endswith(f"/archive/{campaign.archive_slug}/")
