"""A/B tests and resends on the real stack. The variants go out, a reader opens variant B's
message (the tracking image loaded), and when the time is up the engine sends B to the rest:
each subscriber gets exactly one message. A resend to non-openers reaches exactly those who
did not load the image."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from django.test import Client

from campaigns.ab import ABTest, Variant
from campaigns.ab_services import ab_start
from campaigns.models import Campaign, Open
from campaigns.services import campaign_resend_to_non_openers
from tests.e2e.helpers import bulk_audience, status, wait_until
from tests.factories import CampaignFactory, MailingListFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_ab_test_chooses_its_winner_and_sends_it_to_the_rest(processes, sink_server, smtp_sink):
    readers = MailingListFactory()
    bulk_audience(readers, [f"r{n}@example.com" for n in range(300)])
    campaign = CampaignFactory(lists=[readers], subject="Plain", body="<p>Hello</p>")
    test = ABTest.objects.create(campaign=campaign, test_percent=40, decide_after=12)
    Variant.objects.create(test=test, label="A", subject="Subject A")
    Variant.objects.create(test=test, label="B", subject="Subject B")
    processes.system(senders=1, concurrency=2)
    ab_start(test=test)
    variants = [v.campaign for v in test.variants.order_by("label")]
    wait_until(lambda: all(status(c) == "finished" for c in variants), 60, "the variants")

    def subject(message) -> str:
        return message.message()["Subject"]

    opened = [m for m in smtp_sink.messages() if subject(m) == "Subject B"][:10]
    for message in opened:
        html = message.message().get_body(("html",)).get_content()
        pixel = re.search(r'src="http://[^/]+(/o/[^"]+)"', html).group(1)
        assert Client().get(pixel).status_code == 200

    wait_until(lambda: status(campaign) == "finished", 90, "the winner sent to the rest")
    test.refresh_from_db()
    assert test.winner == variants[1]
    for variant in variants:
        variant.refresh_from_db()
    received = Counter(m.rcpt_to for m in smtp_sink.messages())
    assert len(received) == 300 and set(received.values()) == {1}
    subjects = Counter(subject(m) for m in smtp_sink.messages())
    tested = sum(c.total for c in variants)
    assert subjects["Subject A"] + subjects["Subject B"] == 300
    assert subjects["Subject A"] == variants[0].total
    assert Campaign.objects.get(pk=campaign.pk).total == 300 - tested


def test_a_resend_to_non_openers_reaches_exactly_those_who_did_not_open(
    processes, sink_server, smtp_sink
):
    readers = MailingListFactory()
    bulk_audience(readers, [f"n{n}@example.com" for n in range(20)])
    first = CampaignFactory(lists=[readers], subject="News", body="<p>Hello</p>")
    processes.system(senders=1, concurrency=2)
    processes.manage("campaign", "start", str(first.pk))
    wait_until(lambda: status(first) == "finished", 60, "the first campaign")
    openers = sorted(m.rcpt_to for m in smtp_sink.messages())[:5]
    for message in smtp_sink.messages():
        if message.rcpt_to in openers:
            html = message.message().get_body(("html",)).get_content()
            pixel = re.search(r'src="http://[^/]+(/o/[^"]+)"', html).group(1)
            assert Client().get(pixel).status_code == 200
    # The opens reach the database with the next flush (every 5 s).
    wait_until(lambda: Open.objects.filter(campaign=first).count() == 5, 30, "the opens")

    first.refresh_from_db()
    follow_up = campaign_resend_to_non_openers(campaign=first, subject="In case you missed it")
    processes.manage("campaign", "start", str(follow_up.pk))
    wait_until(lambda: status(follow_up) == "finished", 60, "the follow-up")
    again = sorted(
        m.rcpt_to for m in smtp_sink.messages() if m.message()["Subject"] == "In case you missed it"
    )
    assert again == sorted(
        f"n{n}@example.com" for n in range(20) if f"n{n}@example.com" not in openers
    )
