"""Engagement segments: conditions on what subscribers did (received, opened, clicked, a
given link, in the last N days, bounced, unsubscribed, subscribed before or after a date, a
random share), negated, together with attribute conditions; the resend to non-openers and
the clone built on them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from campaigns.audience import audience_count, audience_where
from campaigns.models import Campaign, Click, Condition, Open, TrackedLink, Unsubscribe
from campaigns.services import (
    CampaignError,
    campaign_clone,
    campaign_resend_to_non_openers,
)
from mailer.models import Bounce, Delivery
from subscribers.models import Subscription
from tests.factories import CampaignFactory, MailingListFactory, audience

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """ann opened X, bob clicked its shop link, cy got it and did nothing, dee soft-bounced,
    eve never got it (joined later); all on one list."""
    news = MailingListFactory()
    people = dict(zip(["ann", "bob", "cy", "dee", "eve"], audience(news, 5), strict=True))
    first = CampaignFactory(lists=[news], name="X")
    Campaign.objects.filter(pk=first.pk).update(
        status="finished", started_at=timezone.now() - timedelta(days=2)
    )
    first.refresh_from_db()
    for name in ["ann", "bob", "cy", "dee"]:
        Delivery.objects.create(
            campaign=first,
            subscriber=people[name],
            email=people[name].email,
            status="sent",
            sent_at=timezone.now(),
        )
    now = timezone.now()
    Open.objects.create(campaign=first, subscriber_id=people["ann"].pk, at=now)
    Open.objects.create(campaign=first, subscriber_id=people["bob"].pk, at=now - timedelta(days=40))
    shop = TrackedLink.objects.create(campaign=first, url="https://shop.example/")
    other = TrackedLink.objects.create(campaign=first, url="https://blog.example/")
    Click.objects.create(campaign=first, link=shop, subscriber_id=people["bob"].pk, at=now)
    Click.objects.create(
        campaign=first, link=other, subscriber_id=people["cy"].pk, at=now - timedelta(days=40)
    )
    Bounce.objects.create(
        email=people["dee"].email,
        subscriber=people["dee"],
        campaign=first,
        kind="soft",
        source="api",
        at=now,
    )
    Subscription.objects.filter(subscriber=people["eve"]).update(created_at=now + timedelta(days=1))
    follow_up = CampaignFactory(lists=[news], name="Y")
    return {"first": first, "next": follow_up, "people": people, "news": news}


def matching(world, *conditions: dict) -> set[str]:
    campaign = world["next"]
    Condition.objects.filter(campaign=campaign).delete()
    for fields in conditions:
        Condition.objects.create(campaign=campaign, **fields).full_clean()
    count = audience_count(campaign.pk, campaign.condition_triples(), campaign.behaviours())
    names = names_in(campaign, world["people"])
    assert count == len(names)
    return names


def names_in(campaign: Campaign, people: dict) -> set[str]:
    """Who of `people` the campaign's audience holds (the SQL the snapshot runs)."""
    where, params = audience_where(campaign.pk, campaign.condition_triples(), campaign.behaviours())
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT s.id FROM subscribers_subscriber s WHERE {where}", params)  # noqa: S608
        ids = {row[0] for row in cursor.fetchall()}
    return {name for name, person in people.items() if person.pk in ids}


def test_received_opened_clicked_and_their_negations(world):
    x = world["first"]
    assert matching(world, {"kind": "received", "other": x}) == {"ann", "bob", "cy", "dee"}
    assert matching(world, {"kind": "received", "other": x, "negate": True}) == {"eve"}
    assert matching(world, {"kind": "opened", "other": x}) == {"ann", "bob"}
    not_opened = {"kind": "opened", "other": x, "negate": True}
    assert matching(world, {"kind": "received", "other": x}, not_opened) == {"cy", "dee"}
    assert matching(world, {"kind": "clicked", "other": x}) == {"bob", "cy"}
    assert matching(world, {"kind": "clicked", "link": "https://shop.example/"}) == {"bob"}


def test_anything_in_the_last_n_days(world):
    assert matching(world, {"kind": "opened", "days": 30}) == {"ann"}
    assert matching(world, {"kind": "clicked", "days": 30}) == {"bob"}
    assert matching(world, {"kind": "opened", "days": 30, "negate": True}) == {
        "bob",
        "cy",
        "dee",
        "eve",
    }


def test_bounces_unsubscribes_and_subscription_dates(world):
    x, people = world["first"], world["people"]
    assert matching(world, {"kind": "soft_bounced"}) == {"dee"}
    assert matching(world, {"kind": "bounced", "other": x, "negate": True}) == {
        "ann",
        "bob",
        "cy",
        "eve",
    }
    Unsubscribe.objects.create(campaign=x, subscriber_id=people["cy"].pk)
    assert matching(world, {"kind": "unsubscribed", "other": x}) == {"cy"}
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert matching(world, {"kind": "subscribed_after", "value": tomorrow}) == {"eve"}
    assert "eve" not in matching(world, {"kind": "subscribed_before", "value": tomorrow})


def test_behaviour_and_attributes_together(world):
    people = world["people"]
    people["ann"].attributes = {"city": "Paris"}
    people["ann"].save()
    both = matching(
        world,
        {"kind": "attribute", "attribute": "city", "value": "Lyon"},
        {"kind": "opened", "other": world["first"]},
    )
    assert both == {"bob"}


def test_random_shares_are_disjoint_and_cover_everyone(world):
    seen: list[set[str]] = []
    for low, high in [(0, 300), (300, 600), (600, 1000)]:
        seen.append(matching(world, {"kind": "sample", "value": f"t1:{low}:{high}"}))
    assert set().union(*seen) == {"ann", "bob", "cy", "dee", "eve"}
    assert sum(len(s) for s in seen) == 5


def test_bad_conditions_are_refused_with_what_to_do(world):
    with pytest.raises(ValidationError, match="Choose the campaign"):
        Condition(campaign=world["next"], kind="received").full_clean()
    with pytest.raises(ValidationError, match="2026-03-01"):
        Condition(campaign=world["next"], kind="subscribed_after", value="yesterday").full_clean()


def test_resend_to_non_openers_makes_a_draft_for_exactly_them(world):
    people = world["people"]
    Unsubscribe.objects.create(campaign=world["first"], subscriber_id=people["bob"].pk)
    follow_up = campaign_resend_to_non_openers(
        campaign=world["first"], subject="In case you missed it"
    )
    assert (follow_up.status, follow_up.subject) == ("draft", "In case you missed it")
    # ann and bob opened; dee bounced since; eve never got it: cy alone.
    assert names_in(follow_up, people) == {"cy"}
    assert list(follow_up.lists.all()) == [world["news"]]


def test_resend_needs_a_sent_campaign_with_opens_tracked_and_a_good_subject(world):
    with pytest.raises(CampaignError, match="has not sent anything yet"):
        campaign_resend_to_non_openers(campaign=world["next"], subject="Again")
    with pytest.raises(CampaignError, match=r"cannot start"):
        campaign_resend_to_non_openers(campaign=world["first"], subject="{{ subscribr.name }}")
    assert Campaign.objects.count() == 2  # nothing half made
    Campaign.objects.filter(pk=world["first"].pk).update(track_opens=False)
    world["first"].refresh_from_db()
    with pytest.raises(CampaignError, match="did not track opens"):
        campaign_resend_to_non_openers(campaign=world["first"], subject="Again")


def test_clone_copies_content_lists_conditions_and_tags(world):
    x = world["first"]
    x.tags = ["spring"]
    x.save()
    Condition.objects.create(campaign=x, attribute="city", value="Lyon")
    copy = campaign_clone(campaign=x)
    assert (copy.name, copy.status, copy.subject, copy.body, copy.tags) == (
        "Copy of X",
        "draft",
        x.subject,
        x.body,
        ["spring"],
    )
    assert copy.condition_triples() == [("city", "equals", "Lyon")]
    assert list(copy.lists.all()) == [world["news"]]
    assert copy.total == copy.sent == 0


def test_malformed_shares_and_moments_are_refused_not_crashed_on(world):
    for kind, value, say in [
        ("sample", "ab1:900:100", "seed:low:high"),
        ("sample", "nonsense", "seed:low:high"),
        ("bounced", "last tuesday", "2026-03-01"),
    ]:
        with pytest.raises(ValidationError, match=say):
            Condition(campaign=world["next"], kind=kind, value=value).full_clean()
    Condition(campaign=world["next"], kind="bounced", value="2026-03-01T09:00").full_clean()
