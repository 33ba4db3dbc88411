"""Redis loses everything mid-campaign (a restart without persistence, or a flush): token
buckets, queues, leases, heartbeats and send journals are gone at once."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from mailer.models import Delivery
from mailer.redis_store import get_redis
from tests.e2e.helpers import campaign_with, largest_one_second_burst, status, wait_until
from tests.faults.helpers import record, tally

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def wipe_redis() -> int:
    """Every key of this installation: the engine's and Celery's (the broker's queues)."""
    client = get_redis()
    prefix = settings.REDIS_KEY_PREFIX
    names = [*client.scan_iter(match=f"{{{prefix}}}*", count=1000)]
    names += [*client.scan_iter(match=f"{prefix}:celery:*", count=1000)]
    if names:
        client.delete(*names)
    return len(names)


def test_a_campaign_completes_without_loss_or_repeats_when_redis_loses_its_data(
    processes, sink_server, smtp_sink, fault_report
):
    count, rate = 3000, 250
    campaign = campaign_with(count, "redis-", rate_limit=rate)
    processes.system(senders=2, concurrency=2)
    started = time.monotonic()
    processes.manage("campaign", "start", str(campaign.pk))
    wait_until(lambda: len(smtp_sink.messages()) >= 500, 30, "sending under way")

    wiped = wipe_redis()
    wiped_at = time.monotonic()

    wait_until(lambda: status(campaign) == "finished", 90, "the campaign to finish")
    result = tally(smtp_sink, {f"redis-{n}@example.com" for n in range(count)})
    record(
        fault_report,
        "Redis data lost mid-campaign",
        result,
        expected=count,
        allowed=0,
        started=started,
    )
    lost, duplicates, received = result.lost, result.duplicates, result.received
    assert wiped > 0
    assert not lost, sorted(lost)[:10]
    # Every batch alive at the wipe records its own rows; none is taken for dead.
    assert duplicates == 0, [r for r, n in received.items() if n > 1][:10]
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.failed, campaign.total) == (count, 0, count)
    assert not Delivery.objects.filter(campaign=campaign).exclude(status="sent").exists()
    # The rate limit holds again after the wipe (its bucket starts afresh).
    after = [m.at for m in smtp_sink.messages() if m.at >= wiped_at + 1]
    assert largest_one_second_burst(after) <= rate * 1.1
