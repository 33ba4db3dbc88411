"""PostgreSQL restarted mid-campaign: every connection is cut, statements fail for a few
seconds, then the server is back. Workers reconnect and nobody is lost or sent twice."""

from __future__ import annotations

import time

import pytest
from django.db import connections

from mailer.models import Delivery
from tests.e2e.helpers import campaign_with, status, wait_until
from tests.faults import servers
from tests.faults.helpers import record, tally
from tests.faults.servers import needs_servers

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True), needs_servers]

DOWN_SECONDS = 4


def test_workers_reconnect_after_postgres_restarts_and_nobody_is_lost(
    processes, sink_server, smtp_sink, fault_report
):
    count = 4000
    campaign = campaign_with(count, "pg-", rate_limit=400)
    processes.system(senders=2, concurrency=2)
    started = time.monotonic()
    processes.manage("campaign", "start", str(campaign.pk))
    wait_until(lambda: len(smtp_sink.messages()) >= 800, 30, "sending under way")

    server = servers.postgres()
    server.stop()  # a fast shutdown: open transactions roll back, every connection is cut
    connections.close_all()
    time.sleep(DOWN_SECONDS)
    at_restart = len(smtp_sink.messages())
    server.start()

    wait_until(lambda: status(campaign) == "finished", 120, "the campaign to finish")
    # Batches that failed while the database was away are settled on the next tick, not
    # after their 60-s lease: the campaign takes its 10 s of sending, the outage and a little.
    assert time.monotonic() - started < 45
    result = tally(smtp_sink, {f"pg-{n}@example.com" for n in range(count)})
    record(
        fault_report,
        f"PostgreSQL down {DOWN_SECONDS} s mid-campaign",
        result,
        expected=count,
        allowed=0,
        started=started,
    )
    assert not result.lost, sorted(result.lost)[:10]
    assert result.duplicates == 0, [r for r, n in result.received.items() if n > 1][:10]
    # Nothing can be claimed without the database: sending stopped while it was down.
    assert at_restart < count
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.failed, campaign.total) == (count, 0, count)
    assert not Delivery.objects.filter(campaign=campaign).exclude(status="sent").exists()
