"""Writing content in a real browser: the rich-text editor with a variable from its menu and an
image uploaded from it, the live preview beside, a file attached from the media library and
arriving at the mailbox with the message; the format switched with the body converted; the
layout's code editor."""

from __future__ import annotations

import io
import json
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from campaigns.models import Campaign, Media
from campaigns.services import campaign_start
from subscribers.models import Subscription
from tests.browser.conftest import LOAD_LIMIT_MS, Site, login, screenshot, timing
from tests.e2e.helpers import wait_until
from tests.factories import MailingListFactory, SubscriberFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TERMS = b"%PDF-1.4\n% The spring sale's terms\n" + bytes(range(256)) * 20


def picture(path: Path) -> Path:
    out = io.BytesIO()
    Image.new("RGB", (640, 320), "#e0893c").save(out, format="PNG")
    path.write_bytes(out.getvalue())
    return path


def mailbox_messages(site: Site, to: str) -> list[dict]:
    with urllib.request.urlopen(f"{site.mailbox}/api/messages?to={to}") as response:  # noqa: S310
        return json.load(response)["messages"]


def test_write_a_campaign_with_an_image_and_an_attachment_and_find_both_in_the_mailbox(
    page, site: Site, tmp_path: Path
):
    customers = MailingListFactory(name="Customers")
    ada = SubscriberFactory(email="ada@example.com", name="Ada", attributes={"city": "Lyon"})
    Subscription.objects.create(subscriber=ada, mailing_list=customers, status="confirmed")
    login(page, site)

    # A file for the library, through the admin's upload form.
    terms = tmp_path / "terms.pdf"
    terms.write_bytes(TERMS)
    page.goto(f"{site.base}/admin/campaigns/media/add/")
    page.set_input_files("#id_file", str(terms))
    page.fill("#id_alt", "Terms of the spring sale")
    page.click("input[name=_save]")
    page.wait_for_selector("text=was added successfully")

    page.goto(f"{site.base}/admin/campaigns/campaign/add/")
    page.fill("#id_name", "Spring sale")
    page.fill("#id_subject", "{{ subscriber.name }}, spring is here")
    page.select_option("#id_lists_from", label="Customers")
    page.click("#id_lists_add")

    # Rich text: typed, a variable from the menu, bold, an image uploaded from the editor.
    editor = page.locator(".wb-rich")
    editor.click()
    page.keyboard.type("Hello ")
    page.select_option(".wb-variables", "{{ subscriber.name }}")
    page.keyboard.type(" from ")
    page.select_option(".wb-variables", "{{ subscriber.attributes.city }}")
    page.keyboard.type("!")
    page.keyboard.press("Enter")
    page.click("button[title=Bold]")
    page.keyboard.type("Up to 30% off")
    page.keyboard.press("Enter")
    page.click("button[title='Insert an image from the media library']")
    page.set_input_files(".wb-picker input[type=file]", str(picture(tmp_path / "spring.png")))
    page.wait_for_selector(".wb-rich img")
    image_url = page.get_attribute(".wb-rich img", "src")
    assert image_url.startswith(site.base + "/media/library/")

    # The live preview beside, for a sample subscriber.
    preview = page.frame_locator(".wb-preview-frame").locator("body")
    wait_until(lambda: "Hello Sample from" in preview.inner_text(), 10, "the preview")
    assert "Up to 30% off" in preview.inner_text()
    assert page.inner_text(".wb-preview-subject") == "Sample, spring is here"
    screenshot(page, "9-editor")

    # The PDF from the library as an attachment (Django's autocomplete).
    page.click("#Media_campaigns-group .add-row a")
    page.click("#Media_campaigns-0 .select2-selection")
    page.keyboard.type("terms")
    page.locator(".select2-results__option", has_text="terms.pdf").click()
    page.click("input[name=_continue]")
    page.wait_for_selector("text=was added successfully")

    campaign = Campaign.objects.get(name="Spring sale")
    assert "Hello {{ subscriber.name }} from {{ subscriber.attributes.city }}!" in campaign.body
    assert "<strong>Up to 30% off</strong>" in campaign.body
    assert f'src="{image_url}"' in campaign.body
    assert [m.name for m in campaign.attachments.all()] == ["terms.pdf"]
    with urllib.request.urlopen(image_url) as response:  # noqa: S310 (the test's own site)
        assert response.headers["Content-Type"] == "image/png"

    campaign_start(campaign=campaign)
    deadline = time.monotonic() + 30
    while not (found := mailbox_messages(site, "ada@example.com")):
        assert time.monotonic() < deadline, "the campaign's message did not arrive"
        time.sleep(0.5)
    (message,) = found
    assert message["subject"] == "Ada, spring is here"
    assert "Hello Ada from Lyon!" in message["html"] and image_url in message["html"]
    assert message["attachments"] == [
        {"filename": "terms.pdf", "content_type": "application/pdf", "size": len(TERMS)}
    ]
    page.goto(f"{site.mailbox}/message/{message['id']}")
    link = page.get_attribute("#attachments >> text=terms.pdf", "href")
    with urllib.request.urlopen(f"{site.mailbox}{link}") as response:  # noqa: S310
        assert response.read() == TERMS
    screenshot(page, "9-mailbox-attachment")


def test_switching_the_format_converts_the_body_and_says_what_would_be_lost(page, site: Site):
    Media.objects.all().delete()
    login(page, site)
    page.goto(f"{site.base}/admin/campaigns/campaign/add/")
    page.wait_for_selector(".wb-rich")
    # The editor is the heaviest admin page (its bundle): it too loads within the limit.
    loaded = timing(page)
    print("campaign editor page:", loaded)  # shown with -s
    assert loaded["ms"] < LOAD_LIMIT_MS and loaded["bytes"] < 600_000, loaded
    page.locator(".wb-rich").click()
    page.keyboard.type("Our news")
    page.select_option(".wb-variables", "{{ subscriber.name }}")

    # Markdown keeps everything this body has: converted without a question.
    page.select_option("#id_format", "markdown")
    page.wait_for_selector(".wb-surface[data-mode=code] .cm-content")
    source = page.input_value("#id_body")
    assert source.strip() == "Our news{{ subscriber.name }}"
    assert "Converted to markdown" in page.inner_text(".wb-editor-status")

    # Back to HTML, then a table (HTML code only): Markdown would lose its layout; refused.
    page.select_option("#id_format", "html")
    page.wait_for_function("() => document.querySelector('#id_body').value.includes('<p>')")
    page.click("button[title='Edit the HTML code']")
    page.evaluate(
        "document.querySelector('#id_body').contentEditor.setValue("
        "'<table><tr><td style=\"color:red\">{{ subscriber.name }}</td></tr></table>')"
    )
    with page.expect_event("dialog") as asked:
        page.select_option("#id_format", "markdown")
    question = asked.value.message
    asked.value.dismiss()
    assert "would lose: tables" in question and "inline styles" in question
    page.wait_for_function("() => document.querySelector('#id_format').value === 'html'")
    assert page.input_value("#id_format") == "html"
    assert "<table>" in page.input_value("#id_body")
