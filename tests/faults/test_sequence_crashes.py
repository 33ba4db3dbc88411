"""Twenty kill -9 of workers while a welcome sequence and a campaign send together: senders
(pool processes and whole workers) and the dispatcher, which moves subscribers through their
steps. Nobody misses a step, and every repeat is a message that was in the middle of its SMTP
transaction when its process was killed: a step's messages are queued in the ledger in the
same transaction that moves the subscribers on, under a key that allows one per step."""

from __future__ import annotations

import os
import random
import re
import signal
import time
from collections import Counter

import pytest

from automations import services
from automations.models import Enrollment, Sequence
from tests.automations.helpers import sequence_with
from tests.e2e.helpers import bulk_audience, campaign_with, status, wait_until
from tests.factories import MailingListFactory
from tests.faults.helpers import Tally, record
from tests.faults.test_worker_crashes import KILLS, pool_children

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

MEMBERS = 1500
STEPS = ("Welcome", "Getting started", "Tips")


def received_steps(smtp_sink) -> Counter:
    """(subject, recipient) of each message to a member, as the sink received it."""
    subject = re.compile(rb"^Subject: (.*?)\r?$", re.MULTILINE)
    return Counter(
        (subject.search(m.data).group(1).decode(), m.rcpt_to)  # type: ignore[union-attr]
        for m in smtp_sink.messages()
        if m.rcpt_to.startswith("member")
    )


def test_twenty_kills_during_a_sequence_lose_no_step_and_repeat_only_in_flight(
    processes, sink_server, smtp_sink, fault_report
):
    members = MailingListFactory(name="Members")
    welcome = sequence_with(
        [
            {"kind": "send", "subject": STEPS[0]},
            {"kind": "wait", "wait_seconds": 3},
            {"kind": "send", "subject": STEPS[1]},
            {"kind": "wait", "wait_seconds": 3},
            {"kind": "send", "subject": STEPS[2]},
        ],
        lists=[members],
        trigger=Sequence.Trigger.LIST,
        trigger_list=members,
    )
    newsletter = campaign_with(4000, "reader", rate_limit=300)
    processes.system(senders=3, concurrency=2)
    rng = random.Random(17)
    started = time.monotonic()
    services.sequence_activate(sequence=welcome)
    processes.manage("campaign", "start", str(newsletter.pk))
    bulk_audience(members, [f"member{n}@example.com" for n in range(MEMBERS)])
    wait_until(lambda: len(smtp_sink.messages()) >= 200, 30, "sending under way")

    killed_senders = 0
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.3, 1.0))
        name = rng.choice(["sender1", "sender2", "sender3", "dispatcher"])
        process = processes.running[name]
        children = pool_children(process)
        if name == "dispatcher":
            # The dispatcher and the sequences' ticks, mid-move: restarted at once.
            processes.kill(name)
            processes.worker(name, "dispatch,transactional,default", 2, wait=False)
        elif rng.random() < 0.5 and children:
            os.kill(rng.choice(children).pid, signal.SIGKILL)
            killed_senders += 1
        else:
            killed_senders += len(children)
            processes.kill(name)
            processes.worker(name, "send", 2, wait=False)

    wait_until(lambda: status(newsletter) == "finished", 180, "the campaign to finish")
    wait_until(lambda: not Enrollment.objects.filter(state="active").exists(), 180, "every step")
    expected = {(s, f"member{n}@example.com") for n in range(MEMBERS) for s in STEPS}
    wait_until(lambda: expected <= set(received_steps(smtp_sink)), 120, "every step to arrive")
    got = received_steps(smtp_sink)
    result = Tally(
        lost={f"{s} to {a}" for s, a in expected - set(got)},
        duplicates=sum(n - 1 for n in got.values()),
        received={f"{s} to {a}": n for (s, a), n in got.items()},
    )
    record(
        fault_report,
        f"{KILLS} kill -9 during a sequence",
        result,
        expected=len(expected),
        allowed=killed_senders,
        started=started,
    )
    assert not result.lost, sorted(result.lost)[:10]
    assert result.duplicates <= killed_senders
    assert set(Enrollment.objects.values_list("state", flat=True)) == {"done"}
