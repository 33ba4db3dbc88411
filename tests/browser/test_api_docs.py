"""In a real browser: a staff user opens the API's interactive docs, drawn by scripts from
the site's own static files under its Content-Security-Policy, and tries a read-only call."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from tests.browser.conftest import PASSWORD, Site, login, screenshot
from tests.factories import MailingListFactory


@pytest.fixture
def site(processes, tmp_path) -> Site:
    """The web app alone: the docs need no workers."""
    processes.env["STATIC_ROOT"] = str(tmp_path / "static")
    processes.manage("collectstatic", "--no-input", "-v", "0")
    base = processes.web()
    User.objects.create_superuser("marketer", "marketer@shop.example", PASSWORD)
    return Site(base=base, mailbox="", processes=processes)


def test_the_api_docs_load_from_this_site_and_try_a_call(page, site: Site):
    MailingListFactory(name="Newsletter")
    refused: list[str] = []
    elsewhere: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.on(
        "request",
        lambda request: (
            elsewhere.append(request.url) if not request.url.startswith(site.base) else None
        ),
    )
    login(page, site)
    page.goto(f"{site.base}/api/docs")
    page.wait_for_selector("#operations-Lists-api_lists_query_lists")
    page.click("#operations-Lists-api_lists_query_lists .opblock-summary")
    page.click("text=Try it out")
    page.click("text=Execute")
    page.wait_for_selector(".live-responses-table .response-col_status")
    body = page.locator(".live-responses-table .microlight").first.inner_text()
    assert '"Newsletter"' in body
    screenshot(page, "5-api-docs")
    assert refused == [] and elsewhere == []
