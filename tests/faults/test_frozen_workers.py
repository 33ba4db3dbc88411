"""A sender process frozen (SIGSTOP: a paused VM, heavy swapping) while it holds rows, for
longer than its heartbeat lasts, is taken for dead and its rows go to other batches. When it
wakes (SIGCONT) it must send nothing more: it fences itself before each MAIL FROM and each
final dot, and its journal says which message it had ended, so that one is not sent again."""

from __future__ import annotations

import os
import signal
import time

import pytest

from mailer import heartbeats, leases
from mailer.models import Delivery
from tests.e2e.helpers import campaign_with, status, wait_until
from tests.faults.helpers import record, tally

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

FREEZES = 3


def a_process_holding_rows(campaign) -> int | None:
    """The pid of a pool process whose batch holds rows of the campaign now."""
    holders = set(
        Delivery.objects.filter(campaign=campaign, status=Delivery.Status.SENDING)
        .values_list("claimed_by", flat=True)
        .distinct()
    )
    for batch_id, owner in leases.live_owners().items():
        if owner and batch_id in {str(h) for h in holders}:
            return int(owner.rpartition(":")[2])
    return None


def test_a_frozen_sender_sends_nothing_more_when_it_wakes(
    processes, sink_server, smtp_sink, fault_report
):
    count = 3000
    smtp_sink.handler.delay = 0.03  # a 30-ms server: most of a process's time is in waits
    campaign = campaign_with(count, "frozen-")
    processes.system(senders=2, concurrency=2)
    started = time.monotonic()
    processes.manage("campaign", "start", str(campaign.pk))
    wait_until(lambda: len(smtp_sink.messages()) >= 100, 30, "sending under way")

    frozen = 0
    for _ in range(FREEZES):
        wait_until(lambda: a_process_holding_rows(campaign) is not None, 20, "a holder")
        pid = a_process_holding_rows(campaign)
        if pid is None or status(campaign) == "finished":
            break
        os.kill(pid, signal.SIGSTOP)
        frozen += 1
        # Past its heartbeat: the dispatcher takes it for dead and hands its rows on.
        time.sleep(heartbeats.HEARTBEAT_TTL + 4)
        os.kill(pid, signal.SIGCONT)
        time.sleep(2)

    wait_until(lambda: status(campaign) == "finished", 240, "the campaign to finish")
    result = tally(smtp_sink, {f"frozen-{n}@example.com" for n in range(count)})
    record(
        fault_report,
        f"{frozen} senders frozen past their heartbeat (SIGSTOP), then woken",
        result,
        expected=count,
        allowed=0,
        started=started,
    )
    assert frozen == FREEZES
    assert not result.lost, sorted(result.lost)[:10]
    assert result.duplicates == 0
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.failed) == (count, 0)
