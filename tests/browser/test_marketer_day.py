"""A marketer's day, in a real browser, against the real running system."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from campaigns.models import Campaign, Template
from campaigns.services import campaign_start
from subscribers.models import MailingList, Subscription
from tests.browser.conftest import (
    Site,
    login,
    mark_page,
    reloaded,
    screenshot,
    write_content,
)
from tests.e2e.helpers import bulk_audience, campaign_with, settings_row, status, wait_until
from tests.factories import MailingListFactory, SubscriberFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_import_subscribers_into_a_new_double_opt_in_list(page, site: Site, tmp_path: Path):
    login(page, site)
    page.goto(f"{site.base}/admin/subscribers/mailinglist/add/")
    page.fill("#id_name", "Spring customers")
    page.select_option("#id_opt_in", "double")
    page.click("input[name=_save]")
    page.wait_for_selector("text=was added successfully")

    upload = tmp_path / "customers.csv"
    upload.write_text(
        "email,name,city\n"
        "ada@example.com,Ada,Lyon\n"
        "ben@example.com,Ben,Oslo\n"
        "not-an-address,Nobody,Nowhere\n"
        "chloe@example.com,Chloe,Porto\n"
        "ada@example.com,Ada again,Paris\n"
        "dmitri@example.com,Dmitri,Turin\n"
    )
    page.goto(f"{site.base}/admin/subscribers/subscriberimport/add/")
    page.set_input_files("#id_file", str(upload))
    page.select_option("#id_mode", "subscribe")
    page.select_option("#id_mailing_list", label="Spring customers")
    page.click("input[name=_save]")
    page.wait_for_selector("text=a worker imports it now")
    mark_page(page)
    # The worker imports the file; the list's progress moves on its own.
    page.wait_for_selector("#imports >> text=download the report", timeout=30_000)
    assert not reloaded(page)
    row = page.inner_text("#imports tbody tr")
    assert "4" in row and "2" in row  # imported, skipped
    screenshot(page, "1-import")

    with page.expect_download() as download:
        page.click("#imports >> text=download the report")
    report = Path(download.value.path()).read_text()
    assert "4,\"'not-an-address' is not a valid email address" in report
    assert '6,"ada@example.com already appears on line 2"' in report
    customers = MailingList.objects.get(name="Spring customers")
    subscriptions = Subscription.objects.filter(mailing_list=customers)
    # A double opt-in list: imported people are unconfirmed until they confirm.
    assert subscriptions.count() == 4
    assert set(subscriptions.values_list("status", flat=True)) == {"unconfirmed"}


def choose_list(page, name: str) -> None:
    """Django's two-box list chooser: pick the list on the left, move it right."""
    page.select_option("#id_lists_from", label=name)
    page.click("#id_lists_add")


def test_build_a_campaign_preview_it_as_a_subscriber_and_find_the_test_mail(page, site: Site):
    customers = MailingListFactory(name="Customers")
    ada = SubscriberFactory(email="ada@example.com", name="Ada", attributes={"city": "Lyon"})
    Subscription.objects.create(subscriber=ada, mailing_list=customers, status="confirmed")

    login(page, site)
    page.goto(f"{site.base}/admin/campaigns/template/add/")
    page.fill("#id_name", "Newsletter")
    write_content(
        page,
        "#id_html",
        "<html><body><h1 style='color:#3d5a80'>Shop news</h1>{{ content }}"
        "<p><a href='{{ unsubscribe_url }}'>Unsubscribe</a></p></body></html>",
    )
    page.click("input[name=_save]")
    page.wait_for_selector("text=was added successfully")

    page.goto(f"{site.base}/admin/campaigns/campaign/add/")
    page.fill("#id_name", "Spring sale")
    page.fill("#id_subject", "{{ subscriber.name }}, spring is here")
    choose_list(page, "Customers")
    page.select_option("#id_template", label="Newsletter")
    write_content(
        page,
        "#id_body",
        "<p>Hello {{ subscriber.name }} from {{ subscriber.attributes.city }}!</p>"
        "<p>Our spring sale starts today.</p>",
    )
    page.click("input[name=_continue]")
    page.wait_for_selector("text=was added successfully")

    page.click("text=Preview and test")
    page.fill("#subscriber", "ada@example.com")
    page.click("input[value=Preview]")
    assert page.inner_text("#subject") == "Ada, spring is here"
    assert "Hello Ada from Lyon!" in page.inner_text("#text")
    screenshot(page, "2-preview")

    page.fill("#to", "marketer@shop.example")
    page.click("input[value='Send test']")
    page.wait_for_selector("text=Test on its way to marketer@shop.example")

    # The mailbox's web view: the test arrives within seconds.
    deadline = time.monotonic() + 30
    while True:
        page.goto(f"{site.mailbox}/?to=marketer@shop.example")
        if page.locator("td", has_text="spring is here").count():
            break
        assert time.monotonic() < deadline, "the test message did not arrive"
        time.sleep(0.5)
    page.locator("tr", has_text="spring is here").locator("a").first.click()
    page.wait_for_selector("h1:has-text('To marketer@shop.example')")
    body = page.frame_locator("iframe").locator("body")
    assert "Hello Ada from Lyon!" in body.inner_text()
    screenshot(page, "2-mailbox")
    campaign = Campaign.objects.get(name="Spring sale")
    assert campaign.status == Campaign.Status.DRAFT  # a test sends nothing to the list


def test_a_second_campaign_waits_for_a_slot_until_the_limit_is_raised(page, site: Site):
    settings_row(max_running_campaigns=1)
    first = campaign_with(1500, "first-", rate_limit=30, name="Spring sale")
    second = campaign_with(1500, "second-", rate_limit=30, name="Garden week")

    login(page, site)
    page.goto(f"{site.base}/admin/campaigns/campaign/")
    for campaign in (first, second):
        page.check(f"input[name=_selected_action][value='{campaign.pk}']")
    page.select_option("select[name=action]", "start")
    page.click("button[name=index]")
    page.wait_for_selector("text=Started")

    page.click("#mailer-nav >> text=Sending status")
    # The action starts them one after the other (in the list's order, newest first) and the
    # dispatcher may tick in between: whichever it admitted runs, the other waits.
    waiting = page.locator("#waiting tr[data-campaign]")
    waiting.wait_for(timeout=30_000)
    assert waiting.get_attribute("data-limited-by") == "running_slots"
    ids = {str(first.pk), str(second.pk)}
    held = waiting.get_attribute("data-campaign")
    assert held in ids
    (running,) = ids - {held}
    page.locator(f"#running tr[data-campaign='{running}']").wait_for()
    assert "1 of 1" in page.inner_text("#status .summary")
    screenshot(page, "3-status-waiting")

    page.click("#waiting >> text=Change")
    page.fill("#id_max_running_campaigns", "2")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")

    page.click("#mailer-nav >> text=Sending status")
    mark_page(page)
    started = time.monotonic()
    for campaign in (first, second):
        page.locator(f"#running tr[data-campaign='{campaign.pk}']").wait_for(timeout=20_000)
    assert time.monotonic() - started < 20
    progress = page.locator(f"#running tr[data-campaign='{held}'] progress")
    before = float(progress.get_attribute("value") or 0)
    wait_until(lambda: float(progress.get_attribute("value") or 0) > before, 20, "the bar to move")
    assert not reloaded(page)
    screenshot(page, "3-status")


def test_pause_and_resume_from_the_campaign_page_with_its_chart(page, site: Site):
    campaign = campaign_with(2000, "chart-", rate_limit=40, name="Spring sale")
    campaign_start(campaign=campaign)
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).sent >= 100, 30, "sending")

    login(page, site)
    page.goto(f"{site.base}/admin/campaigns/campaign/{campaign.pk}/report/")
    page.wait_for_selector(".chart div")
    page.click("input[value=Pause]")
    page.wait_for_selector("text=Now: Paused")
    assert status(campaign) == "paused"
    paused_at = Campaign.objects.get(pk=campaign.pk).sent
    time.sleep(2)
    assert Campaign.objects.get(pk=campaign.pk).sent <= paused_at + 80  # chunks in flight

    page.click("input[value=Resume]")
    page.wait_for_selector("text=Resumed")
    mark_page(page)
    page.wait_for_selector("#report >> text=Now: Running", timeout=20_000)
    sent = page.locator("#outcomes td").first
    before = int(sent.inner_text())
    wait_until(lambda: int(sent.inner_text()) > before, 20, "the counts to move")
    assert not reloaded(page)
    bars = page.locator(".chart div").count()
    assert bars >= 1
    screenshot(page, "4-report")


def test_opens_clicks_and_the_one_click_unsubscribe_are_counted(page, site: Site):
    customers = MailingListFactory(name="Customers")
    bulk_audience(customers, ["ada@example.com", "ben@example.com", "chloe@example.com"])
    campaign = Campaign.objects.create(
        name="Spring sale",
        subject="Spring is here",
        body=f"<p>Hello!</p><p><a href='{site.base}/healthz'>See the spring sale</a></p>",
        template=Template.objects.create(
            name="Plain", html="<html><body>{{ content }}</body></html>"
        ),
    )
    campaign.lists.add(customers)
    campaign_start(campaign=campaign)
    wait_until(lambda: status(campaign) == "finished", 60, "the campaign to be sent")

    page.goto(f"{site.mailbox}/?to=ada@example.com")
    page.locator("tr", has_text="Spring is here").locator("a").first.click()
    frame = page.frame_locator("iframe")
    frame.locator("text=See the spring sale").wait_for()  # the open pixel loads with it
    with page.context.expect_page() as answer:
        page.click("text=Unsubscribe (one click")
    assert "unsubscribed" in answer.value.inner_text("body")
    with page.expect_response(lambda r: "/c/" in r.url) as followed:
        frame.locator("text=See the spring sale").click()
    # The tracked link answers with a redirect to the link's own address.
    assert followed.value.status == 302
    assert followed.value.headers["location"] == f"{site.base}/healthz"

    login(page, site)
    page.goto(f"{site.base}/admin/campaigns/campaign/{campaign.pk}/report/")
    mark_page(page)
    counts = page.locator("#tracking-counts td")
    # Tracking events reach the database in batches every few seconds; the page follows.
    wait_until(
        lambda: [c.strip() for c in counts.all_inner_texts()] == ["1", "1", "1", "1", "1"],
        30,
        f"one open, one click and one unsubscribe (shown: {counts.all_inner_texts()})",
    )
    assert not reloaded(page)
    assert Subscription.objects.get(subscriber__email="ada@example.com").status == "unsubscribed"
    screenshot(page, "5-tracking")
