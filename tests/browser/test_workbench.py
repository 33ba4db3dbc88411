"""The marketer's workbench in a real browser: the dashboard, the charts of a campaign and
across campaigns and lists (drawn by the project's own Chart.js, numbers a click away, CSV),
dark mode and a phone's screen; and how heavy and fast the main pages are."""

from __future__ import annotations

import csv
import io
import random
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Click, Open, TrackedLink
from campaigns.services import campaign_start
from mailer.models import Bounce
from subscribers.models import Subscriber, Subscription
from tests.browser.conftest import LOAD_LIMIT_MS, Site, login, screenshot, timing
from tests.e2e.helpers import campaign_with, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sent_campaign(name: str, count: int, opened: float, clicked: float) -> Campaign:
    campaign = campaign_with(count, f"{name.lower().replace(' ', '-')}-", name=name)
    campaign_start(campaign=campaign)
    wait_until(
        lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.FINISHED,
        60,
        f"{name} to finish",
    )
    # What readers did, as the tracking flush writes it (that path has its own tests).
    people = list(Subscriber.objects.filter(email__startswith=name.lower().replace(" ", "-")))
    now = timezone.now()
    link = TrackedLink.objects.create(campaign=campaign, url="https://shop.example/spring")
    Open.objects.bulk_create(
        Open(
            campaign=campaign, subscriber_id=s.pk, at=now - timedelta(minutes=random.randint(0, 50))
        )
        for s in people[: int(count * opened)]
    )
    Click.objects.bulk_create(
        Click(campaign=campaign, link=link, subscriber_id=s.pk, at=now)
        for s in people[: int(count * clicked)]
    )
    return Campaign.objects.get(pk=campaign.pk)


def drawn_charts(page) -> int:
    return page.evaluate(
        "Array.from(document.querySelectorAll('canvas[data-chart]'))"
        ".filter((c) => window.Chart && Chart.getChart(c)).length"
    )


def test_the_dashboard_and_the_charts(page, site: Site, tmp_path: Path):
    spring = sent_campaign("Spring news", 300, opened=0.4, clicked=0.1)
    summer = sent_campaign("Summer news", 200, opened=0.25, clicked=0.05)
    first = Subscriber.objects.filter(email__startswith="summer-news-").order_by("pk")[:30]
    for subscriber in first[:20]:
        Bounce.objects.create(
            email=subscriber.email,
            subscriber=subscriber,
            campaign=summer,
            kind="hard",
            source="mailbox",
            at=timezone.now(),
        )
    # Growth over the last days: subscriptions made on earlier days, a few ended.
    subscriptions = Subscription.objects.filter(mailing_list__in=spring.lists.all())
    for days, ids in enumerate(_chunks(list(subscriptions.values_list("pk", flat=True)), 40)):
        Subscription.objects.filter(pk__in=ids).update(
            created_at=timezone.now() - timedelta(days=days)
        )
    Subscription.objects.filter(pk__in=list(subscriptions.values_list("pk", flat=True)[:7])).update(
        status="unsubscribed"
    )
    stuck = campaign_with(5, "stuck-", name="Autumn teaser")
    Campaign.objects.filter(pk=stuck.pk).update(
        status="paused", status_reason="The SMTP server refused the login: 535 bad credentials"
    )

    login(page, site)
    page.goto(f"{site.base}/admin/")
    page.wait_for_selector("#growth canvas")
    wait_until(lambda: drawn_charts(page) == 1, 10, "the growth chart to be drawn")
    dashboard = timing(page)
    assert "Nothing is sending." in page.inner_text("#sending-now")
    attention = page.inner_text("#attention")
    assert "Autumn teaser was paused by errors" in attention and "535 bad credentials" in attention
    assert "Summer news: 10.0% of its messages bounced" in attention
    finished = page.inner_text("#finished")
    assert "Spring news" in finished and "40.0%" in finished and "10.0%" in finished
    assert "+505" in page.inner_text("#growth")  # the three lists made today and lately
    screenshot(page, "8-dashboard")

    # A chart's numbers: a click away as a table, and as CSV.
    page.click("#growth summary")
    assert page.locator("#numbers-growth table").is_visible()
    with page.expect_download() as download:
        page.click("#numbers-growth >> text=Download as CSV")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0] == ["day", "Subscribed", "Unsubscribed", "Bounced"]
    assert sum(int(row[1]) for row in rows[1:]) == 505

    # One campaign: over time, by outcome, by link and by domain.
    page.goto(f"{site.base}/admin/campaigns/campaign/{spring.pk}/report/")
    wait_until(lambda: drawn_charts(page) == 4, 10, "the report's four charts")
    report = timing(page)
    page.click("#numbers-links summary")
    assert "https://shop.example/spring" in page.inner_text("#numbers-links")
    assert "30" in page.inner_text("#numbers-links")  # 10 % of 300 clicked
    page.locator("#charts").scroll_into_view_if_needed()
    screenshot(page, "8-report-charts")

    # Across campaigns, and the lists.
    page.goto(f"{site.base}/admin/analytics/campaigns/")
    wait_until(lambda: drawn_charts(page) == 2, 10, "the comparison's charts")
    compared = timing(page)
    table = page.inner_text("#comparison")
    assert table.index("Summer news") < table.index("Spring news")  # newest first
    screenshot(page, "8-campaigns-compared")
    page.goto(f"{site.base}/admin/analytics/lists/?days=30")
    wait_until(lambda: drawn_charts(page) == 2, 10, "the lists' charts")
    lists = timing(page)

    # Dark mode, and a phone.
    page.goto(f"{site.base}/admin/")
    page.evaluate("localStorage.setItem('theme', 'dark')")
    page.reload()
    wait_until(lambda: drawn_charts(page) == 1, 10, "the growth chart in dark mode")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    screenshot(page, "8-dashboard-dark")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    wait_until(lambda: drawn_charts(page) == 1, 10, "the growth chart on a phone")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the dashboard is {width} px wide on a 390 px screen"
    screenshot(page, "8-dashboard-phone")

    measured = {"dashboard": dashboard, "report": report, "compared": compared, "lists": lists}
    print("page weight and load time:", measured)  # shown with -s
    for name, figures in measured.items():
        assert figures["ms"] < LOAD_LIMIT_MS, f"{name} took {figures['ms']:.0f} ms to load"
        assert figures["bytes"] < 600_000, f"{name} weighs {figures['bytes']} bytes"


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]
