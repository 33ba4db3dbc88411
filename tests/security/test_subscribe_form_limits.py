"""The public subscribe form cannot be used to flood an inbox with confirmation messages or to
hammer the site: posts are limited per client address and per target address, in Redis, and
a refused post says when to try again."""

from __future__ import annotations

import pytest

from subscribers import forms_limits
from subscribers.models import MailingList, Subscription
from tests.factories import MailingListFactory, solved_pow

pytestmark = pytest.mark.django_db


def post(client, mailing_list: MailingList, email: str, client_address: str):
    return client.post(
        f"/subscribe/{mailing_list.pk}/",
        {"email": email, **solved_pow()},
        REMOTE_ADDR=client_address,
    )


def test_one_client_posting_again_and_again_is_told_to_wait(client):
    news = MailingListFactory(is_public=True, opt_in=MailingList.OptIn.DOUBLE)
    allowed, _window = forms_limits.PER_CLIENT

    answers = [
        post(client, news, f"reader{n}@example.com", "203.0.113.5") for n in range(allowed + 1)
    ]

    assert [a.status_code for a in answers[:allowed]] == [200] * allowed
    refused = answers[-1]
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert b"try again" in refused.content
    assert Subscription.objects.count() == allowed
    # Another client is not held back by the first.
    assert post(client, news, "someone.else@example.com", "198.51.100.7").status_code == 200


def test_one_address_gets_only_a_few_confirmation_requests_whoever_asks(client):
    news = MailingListFactory(is_public=True, opt_in=MailingList.OptIn.DOUBLE)
    allowed, _window = forms_limits.PER_ADDRESS

    answers = [
        post(client, news, "victim@example.com", f"198.51.100.{n}") for n in range(allowed + 1)
    ]

    assert [a.status_code for a in answers[:allowed]] == [200] * allowed
    assert answers[-1].status_code == 429
    assert int(answers[-1]["Retry-After"]) > 0
    # The same address written otherwise is the same address.
    assert post(client, news, "  VICTIM@example.COM ", "192.0.2.200").status_code == 429
