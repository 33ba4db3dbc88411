"""Worker processes killed with SIGKILL at random moments, and restarted, while a campaign
sends: nobody is lost, and every repeat is a message that was in the middle of its SMTP
transaction when its process was killed."""

from __future__ import annotations

import os
import random
import signal
import time

import psutil
import pytest

from tests.e2e.helpers import campaign_with, status, wait_until
from tests.faults.helpers import record, tally

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

KILLS = 20


def pool_children(process) -> list[psutil.Process]:
    try:
        return psutil.Process(process.pid).children()
    except psutil.Error:
        return []


def test_twenty_kills_lose_nobody_and_repeat_only_messages_in_flight(
    processes, sink_server, smtp_sink, fault_report
):
    count, concurrency = 20_000, 2
    campaign = campaign_with(count, "kill-", rate_limit=800)
    processes.system(senders=3, concurrency=concurrency)
    rng = random.Random(20)
    started = time.monotonic()
    processes.manage("campaign", "start", str(campaign.pk))
    wait_until(lambda: len(smtp_sink.messages()) >= 200, 30, "sending under way")

    killed_senders = 0  # processes that were sending (pool children), killed
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.3, 1.2))
        if status(campaign) == "finished":
            break
        name = rng.choice(["sender1", "sender2", "sender3"])
        process = processes.running[name]
        children = pool_children(process)
        if rng.random() < 0.5 and children:
            # One pool process: its worker starts another in its place.
            os.kill(rng.choice(children).pid, signal.SIGKILL)
            killed_senders += 1
        else:
            # The whole worker, then a new one under the same name (a restarted container).
            killed_senders += len(children)
            processes.kill(name)
            processes.worker(name, "send", concurrency, wait=False)

    wait_until(lambda: status(campaign) == "finished", 180, "the campaign to finish")
    result = tally(smtp_sink, {f"kill-{n}@example.com" for n in range(count)})
    record(
        fault_report,
        f"{KILLS} kill -9 of workers",
        result,
        expected=count,
        allowed=killed_senders,
        started=started,
    )
    lost, duplicates = result.lost, result.duplicates
    assert not lost, sorted(lost)[:10]
    # A process sends one message at a time: each one killed can leave one transaction
    # that the server completed and the ledger did not record.
    assert duplicates <= killed_senders
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.failed, campaign.total) == (count, 0, count)
