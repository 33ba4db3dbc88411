"""A sender worker stopped with SIGTERM (`docker stop`, a scale-down, `./dev down`) stops
taking chunks and gives its rows back at once: within 2 s of the signal no row is held by
it, no row waits out a lease or the dead-batch recovery, and nobody is lost or sent twice
when another worker finishes the campaign."""

from __future__ import annotations

import os
import signal
import time

import pytest

from mailer import events
from mailer.models import Delivery
from tests.e2e.helpers import campaign_with, status, wait_until
from tests.faults.helpers import record, tally

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

# The target: the last row of a stopped sender is pending again this soon.
GIVE_BACK_SECONDS = 2.0


def held(campaign) -> int:
    return Delivery.objects.filter(campaign=campaign, status=Delivery.Status.SENDING).count()


@pytest.mark.parametrize(
    "how",
    [
        pytest.param("main", id="SIGTERM to the main process (docker stop)"),
        pytest.param("group", id="SIGTERM to the process group (./dev down)"),
    ],
)
def test_a_stopped_sender_gives_its_rows_back_at_once(
    how, processes, sink_server, smtp_sink, fault_report
):
    # A 20-ms server: a chunk of 50 takes about a second, so the sender always holds rows,
    # and two slots send about 100 a second: more than its batches' 20-s turns could finish.
    count = 4000
    smtp_sink.handler.delay = 0.02
    campaign = campaign_with(count, f"stop-{how}-")
    processes.worker("sender1", "send", concurrency=2)
    processes.worker("dispatcher", "dispatch,transactional,default", 2)
    processes.beat()
    started = time.monotonic()
    processes.manage("campaign", "start", str(campaign.pk))
    wait_until(lambda: len(smtp_sink.messages()) >= 100, 30, "sending under way")
    wait_until(lambda: held(campaign) > 0, 10, "the sender to hold rows")

    worker = processes.running["sender1"]
    signalled = time.monotonic()
    if how == "main":
        os.kill(worker.pid, signal.SIGTERM)
    else:
        os.killpg(worker.pid, signal.SIGTERM)
    # Until the worker has exited, note the last moment it held any row (it is the only
    # sender: every held row is its own).
    last_held = signalled
    while worker.poll() is None and time.monotonic() - signalled < 30:
        if held(campaign):
            last_held = time.monotonic()
        time.sleep(0.01)
    worker.wait(timeout=30)
    stopped_after = time.monotonic() - signalled
    given_back_after = last_held - signalled
    assert held(campaign) == 0, "the stopped sender left rows claimed"
    assert given_back_after <= GIVE_BACK_SECONDS, given_back_after
    # What a stopping worker holds goes back by itself: the dispatcher never had to settle
    # rows of a batch it took for dead.
    recovered = [e for e in events.recent(200) if e["event"] == "stale claims recovered"]
    assert not recovered, recovered
    pending = Delivery.objects.filter(campaign=campaign, status=Delivery.Status.PENDING).count()
    assert pending > 0, "the campaign should still have had rows to send"

    smtp_sink.handler.delay = 0
    processes.worker("sender2", "send", concurrency=2)
    wait_until(lambda: status(campaign) == "finished", 120, "the campaign to finish")
    result = tally(smtp_sink, {f"stop-{how}-{n}@example.com" for n in range(count)})
    record(
        fault_report,
        f"sender stopped by SIGTERM ({how}): rows back in {given_back_after:.2f} s, "
        f"exited in {stopped_after:.2f} s",
        result,
        expected=count,
        allowed=0,
        started=started,
    )
    assert not result.lost, sorted(result.lost)[:10]
    assert result.duplicates == 0
    # Its batches ended at once instead of finishing their 20-s turns.
    assert stopped_after < 10, stopped_after
