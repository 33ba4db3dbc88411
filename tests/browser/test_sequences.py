"""Building a welcome sequence in the admin, in Chromium: the trigger, three steps with their
messages written in place, activation, a new member who gets the series in the mailbox, and
the report per step."""

from __future__ import annotations

import time

import pytest

from automations.models import Sequence
from subscribers.models import Subscription
from tests.browser.conftest import SCREENSHOTS, Site, login, screenshot
from tests.factories import MailingListFactory, SubscriberFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def add_step(page, n: int, **fields: str) -> None:
    page.click("text=Add another Step")
    prefix = f"#id_steps-{n}-"
    for name, value in fields.items():
        if name in ("kind", "wait_weekday"):
            page.select_option(prefix + name, value)
        else:
            page.fill(prefix + name, value)


def test_build_a_welcome_sequence_and_a_new_member_gets_it(page, site: Site):
    members = MailingListFactory(name="Members")

    login(page, site)
    page.goto(f"{site.base}/admin/automations/sequence/add/")
    page.fill("#id_name", "Welcome series")
    page.fill("#id_tags", '["onboarding"]')
    page.select_option("#id_lists_from", label="Members")
    page.click("#id_lists_add")
    page.select_option("#id_trigger", "list")
    page.select_option("#id_trigger_list", label="Members")
    add_step(
        page,
        0,
        position="1",
        kind="send",
        subject="Welcome, {{ subscriber.name }}",
        body="<p>Glad you joined, {{ subscriber.name }}.</p>",
    )
    add_step(page, 1, position="2", kind="wait", wait_seconds="2")
    add_step(
        page, 2, position="3", kind="send", subject="Getting started", body="<p>First steps</p>"
    )
    # Each step shows only its kind's fields.
    assert page.locator("#id_steps-1-wait_seconds").is_visible()
    assert not page.locator("#id_steps-1-subject").is_visible()
    assert not page.locator("#id_steps-0-wait_seconds").is_visible()
    page.screenshot(path=str(SCREENSHOTS / "6-sequence.png"), full_page=True)
    page.click("input[name=_save]")
    page.wait_for_selector("text=was added successfully")

    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "activate")
    page.click("button[name=index]")
    page.wait_for_selector("text=Activated 1 sequence(s).")
    sequence = Sequence.objects.get(name="Welcome series")
    assert sequence.status == "active"

    grace = SubscriberFactory(email="grace@example.com", name="Grace")
    Subscription.objects.create(subscriber=grace, mailing_list=members, status="confirmed")

    deadline = time.monotonic() + 60
    while True:
        page.goto(f"{site.mailbox}/?to=grace@example.com")
        if page.locator("td", has_text="Getting started").count():
            break
        assert time.monotonic() < deadline, "the series did not arrive"
        time.sleep(0.5)
    assert page.locator("td", has_text="Welcome, Grace").count() == 1

    page.goto(f"{site.base}/admin/automations/sequence/{sequence.pk}/report/")
    rows = page.locator("#sequence-report tr[data-position]")
    assert rows.count() == 3
    deadline = time.monotonic() + 30
    while page.inner_text("tr[data-position='3'] td.sent") != "1":
        assert time.monotonic() < deadline, page.inner_text("#sequence-report")
        time.sleep(0.5)
        page.reload()
    assert page.inner_text("tr[data-position='1'] td.entered") == "1"
    screenshot(page, "6-sequence-report")
