"""Segments: a campaign's lists narrowed by attribute conditions; counted before the start,
and exactly that audience written to the ledger at the start."""

from __future__ import annotations

import pytest

from campaigns.audience import audience_count
from campaigns.models import Campaign, Condition
from mailer import dispatcher
from mailer.models import Delivery
from subscribers.models import Subscriber
from tests.factories import (
    CampaignFactory,
    MailingListFactory,
    SubscriberFactory,
    SubscriptionFactory,
)

pytestmark = pytest.mark.django_db

PEOPLE = {
    "ann@example.com": {"city": "Lyon", "visits": 12, "plan": "pro", "since": "2024-03-01"},
    "bob@example.com": {"city": "Paris", "visits": "9", "plan": "", "since": "2025-07-15"},
    "cy@example.com": {"city": "lyon-ouest", "visits": 100},
    "dee@example.com": {},
}


@pytest.fixture
def campaign() -> Campaign:
    mailing_list = MailingListFactory()
    for email, attributes in PEOPLE.items():
        SubscriptionFactory(
            mailing_list=mailing_list,
            subscriber=SubscriberFactory(email=email, attributes=attributes),
        )
    # Not on the list, matching every condition: never in the audience.
    SubscriberFactory(email="outsider@example.com", attributes={"city": "Lyon"})
    return CampaignFactory(lists=[mailing_list])


def matching(campaign: Campaign, *conditions: tuple[str, str, str]) -> set[str]:
    Condition.objects.filter(campaign=campaign).delete()
    for attribute, operator, value in conditions:
        Condition.objects.create(
            campaign=campaign, attribute=attribute, operator=operator, value=value
        )
    count = audience_count(campaign.pk, campaign.condition_triples())
    names = {e.split("@")[0] for e in _emails(campaign)}
    assert count == len(names)
    return names


def _emails(campaign: Campaign) -> list[str]:
    from django.db import connection

    from campaigns.audience import audience_where

    where, params = audience_where(campaign.pk, campaign.condition_triples())
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT s.email FROM subscribers_subscriber s WHERE {where}", params)  # noqa: S608
        return [row[0] for row in cursor.fetchall()]


def test_without_conditions_everyone_on_the_lists(campaign):
    assert matching(campaign) == {"ann", "bob", "cy", "dee"}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (("city", "equals", "Lyon"), {"ann"}),
        (("city", "not_equals", "Lyon"), {"bob", "cy", "dee"}),
        (("city", "contains", "LYON"), {"ann", "cy"}),
        # Numbers compare as numbers, whether JSON numbers or text from a CSV.
        (("visits", "gt", "10"), {"ann", "cy"}),
        (("visits", "lt", "10"), {"bob"}),
        # Dates written as 2024-03-01 compare in order as text.
        (("since", "lt", "2025-01-01"), {"ann"}),
        (("plan", "exists", ""), {"ann"}),
        (("plan", "not_exists", ""), {"bob", "cy", "dee"}),
    ],
)
def test_each_operator(campaign, condition, expected):
    assert matching(campaign, condition) == expected


def test_all_conditions_must_hold(campaign):
    assert matching(campaign, ("city", "contains", "lyon"), ("visits", "gt", "50")) == {"cy"}


def test_names_and_values_are_data_never_sql(campaign):
    assert (
        matching(campaign, ("city'; DROP TABLE subscribers_subscriber; --", "exists", "")) == set()
    )
    assert matching(campaign, ("city", "equals", "x' OR '1'='1")) == set()
    assert Subscriber.objects.count() == 5


def test_the_start_writes_exactly_the_counted_audience(campaign):
    matching(campaign, ("city", "contains", "lyon"))
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)

    dispatcher.campaign_begin(campaign.pk)

    campaign.refresh_from_db()
    assert campaign.total == 2
    assert set(Delivery.objects.filter(campaign=campaign).values_list("email", flat=True)) == {
        "ann@example.com",
        "cy@example.com",
    }


def test_the_admin_shows_the_count_and_edits_conditions(admin_client, campaign):
    url = f"/admin/campaigns/campaign/{campaign.pk}/change/"
    assert "4 subscribers match" in admin_client.get(url).content.decode()

    Condition.objects.create(campaign=campaign, attribute="city", operator="equals", value="Lyon")
    assert "1 subscribers match" in admin_client.get(url).content.decode()


def test_a_comparison_needs_a_value():
    from django.core.exceptions import ValidationError

    condition = Condition(campaign=CampaignFactory(), attribute="visits", operator="gt", value="")
    with pytest.raises(ValidationError, match="Give the value to compare with"):
        condition.full_clean()
