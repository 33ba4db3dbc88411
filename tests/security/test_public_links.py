"""Links in messages act only when a person acts: a mail provider's link scanner, which
opens (GETs) every link of a message it receives, changes nothing."""

from __future__ import annotations

import pytest

from subscribers import links
from subscribers.models import MailingList, Subscription
from tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def unconfirmed() -> tuple[Subscription, str]:
    news = MailingListFactory(name="Garden news", is_public=True, opt_in=MailingList.OptIn.DOUBLE)
    subscriber = SubscriberFactory()
    subscription = SubscriptionFactory(
        subscriber=subscriber, mailing_list=news, status=Subscription.Status.UNCONFIRMED
    )
    return subscription, f"/confirm/{links.confirm_token(subscriber.pk, [news.pk])}/"


def test_a_link_scanner_opening_a_confirmation_link_confirms_nobody(client):
    subscription, url = unconfirmed()

    response = client.get(url)

    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.UNCONFIRMED
    assert response.status_code == 200
    assert b"<button" in response.content and b"Garden news" in response.content


def test_pressing_the_confirm_button_confirms(client):
    subscription, url = unconfirmed()

    response = client.post(url)

    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.CONFIRMED
    assert b"Subscription confirmed" in response.content
