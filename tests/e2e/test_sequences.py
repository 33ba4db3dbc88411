"""Sequences on the real stack: worker processes, beat, PostgreSQL, Redis and an SMTP sink.
A welcome series for people who join a list while a campaign sends, each step once to each;
a branch on a real open (the tracking image loaded from the message that arrived)."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from django.test import Client

from automations import services
from automations.models import Enrollment, Sequence
from tests.automations.helpers import sequence_with
from tests.e2e.helpers import bulk_audience, campaign_with, status, wait_until
from tests.factories import MailingListFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_welcome_series_beside_a_campaign_gives_each_step_once_to_each(
    processes, sink_server, smtp_sink
):
    joining = MailingListFactory(name="Members")
    welcome = sequence_with(
        [
            {"kind": "send", "subject": "Welcome"},
            {"kind": "wait", "wait_seconds": 2},
            {"kind": "send", "subject": "Getting started"},
            {"kind": "wait", "wait_seconds": 2},
            {"kind": "send", "subject": "Tips"},
        ],
        lists=[joining],
        trigger=Sequence.Trigger.LIST,
        trigger_list=joining,
    )
    newsletter = campaign_with(600, "reader")
    processes.system(senders=2, concurrency=2)
    services.sequence_activate(sequence=welcome)
    processes.manage("campaign", "start", str(newsletter.pk))
    bulk_audience(joining, [f"member{n}@example.com" for n in range(200)])

    wait_until(lambda: status(newsletter) == "finished", 120, "the campaign to finish")
    wait_until(lambda: len(smtp_sink.messages()) >= 600 + 3 * 200, 120, "every step to arrive")
    wait_until(
        lambda: not Enrollment.objects.filter(state="active").exists(), 30, "all to go through"
    )
    received = Counter(
        (m.message()["Subject"], m.rcpt_to)
        for m in smtp_sink.messages()
        if m.rcpt_to.startswith("member")
    )
    assert set(received.values()) == {1}  # nothing twice
    assert Counter(subject for subject, _ in received) == {
        "Welcome": 200,
        "Getting started": 200,
        "Tips": 200,
    }
    assert set(Enrollment.objects.values_list("state", flat=True)) == {"done"}
    # The step messages keep running, waiting for the next member.
    steps = [s.campaign for s in welcome.steps.filter(kind="send")]
    assert {status(c) for c in steps} == {"running"}


def test_a_branch_on_an_open_sends_the_next_step_only_to_who_opened(
    processes, sink_server, smtp_sink
):
    readers = MailingListFactory(name="Readers")
    bulk_audience(readers, ["opens@example.com", "ignores@example.com"])
    series = sequence_with(
        [
            {"kind": "send", "subject": "Welcome", "body": "<p>Hello</p>"},
            {"kind": "wait", "wait_seconds": 12},
            {"kind": "branch", "test": "opened"},
            {"kind": "send", "subject": "More for readers"},
        ],
        lists=[readers],
        trigger=Sequence.Trigger.MANUAL,
    )
    processes.system(senders=1, concurrency=2)
    services.sequence_activate(sequence=series)
    people = list(readers.subscribers.order_by("email").values_list("pk", flat=True))
    services.sequence_enroll(sequence=series, subscriber_ids=people)

    wait_until(lambda: len(smtp_sink.messages()) >= 2, 60, "the welcome messages")
    (opened,) = [m for m in smtp_sink.messages() if m.rcpt_to == "opens@example.com"]
    html = opened.message().get_body(("html",)).get_content()
    pixel = re.search(r'src="http://[^/]+(/o/[^"]+)"', html).group(1)
    assert Client().get(pixel).status_code == 200  # the mail client loads the image

    wait_until(lambda: not Enrollment.objects.filter(state="active").exists(), 60, "the branch")
    wait_until(lambda: len(smtp_sink.messages()) >= 3, 30, "the reader's next step")
    subjects = sorted((m.rcpt_to, m.message()["Subject"]) for m in smtp_sink.messages())
    assert subjects == [
        ("ignores@example.com", "Welcome"),
        ("opens@example.com", "More for readers"),
        ("opens@example.com", "Welcome"),
    ]
    left = Enrollment.objects.get(subscriber__email="ignores@example.com")
    assert (left.state, left.reason) == ("exited", "left at step 3")
