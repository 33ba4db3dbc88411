"""Subscribe, confirm, unsubscribe (RFC 8058 one-click), preferences, export and erasure,
through the public pages and their signed links."""

from __future__ import annotations

import json

import pytest

from campaigns import tracking
from campaigns.models import Campaign
from mailer.models import Delivery
from subscribers import links
from subscribers.models import MailingList, Subscriber, Subscription
from tests.factories import (
    CampaignFactory,
    MailingListFactory,
    SubscriberFactory,
    SubscriptionFactory,
    solved_pow,
)

pytestmark = pytest.mark.django_db


def token_for(
    subscriber: Subscriber,
    campaign: Campaign | None = None,
    purpose: links.Purpose = links.Purpose.UNSUBSCRIBE,
) -> str:
    return links.token(purpose, subscriber.pk, campaign.pk if campaign else None)


def test_a_single_opt_in_list_subscribes_at_once(client):
    news = MailingListFactory(is_public=True, opt_in=MailingList.OptIn.SINGLE)
    response = client.post(
        f"/subscribe/{news.pk}/", {"email": "New@Example.com", "name": "N", **solved_pow()}
    )
    assert response.status_code == 200 and b"You are subscribed" in response.content
    subscription = Subscription.objects.get(subscriber__email="new@example.com")
    assert subscription.status == Subscription.Status.CONFIRMED


def test_a_private_list_has_no_public_form(client):
    private = MailingListFactory(is_public=False)
    assert client.get(f"/subscribe/{private.pk}/").status_code == 404


def test_a_bad_address_is_refused_on_the_form_with_the_reason(client):
    news = MailingListFactory(is_public=True)
    response = client.post(f"/subscribe/{news.pk}/", {"email": "not-an-address", **solved_pow()})
    assert response.status_code == 400
    assert b"is not a valid email address" in response.content
    assert not Subscriber.objects.exists()


def test_a_blocklisted_address_is_not_resubscribed_and_not_told_so(client):
    news = MailingListFactory(is_public=True)
    SubscriberFactory(email="spam@example.com", status=Subscriber.Status.BLOCKLISTED)
    response = client.post(f"/subscribe/{news.pk}/", {"email": "spam@example.com", **solved_pow()})
    assert response.status_code == 200
    assert not Subscription.objects.exists()


def test_a_confirmation_link_confirms_only_what_it_names(client):
    news = MailingListFactory(is_public=True, opt_in=MailingList.OptIn.DOUBLE)
    subscriber = SubscriberFactory()
    SubscriptionFactory(subscriber=subscriber, mailing_list=news, status="unconfirmed")

    response = client.post(f"/confirm/{links.confirm_token(subscriber.pk, [news.pk])}/")
    assert b"Subscription confirmed" in response.content
    assert Subscription.objects.get(subscriber=subscriber).status == "confirmed"

    other = news.pk + 1000
    forged = links.confirm_token(subscriber.pk, [news.pk]).replace(f"{news.pk}:", f"{other}:")
    assert client.get(f"/confirm/{forged}/").status_code == 404


def test_opening_the_unsubscribe_link_only_asks(client):
    subscription = SubscriptionFactory()
    response = client.get(f"/u/{token_for(subscription.subscriber)}/")
    assert response.status_code == 200 and b"<button" in response.content
    subscription.refresh_from_db()
    assert subscription.status == "confirmed"


def test_one_click_unsubscribe_leaves_the_campaigns_lists_and_drops_its_unsent_messages(client):
    weekly, offers = MailingListFactory(name="Weekly"), MailingListFactory(name="Offers")
    subscriber = SubscriberFactory()
    SubscriptionFactory(subscriber=subscriber, mailing_list=weekly)
    SubscriptionFactory(subscriber=subscriber, mailing_list=offers)
    campaign = CampaignFactory(lists=[weekly], status=Campaign.Status.RUNNING, total=1)
    Delivery.objects.create(campaign=campaign, subscriber=subscriber, email=subscriber.email)

    # RFC 8058: a POST with this body, no cookies, no CSRF token.
    response = client.post(
        f"/u/{token_for(subscriber, campaign)}/",
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    statuses = dict(Subscription.objects.values_list("mailing_list__name", "status"))
    assert statuses == {"Weekly": "unsubscribed", "Offers": "confirmed"}
    delivery = Delivery.objects.get(campaign=campaign)
    assert (delivery.status, delivery.reply) == ("failed", "not sent: unsubscribed")
    campaign.refresh_from_db()
    assert campaign.failed == 1
    # The campaign counts one unsubscribe, however often the button is pressed.
    client.post(
        f"/u/{token_for(subscriber, campaign)}/",
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert tracking.campaign_stats(campaign.pk)["unsubscribes"] == 1


def test_a_campaign_to_a_list_they_stay_on_still_reaches_them(client):
    weekly, offers = MailingListFactory(), MailingListFactory()
    subscriber = SubscriberFactory()
    SubscriptionFactory(subscriber=subscriber, mailing_list=weekly)
    SubscriptionFactory(subscriber=subscriber, mailing_list=offers)
    both = CampaignFactory(lists=[weekly, offers], status=Campaign.Status.RUNNING)
    Delivery.objects.create(campaign=both, subscriber=subscriber, email=subscriber.email)
    only_weekly = CampaignFactory(lists=[weekly])

    client.post(f"/u/{token_for(subscriber, only_weekly)}/")

    assert Delivery.objects.get(campaign=both).status == "pending"


def test_a_tampered_link_is_refused(client):
    subscription = SubscriptionFactory()
    value = token_for(subscription.subscriber)
    other = SubscriberFactory()
    forged = f"{other.pk}.0:{value.split(':', 1)[1]}"
    for url in (f"/u/{forged}/", f"/p/{forged}/", f"/p/{value[:-3]}/"):
        response = client.get(url)
        assert response.status_code == 404 and b"This link does not work" in response.content
    assert client.post(f"/u/{forged}/").status_code == 404
    subscription.refresh_from_db()
    assert subscription.status == "confirmed"


def test_links_in_test_messages_change_nothing(client):
    subscription = SubscriptionFactory()
    response = client.post(
        f"/u/{links.token(links.Purpose.UNSUBSCRIBE, None, 1)}/",
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    subscription.refresh_from_db()
    assert subscription.status == "confirmed"


def test_preferences_choose_lists(client):
    weekly = MailingListFactory(name="Weekly", is_public=True)
    offers = MailingListFactory(name="Offers", is_public=True, opt_in="double")
    secret = MailingListFactory(name="Staff only", is_public=False)
    subscriber = SubscriberFactory()
    SubscriptionFactory(subscriber=subscriber, mailing_list=weekly)
    url = f"/p/{token_for(subscriber, purpose=links.Purpose.PREFERENCES)}/"

    page = client.get(url).content.decode()
    assert "Weekly" in page and "Offers" in page and "Staff only" not in page

    client.post(url, {"lists": [str(offers.pk), str(secret.pk)]})

    statuses = dict(
        Subscription.objects.filter(subscriber=subscriber).values_list(
            "mailing_list__name", "status"
        )
    )
    assert statuses == {"Weekly": "unsubscribed", "Offers": "confirmed"}


def test_a_subscriber_gets_their_data_by_mail_and_can_erase_it(
    client, sink_server, smtp_sink, queued
):
    subscription = SubscriptionFactory(subscriber__attributes={"city": "Oslo"})
    subscriber = subscription.subscriber
    campaign = CampaignFactory(lists=[subscription.mailing_list])
    sent = Delivery.objects.create(
        campaign=campaign, subscriber=subscriber, email=subscriber.email, status="sent"
    )
    url = f"/p/{token_for(subscriber, purpose=links.Purpose.PREFERENCES)}/"

    asked = client.post(url + "export/")
    assert asked.status_code == 200 and b"on its way to" in asked.content
    assert queued.run() == ["mailer.tasks.send_subscriber_notice"]
    [received] = smtp_sink.messages()
    assert received.rcpt_to == subscriber.email
    [attachment] = received.message().iter_attachments()
    exported = json.loads(attachment.get_content())
    assert exported["email"] == subscriber.email
    assert exported["attributes"] == {"city": "Oslo"}
    assert exported["subscriptions"][0]["list"] == subscription.mailing_list.name
    assert exported["messages"][0]["campaign"] == campaign.name

    assert b"Nothing was erased" in client.post(url + "erase/").content
    response = client.post(url + "erase/", {"confirm": "yes"})

    assert b"Your data is erased" in response.content
    assert not Subscriber.objects.filter(pk=subscriber.pk).exists()
    sent.refresh_from_db()
    assert (sent.email, sent.subscriber_id, sent.status) == ("erased@invalid", None, "sent")
    assert client.get(url).status_code == 404


def test_the_view_in_browser_link_shows_the_subscribers_own_message(client):
    subscriber = SubscriberFactory(name="Ada", attributes={"city": "Turin"})
    campaign = CampaignFactory()
    response = client.get(f"/v/{token_for(subscriber, campaign, links.Purpose.VIEW)}/")
    assert response.status_code == 200
    assert b"Hi Ada from Turin" in response.content


def test_the_admin_erases_and_exports_subscribers(admin_client):
    subscriber = SubscriberFactory()
    changelist = "/admin/subscribers/subscriber/"
    exported = admin_client.post(
        changelist, {"action": "export_data", "_selected_action": [subscriber.pk]}
    )
    assert json.loads(exported.content)[0]["email"] == subscriber.email

    admin_client.post(changelist, {"action": "erase", "_selected_action": [subscriber.pk]})
    assert not Subscriber.objects.exists()


def test_a_public_list_shows_its_embeddable_form(admin_client, settings):
    settings.SITE_URL = "https://news.example"
    news = MailingListFactory(is_public=True)
    page = admin_client.get(f"/admin/subscribers/mailinglist/{news.pk}/change/").content.decode()
    assert f"https://news.example/subscribe/{news.pk}/" in page
    assert "&lt;form method=&quot;post&quot;" in page
