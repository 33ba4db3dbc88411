"""Segments and A/B tests in Chromium: a resend to non-openers made from a sent campaign's
report, and an A/B test built, started and read on its results page."""

from __future__ import annotations

import time

import pytest

from campaigns.ab import ABTest
from campaigns.models import Campaign
from campaigns.services import campaign_start
from tests.browser.conftest import Site, login, screenshot
from tests.e2e.helpers import bulk_audience, status, wait_until
from tests.factories import CampaignFactory, MailingListFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_resend_to_non_openers_from_the_report(page, site: Site):
    readers = MailingListFactory(name="Readers")
    bulk_audience(readers, [f"reader{n}@example.com" for n in range(12)])
    news = CampaignFactory(name="Spring news", lists=[readers], subject="Spring is here")
    campaign_start(campaign=news)
    wait_until(lambda: status(news) == "finished", 60, "the campaign")

    login(page, site)
    page.goto(f"{site.base}/admin/campaigns/campaign/{news.pk}/report/")
    page.fill("#resend-subject", "Did you see our spring news?")
    page.click("input[value='Make the follow-up draft']")
    page.wait_for_selector("text=Made the draft Spring news (to non-openers): 12 subscribers")
    follow_up = Campaign.objects.get(name="Spring news (to non-openers)")
    assert (follow_up.status, follow_up.subject) == ("draft", "Did you see our spring news?")
    kinds = set(follow_up.conditions.values_list("kind", "negate"))
    assert kinds == {
        ("received", False),
        ("opened", True),
        ("unsubscribed", True),
        ("bounced", True),
    }
    page.locator("text=Only subscribers for whom all of these hold").scroll_into_view_if_needed()
    screenshot(page, "7-resend")


def test_build_and_start_an_ab_test_and_read_its_results(page, site: Site):
    readers = MailingListFactory(name="Readers")
    bulk_audience(readers, [f"reader{n}@example.com" for n in range(40)])
    autumn = CampaignFactory(name="Autumn news", lists=[readers], subject="Autumn")

    login(page, site)
    page.goto(f"{site.base}/admin/campaigns/abtest/add/")
    page.select_option("#id_campaign", label="Autumn news")
    page.fill("#id_test_percent", "50")
    page.fill("#id_decide_after", "3600")
    for n, (label, subject) in enumerate([("A", "Autumn is here"), ("B", "Your autumn picks")]):
        page.fill(f"#id_variants-{n}-label", label)
        page.fill(f"#id_variants-{n}-subject", subject)
    page.click("input[name=_save]")
    page.wait_for_selector("text=was added successfully")

    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "start_test")
    page.click("button[name=index]")
    page.wait_for_selector("text=Started A/B test of Autumn news.")
    test = ABTest.objects.get(campaign=autumn)
    variants = [v.campaign for v in test.variants.all()]
    wait_until(lambda: all(status(c) == "finished" for c in variants), 60, "the variants")

    page.goto(f"{site.base}/admin/campaigns/abtest/{test.pk}/results/")
    sent = [int(page.inner_text(f"tr[data-label='{x}'] td.sent")) for x in "AB"]
    assert sum(sent) == sum(Campaign.objects.get(pk=c.pk).total for c in variants) > 0
    assert "not significant" in page.inner_text("#verdict")
    screenshot(page, "7-ab-results")
    page.click("input[value='Send B to the rest']")
    page.wait_for_selector("text=The winner goes to the rest now.")
    deadline = time.monotonic() + 60
    while status(autumn) != "finished":
        assert time.monotonic() < deadline, "the rest was not sent"
        time.sleep(0.5)
    assert Campaign.objects.get(pk=autumn.pk).subject == "Your autumn picks"
