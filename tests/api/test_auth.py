"""Who may call the API: tokens as listmonk sends them, kept hashed, revocable, limited per
user; roles and per-list access as in the admin; staff sessions may only read."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from api.models import ApiToken
from api.tokens import revoke
from tests.api.conftest import ApiClient, basic_header, token_header
from tests.factories import MailingListFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_health_answers_without_credentials(client):
    response = client.get("/api/health")
    assert (response.status_code, response.json()) == (200, {"data": True})


def test_a_request_without_a_valid_token_is_refused_with_what_to_send(client, api_client):
    for header in ["", "token app:wrong", "token app", "Bearer x", "Basic !!!"]:
        response = ApiClient(Client(), header).get("/subscribers")
        assert response.status_code == 403, header
        assert "Authorization: token USER:TOKEN" in response.json()["message"]


def test_basic_auth_with_the_same_pair_works(roles, capsys):
    call_command("create_api_user", "site", "--role", "Admin")
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    response = ApiClient(Client(), basic_header("site", secret)).get("/lists")
    assert response.status_code == 200
    assert ApiClient(Client(), token_header("site", secret)).get("/lists").status_code == 200


def test_tokens_are_kept_only_as_a_hash_and_stop_working_when_revoked(roles, capsys):
    call_command("create_api_user", "site", "--role", "Admin")
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    token = ApiToken.objects.get(user__username="site")
    assert secret not in (token.digest, token.hint) and len(token.digest) == 64
    client = ApiClient(Client(), token_header("site", secret))
    assert client.get("/lists").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    revoke(token=token)
    assert client.get("/lists").status_code == 403


def test_create_api_user_refuses_an_unknown_role_or_list(roles):
    with pytest.raises(CommandError, match=r"There is no role 'Boss'\. Roles: Admin"):
        call_command("create_api_user", "x", "--role", "Boss")
    with pytest.raises(CommandError, match="No list has the id 999"):
        call_command("create_api_user", "x", "--role", "Admin", "--list", "999")


def test_requests_beyond_the_rate_limit_get_429_with_retry_after(api_client, settings):
    settings.API_RATE_LIMIT = 3
    assert [api_client.get("/lists").status_code for _ in range(3)] == [200, 200, 200]
    refused = api_client.get("/lists")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "try again in" in refused.json()["message"]


def test_a_token_for_one_list_cannot_read_another_lists_subscribers(make_api_client):
    mine, theirs = MailingListFactory(name="Mine"), MailingListFactory(name="Theirs")
    on_mine = SubscriptionFactory(mailing_list=mine).subscriber
    on_theirs = SubscriptionFactory(mailing_list=theirs).subscriber
    client = make_api_client("shop", role="Subscriber manager", lists=[mine])

    listed = client.get("/subscribers", per_page="all").json()["data"]["results"]
    assert [s["email"] for s in listed] == [on_mine.email]
    assert client.get(f"/subscribers/{on_theirs.pk}").status_code == 404
    assert client.get(f"/lists/{theirs.pk}").status_code == 404
    assert [m["name"] for m in client.get("/lists").json()["data"]["results"]] == ["Mine"]
    refused = client.get("/subscribers", list_id=theirs.pk)
    assert refused.status_code == 404
    # Nor change, blocklist or erase them.
    assert client.put(f"/subscribers/{on_theirs.pk}", {"name": "x"}).status_code == 404
    assert client.put(f"/subscribers/{on_theirs.pk}/blocklist", {}).status_code == 404
    assert client.delete(f"/subscribers/{on_theirs.pk}").status_code == 404
    client.put("/subscribers/blocklist", {"ids": [on_theirs.pk]})
    on_theirs.refresh_from_db()
    assert on_theirs.status == "enabled"
    # Nor subscribe someone to a list that is not theirs.
    made = client.post("/subscribers", {"email": "new@example.com", "lists": [theirs.pk]})
    assert made.status_code == 404


def test_a_role_without_the_permission_is_refused_and_told_which(make_api_client):
    analyst = make_api_client("reports", role="Analyst")
    refused = analyst.post("/subscribers", {"email": "a@example.com"})
    assert refused.status_code == 403
    assert "subscribers.add_subscriber" in refused.json()["message"]


def test_a_staff_session_may_read_but_not_write(admin_client):
    assert admin_client.get("/api/lists").status_code == 200
    response = admin_client.post(
        "/api/lists", '{"name": "By session"}', content_type="application/json"
    )
    assert response.status_code == 403
