"""In a real browser: an Editor writes and tests campaigns and finds no way to send one; a
visitor's browser solves the subscribe form's proof-of-work and the form goes through."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from guardian.shortcuts import assign_perm

from subscribers.models import MailingList, Subscription
from tests.browser.conftest import PASSWORD, Site, login, screenshot
from tests.factories import CampaignFactory, MailingListFactory


@pytest.fixture
def web_site(processes, tmp_path, roles) -> Site:
    """The web app alone: what an Editor sees needs no workers."""
    processes.env["STATIC_ROOT"] = str(tmp_path / "static")
    processes.manage("collectstatic", "--no-input", "-v", "0")
    base = processes.web()
    editor = User.objects.create_user("editor", "editor@shop.example", PASSWORD, is_staff=True)
    editor.groups.add(Group.objects.get(name="Editor"))
    return Site(base=base, mailbox="", processes=processes, username="editor")


@pytest.fixture
def site(web_site) -> Site:
    return web_site


def test_an_editor_finds_no_start_button_and_no_start_action(page, site: Site):
    customers = MailingListFactory(name="Customers")
    assign_perm("subscribers.view_mailinglist", Group.objects.get(name="Editor"), customers)
    campaign = CampaignFactory(name="Spring sale", lists=[customers])
    refused: list[str] = []  # what the Content-Security-Policy blocked, as the console says
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    login(page, site)

    page.goto(f"{site.base}/admin/campaigns/campaign/{campaign.pk}/report/")
    page.wait_for_selector("#campaign-actions")
    buttons = [
        b.get_attribute("value") for b in page.locator("#campaign-actions input[type=submit]").all()
    ]
    assert "Start" not in buttons and "Send a test to me" in buttons
    screenshot(page, "editor-report")

    page.goto(f"{site.base}/admin/campaigns/campaign/")
    actions = page.locator("select[name=action] option").all_inner_texts()
    assert "Start selected campaigns" not in actions
    assert "Send a test of selected campaigns to me" in actions

    page.goto(f"{site.base}/admin/campaigns/campaign/{campaign.pk}/change/")
    assert page.locator("input[name=subject]").is_editable()
    # The admin's own scripts run under the policy: the two-box list chooser is drawn.
    page.wait_for_selector("#id_lists_from")
    assert refused == []


def test_a_visitors_browser_solves_the_proof_of_work_and_subscribes(page, site: Site):
    news = MailingListFactory(name="Garden news", is_public=True, opt_in=MailingList.OptIn.SINGLE)
    page.goto(f"{site.base}/subscribe/{news.pk}/")
    page.fill("#email", "visitor@example.com")
    page.click("button[type=submit]")
    page.wait_for_selector("text=You are subscribed to Garden news")
    subscription = Subscription.objects.get(subscriber__email="visitor@example.com")
    assert subscription.status == Subscription.Status.CONFIRMED
