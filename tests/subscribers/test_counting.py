"""List counts kept by triggers, and changelists that never count a big table in full."""

from __future__ import annotations

import pytest
from django.db import connection

from subscribers import counting
from subscribers.counting import with_counts
from subscribers.models import ListCount, MailingList, Subscriber, Subscription
from subscribers.services import subscriber_erase
from tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

Status = Subscription.Status


def kept(mailing_list: MailingList) -> dict[str, int]:
    rows = ListCount.objects.filter(list_id=mailing_list.pk).values_list("status", "count")
    return {status: count for status, count in rows if count}


def counted(mailing_list: MailingList) -> dict[str, int]:
    rows = Subscription.objects.filter(mailing_list=mailing_list).values_list("status")
    result: dict[str, int] = {}
    for (status,) in rows:
        result[status] = result.get(status, 0) + 1
    return result


def test_every_kind_of_change_keeps_the_counts_equal_to_a_full_count():
    news, offers = MailingListFactory(), MailingListFactory()
    people = SubscriberFactory.create_batch(6)
    Subscription.objects.bulk_create(
        [Subscription(subscriber=p, mailing_list=news, status=Status.CONFIRMED) for p in people]
        + [Subscription(subscriber=p, mailing_list=offers) for p in people[:3]]
    )
    assert kept(news) == counted(news) == {"confirmed": 6}
    assert kept(offers) == counted(offers) == {"unconfirmed": 3}
    Subscription.objects.filter(mailing_list=news, subscriber__in=people[:2]).update(
        status=Status.UNSUBSCRIBED
    )
    one = Subscription.objects.get(mailing_list=offers, subscriber=people[0])
    one.status = Status.CONFIRMED
    one.save()
    subscriber_erase(subscriber=people[5])
    Subscription.objects.filter(mailing_list=offers, subscriber=people[2]).delete()
    assert kept(news) == counted(news) == {"confirmed": 3, "unsubscribed": 2}
    assert kept(offers) == counted(offers) == {"confirmed": 1, "unconfirmed": 1}
    offers.delete()
    assert not ListCount.objects.filter(list_id=offers.pk).exists()


def test_the_lists_page_and_the_api_read_the_kept_counts(admin_client):
    news = MailingListFactory(name="News")
    SubscriptionFactory.create_batch(4, mailing_list=news)
    SubscriptionFactory(mailing_list=news, status=Status.UNSUBSCRIBED)
    annotated = with_counts(MailingList.objects.filter(pk=news.pk)).get()
    assert (annotated.n_confirmed, annotated.n_unsubscribed, annotated.subscriber_count) == (
        4,
        1,
        4,
    )
    page = admin_client.get("/admin/subscribers/mailinglist/").content.decode()
    assert '<td class="field-confirmed">4</td>' in page
    assert '<td class="field-unsubscribed">1</td>' in page


def test_a_big_table_is_estimated_and_a_filtered_page_counts_up_to_the_cap(
    admin_client, monkeypatch
):
    monkeypatch.setattr(counting, "COUNT_CAP", 5)
    news = MailingListFactory()
    SubscriptionFactory.create_batch(12, mailing_list=news)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE subscribers_subscriber")
    whole = admin_client.get("/admin/subscribers/subscriber/").content.decode()
    assert "about 12</span>" in whole
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM subscribers_subscriber")
        assert cursor.fetchone()[0] == 12
    filtered = admin_client.get(f"/admin/subscribers/subscriber/?list={news.pk}").content.decode()
    assert "more than 5</span>" in filtered
    few = admin_client.get("/admin/subscribers/subscriber/?status__exact=blocklisted")
    assert '<span class="result-count">0</span>' in few.content.decode()


def test_an_address_is_searched_exactly(admin_client):
    SubscriberFactory(email="ada@example.com", name="Ada")
    SubscriberFactory(email="ada@example.com.evil", name="Not Ada")
    page = admin_client.get("/admin/subscribers/subscriber/?q=ADA@Example.com").content.decode()
    assert "ada@example.com</a>" in page and "example.com.evil" not in page
    by_name = admin_client.get("/admin/subscribers/subscriber/?q=ada").content.decode()
    assert "example.com.evil" in by_name
    assert Subscriber.objects.count() == 2


def test_the_ledger_is_searched_by_address_through_the_subscriber(admin_client):
    from mailer.models import Delivery
    from tests.factories import CampaignFactory

    campaign = CampaignFactory()
    ada = SubscriberFactory(email="ada@example.com")
    other = SubscriberFactory(email="ada@example.com.evil")
    for subscriber in (ada, other):
        Delivery.objects.create(campaign=campaign, subscriber=subscriber, email=subscriber.email)
    page = admin_client.get("/admin/mailer/delivery/?q=Ada@example.com").content.decode()
    assert ">ada@example.com</a>" in page
    assert "example.com.evil" not in page


@pytest.mark.usefixtures("roles")
def test_the_list_filter_offers_and_applies_only_the_users_lists(client):
    from django.contrib.auth.models import Group, User
    from guardian.shortcuts import assign_perm

    ours, theirs = MailingListFactory(name="Ours"), MailingListFactory(name="Theirs")
    both = SubscriberFactory(email="both@example.com")
    SubscriptionFactory(subscriber=both, mailing_list=ours)
    SubscriptionFactory(subscriber=both, mailing_list=theirs)
    SubscriptionFactory(subscriber=SubscriberFactory(email="ours@example.com"), mailing_list=ours)
    user = User.objects.create_user("limited", "limited@shop.example", is_staff=True)
    user.groups.add(Group.objects.get(name="Subscriber manager"))
    assign_perm("subscribers.view_mailinglist", user, ours)
    client.force_login(user)
    page = client.get(f"/admin/subscribers/subscriber/?list={ours.pk}").content.decode()
    assert "both@example.com" in page and "ours@example.com" in page and "Theirs" not in page
    # Filtering by a list they may not see would tell who of theirs is on it: nobody shows.
    hidden = client.get(f"/admin/subscribers/subscriber/?list={theirs.pk}").content.decode()
    assert "both@example.com" not in hidden
