"""The dispatcher worker and beat killed mid-campaign and restarted, with two beats ticking
at once: no campaign stalls, none is sent twice."""

from __future__ import annotations

import time

import pytest

from tests.e2e.helpers import campaign_with, status, wait_until
from tests.faults.helpers import record, tally

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def test_dispatcher_and_beat_crashes_and_a_second_beat_neither_stall_nor_double(
    processes, sink_server, smtp_sink, fault_report
):
    count = 4000
    first = campaign_with(count, "d1-", rate_limit=300)
    second = campaign_with(count, "d2-", rate_limit=300)
    processes.system(senders=2, concurrency=2)
    # A second beat: a deployment mistake that must be harmless (ticks are serialised).
    processes.beat("beat2")
    started = time.monotonic()
    processes.manage("campaign", "start", str(first.pk), str(second.pk))
    wait_until(lambda: len(smtp_sink.messages()) >= 600, 30, "sending under way")

    processes.kill("dispatcher")
    time.sleep(2)
    processes.kill("beat")
    time.sleep(2)
    sent_while_down = len(smtp_sink.messages())
    processes.worker("dispatcher", "dispatch,transactional,default", 2, wait=False)
    processes.beat()

    wait_until(
        lambda: status(first) == status(second) == "finished", 120, "both campaigns to finish"
    )
    result = tally(smtp_sink, {f"d{c}-{n}@example.com" for c in (1, 2) for n in range(count)})
    record(
        fault_report,
        "dispatcher and beat killed, two beats",
        result,
        expected=2 * count,
        allowed=0,
        started=started,
    )
    lost, duplicates = result.lost, result.duplicates
    assert not lost and duplicates == 0
    # Batches already queued and running kept sending while the dispatcher was down.
    assert sent_while_down > 600
