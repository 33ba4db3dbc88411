"""The subscribe form takes a proof-of-work (ALTCHA's scheme, served by this site): a post
without a solved, fresh, unused answer subscribes nobody and sends nothing."""

from __future__ import annotations

import base64
import json

import pytest

from subscribers import proof_of_work
from subscribers.models import MailingList, Subscriber
from tests.factories import MailingListFactory, solved_pow

pytestmark = pytest.mark.django_db


@pytest.fixture
def news():
    return MailingListFactory(is_public=True, opt_in=MailingList.OptIn.DOUBLE)


def post(client, news, **fields):
    return client.post(f"/subscribe/{news.pk}/", {"email": "ann@example.com", **fields})


def test_a_post_without_the_answer_is_refused_with_what_to_do(client, news):
    answer = post(client, news)
    assert answer.status_code == 400
    assert "Make sure JavaScript is allowed" in answer.content.decode()
    assert not Subscriber.objects.exists()


def test_a_made_up_or_tampered_answer_is_refused(client, news):
    good = json.loads(base64.b64decode(solved_pow()[proof_of_work.FIELD]))
    for forged in (
        {**good, "number": good["number"] + 1},
        {**good, "signature": "0" * 64},
        {**good, "salt": good["salt"].replace("expires=", "expires=9")},
        {"algorithm": "SHA-256"},
    ):
        payload = base64.b64encode(json.dumps(forged).encode()).decode()
        assert post(client, news, altcha=payload).status_code == 400
    assert post(client, news, altcha="not base64!").status_code == 400
    assert not Subscriber.objects.exists()


def test_an_answer_is_accepted_once(client, news):
    answer = solved_pow()
    assert post(client, news, **answer).status_code == 200
    again = client.post(f"/subscribe/{news.pk}/", {"email": "bob@example.com", **answer})
    assert again.status_code == 400 and b"used already" in again.content
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["ann@example.com"]


def test_the_challenge_can_be_fetched_from_sites_that_embed_the_form(client):
    response = client.get("/subscribe/challenge/")
    assert response["Access-Control-Allow-Origin"] == "*"
    found = response.json()
    assert set(found) == {"algorithm", "challenge", "maxNumber", "salt", "signature"}
    assert "expires=" in found["salt"]


def test_the_page_and_the_embed_snippet_carry_the_script(client, admin_client, news):
    page = client.get(f"/subscribe/{news.pk}/").content.decode()
    assert 'name="altcha"' in page and "subscribers/proof-of-work" in page
    snippet = admin_client.get(f"/admin/subscribers/mailinglist/{news.pk}/change/").content
    assert b"data-pow-url=" in snippet and b"proof-of-work" in snippet
