"""Double opt-in end to end: the public form on the real web app, the confirmation message
sent by a real worker on the transactional queue to the SMTP sink, and the link in it."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request

import pytest

from subscribers import proof_of_work
from subscribers.models import MailingList, Subscription
from tests.e2e.helpers import wait_until
from tests.factories import MailingListFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def post(url: str, fields: dict[str, str]) -> str:
    data = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(url, data=data, timeout=10) as response:  # noqa: S310
        return response.read().decode()


def press_the_button(url: str) -> str:
    """Open the page as a browser would (cookies kept) and submit its form."""
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with browser.open(url, timeout=10) as response:
        page = response.read().decode()
    assert "<button" in page  # opening the link only asks
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, page
    data = urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1)}).encode()
    with browser.open(url, data=data, timeout=10) as response:
        return response.read().decode()


def test_double_opt_in_from_the_form_to_the_link_in_the_message(processes, sink_server, smtp_sink):
    news = MailingListFactory(name="Garden news", is_public=True, opt_in=MailingList.OptIn.DOUBLE)
    base = processes.web()
    processes.worker("worker", "transactional,default", 1)

    # The browser's part of the form: the proof-of-work, from the server's own challenge.
    with urllib.request.urlopen(f"{base}/subscribe/challenge/", timeout=10) as response:  # noqa: S310
        answer = proof_of_work.solve(json.loads(response.read()))
    page = post(
        f"{base}/subscribe/{news.pk}/",
        {"email": "Reader@Example.com", "name": "Ann", proof_of_work.FIELD: answer},
    )

    assert "Follow the link in it to confirm" in page
    subscription = Subscription.objects.get(subscriber__email="reader@example.com")
    assert subscription.status == Subscription.Status.UNCONFIRMED
    wait_until(lambda: smtp_sink.messages(), 15, "the confirmation message")
    (received,) = smtp_sink.messages()
    assert received.rcpt_to == "reader@example.com"
    message = received.message()
    assert "Garden news" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    link = re.search(rf"{re.escape(base)}/confirm/\S+/", text)
    assert link, text

    assert "Subscription confirmed" in press_the_button(link.group(0))

    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.CONFIRMED
