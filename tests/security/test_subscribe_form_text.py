"""What a visitor types into the public subscribe form never reaches another person's inbox,
and text a form cannot hold is refused with a reason instead of failing the page."""

from __future__ import annotations

import pytest

from mailer.transactional import send_optin_confirmation
from subscribers.models import MailingList, Subscriber
from tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory, solved_pow

pytestmark = pytest.mark.django_db

LURE = "Your account is suspended. Restore it at https://evil.example/login"


def test_the_name_typed_in_the_form_is_not_in_the_confirmation_message(
    client, sink_server, smtp_sink
):
    news = MailingListFactory(name="News", is_public=True, opt_in=MailingList.OptIn.DOUBLE)
    client.post(
        f"/subscribe/{news.pk}/", {"email": "victim@example.com", "name": LURE, **solved_pow()}
    )
    subscriber = Subscriber.objects.get(email="victim@example.com")

    send_optin_confirmation(subscriber_id=subscriber.pk, list_ids=[news.pk])

    (received,) = smtp_sink.messages()
    message = received.message()
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for part in (text, html, message["To"]):
        assert "evil.example" not in part and "suspended" not in part
    assert "News" in text and "/confirm/" in text


@pytest.mark.parametrize(
    ("field", "value"), [("name", "Ann\x00Smith"), ("name", "Ann\x1b[31m"), ("email", "a\x00@x.io")]
)
def test_control_characters_are_refused_with_a_reason(client, field, value):
    news = MailingListFactory(is_public=True)
    fields = {"email": "ann@example.com", "name": "Ann", field: value, **solved_pow()}

    response = client.post(f"/subscribe/{news.pk}/", fields)

    assert response.status_code == 400
    assert not Subscriber.objects.exists()


@pytest.mark.parametrize("opt_in", [MailingList.OptIn.DOUBLE, MailingList.OptIn.SINGLE])
def test_the_form_answers_alike_for_new_known_and_blocklisted_addresses(client, opt_in):
    news = MailingListFactory(name="News", is_public=True, opt_in=opt_in)
    known = SubscriberFactory(email="known@example.com")
    SubscriptionFactory(subscriber=known, mailing_list=news, status="confirmed")
    SubscriberFactory(email="blocked@example.com", status=Subscriber.Status.BLOCKLISTED)

    pages = {
        who: client.post(f"/subscribe/{news.pk}/", {"email": f"{who}@example.com", **solved_pow()})
        .content.decode()
        .replace(f"{who}@example.com", "ADDRESS")
        for who in ("new", "known", "blocked")
    }

    assert pages["new"] == pages["known"] == pages["blocked"]
