"""A campaign started from the command line reaches every eligible recipient exactly once,
through real worker processes, real PostgreSQL, real Redis and a real SMTP server."""

from __future__ import annotations

import json
import time

import pytest

from campaigns.models import Campaign
from mailer.models import Delivery
from subscribers.models import Subscriber, Subscription
from tests.factories import CampaignFactory, MailingListFactory, SubscriptionFactory, audience

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_a_campaign_to_two_overlapping_lists_reaches_each_eligible_recipient_once(
    processes, sink_server, smtp_sink
):
    newsletter, product = MailingListFactory(), MailingListFactory()
    only_newsletter = audience(newsletter, 200)
    both = audience(newsletter, 100)
    for subscriber in both:
        SubscriptionFactory(subscriber=subscriber, mailing_list=product)
    only_product = audience(product, 200)
    # One unsubscribed from the only list they were on, one blocklisted.
    unsubscribed = only_newsletter[0]
    Subscription.objects.filter(subscriber=unsubscribed).update(status="unsubscribed")
    blocked = only_product[0]
    Subscriber.objects.filter(pk=blocked.pk).update(status="blocklisted")
    assert Subscriber.objects.count() == 500
    eligible = {s.email for s in [*only_newsletter, *both, *only_product]}
    eligible -= {unsubscribed.email, blocked.email}

    campaign = CampaignFactory(lists=[newsletter, product])
    processes.worker("sender1", "send")
    processes.worker("sender2", "send")
    processes.worker("dispatcher", "dispatch")
    processes.beat()

    out = processes.manage("campaign", "start", str(campaign.pk))
    assert f"Campaign {campaign.pk}" in out and "scheduled" in out

    wait_until(
        lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.FINISHED,
        timeout=90,
        what="the campaign to finish",
    )
    received = smtp_sink.recipients()
    assert set(received) == eligible
    assert max(received.values()) == 1, "somebody got the campaign twice"
    campaign.refresh_from_db()
    assert (campaign.total, campaign.sent, campaign.failed) == (498, 498, 0)
    assert Delivery.objects.filter(campaign=campaign, status="sent").count() == 498

    status = json.loads(processes.manage("campaign", "status", str(campaign.pk), "--json"))
    assert status["status"] == "finished"
    assert (status["total"], status["sent"], status["pending"]) == (498, 498, 0)
    # Both sender processes took part: batches are spread over the workers.
    assert "batch done" in processes.log("sender1") and "batch done" in processes.log("sender2")
