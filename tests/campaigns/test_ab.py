"""A/B tests against the real database: disjoint even samples, the rest after the winner,
the figures (Wilson intervals, the significance of the lead), and what is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.ab import ABTest, Rate, Variant, p_value, verdict
from campaigns.ab_services import ab_choose, ab_decide_due, ab_rates, ab_start
from campaigns.models import Campaign, Open
from campaigns.services import CampaignError, campaign_start
from mailer import dispatcher
from mailer.models import Delivery
from tests.e2e.helpers import bulk_audience
from tests.factories import CampaignFactory, MailingListFactory

pytestmark = pytest.mark.django_db


def a_test_of(
    count: int = 1000, percent: int = 20, labels: str = "AB", prefix: str = "r", **fields
) -> ABTest:
    readers = MailingListFactory()
    bulk_audience(readers, [f"{prefix}{n}@example.com" for n in range(count)])
    campaign = CampaignFactory(lists=[readers], subject="Plain subject")
    test = ABTest.objects.create(campaign=campaign, test_percent=percent, **fields)
    for label in labels:
        Variant.objects.create(test=test, label=label, subject=f"Subject {label}")
    return test


def begin_all() -> None:
    for campaign in Campaign.objects.filter(status="scheduled"):
        dispatcher.campaign_begin(campaign.pk)


def test_variants_go_to_disjoint_even_shares_and_the_winner_to_the_rest(queued):
    test = ab_start(test=a_test_of())
    begin_all()
    variants = {v.label: v.campaign for v in test.variants.all()}
    sizes = {label: c.deliveries.count() for label, c in variants.items()}
    assert all(70 <= n <= 130 for n in sizes.values()), sizes  # 10% each of 1000
    groups = [set(c.deliveries.values_list("subscriber_id", flat=True)) for c in variants.values()]
    assert not groups[0] & groups[1]
    assert {c.kind for c in variants.values()} == {"variant"}
    assert {c.subject for c in variants.values()} == {"Subject A", "Subject B"}

    # B's readers open more; once the time is up the tick sends B to the rest.
    for subscriber_id in list(groups[1])[:40]:
        Open.objects.create(campaign=variants["B"], subscriber_id=subscriber_id, at=timezone.now())
    Campaign.objects.filter(pk__in=[c.pk for c in variants.values()]).update(sent=100)
    assert ab_decide_due() == 0  # not yet
    ABTest.objects.filter(pk=test.pk).update(started_at=timezone.now() - timedelta(hours=5))
    assert ab_decide_due() == 1
    test.refresh_from_db()
    assert (test.status, test.winner) == ("decided", variants["B"])
    rest = test.campaign
    rest.refresh_from_db()
    assert (rest.status, rest.subject) == ("scheduled", "Subject B")
    dispatcher.campaign_begin(rest.pk)
    rest.refresh_from_db()
    assert rest.total == 1000 - sum(sizes.values())
    everyone = Delivery.objects.values_list("subscriber_id", flat=True)
    assert len(everyone) == len(set(everyone)) == 1000  # each got exactly one


def test_the_campaign_waits_for_its_test_and_tests_need_two_to_five_variants(queued):
    lonely = a_test_of(count=10, labels="A")
    with pytest.raises(CampaignError, match="2 to 5 variants"):
        ab_start(test=lonely)
    with pytest.raises(CampaignError, match="start its test"):
        campaign_start(campaign=lonely.campaign)
    test = ab_start(test=a_test_of(count=10, prefix="t"))
    with pytest.raises(CampaignError, match="has started already"):
        ab_start(test=test)
    with pytest.raises(CampaignError, match="No variant 'Z'"):
        ab_choose(test=test, label="Z")


def test_rates_intervals_and_significance():
    a, b = Rate("A", 1, 1000, 200), Rate("B", 2, 1000, 260)
    low, high = a.interval()
    assert low < 0.2 < high and round(high - low, 3) == 0.05
    assert p_value(a, b) < 0.01
    assert "B leads" in verdict([a, b]) and "is significant" in verdict([a, b])
    close = [Rate("A", 1, 100, 20), Rate("B", 2, 100, 23)]
    assert "not significant" in verdict(close)
    assert verdict([Rate("A", 1, 0, 0), Rate("B", 2, 0, 0)]) == "Nothing sent yet."


def test_the_click_metric_counts_distinct_clickers(queued):
    test = ab_start(test=a_test_of(count=50, metric="clicks"))
    assert [r.hits for r in ab_rates(test)] == [0, 0]
