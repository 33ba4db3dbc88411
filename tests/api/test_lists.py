"""/api/lists with listmonk's documented requests and responses."""

from __future__ import annotations

import pytest

from subscribers.models import MailingList
from tests.factories import MailingListFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_create_a_list_as_listmonk_documents_it(api_client):
    response = api_client.post(
        "/lists",
        {"name": "Test list", "type": "public", "optin": "double", "tags": ["test"],
         "description": "A list"},
    )  # fmt: skip
    assert response.status_code == 200
    data = response.json()["data"]
    assert {k: data[k] for k in ["name", "type", "optin", "tags", "description"]} == {
        "name": "Test list",
        "type": "public",
        "optin": "double",
        "tags": ["test"],
        "description": "A list",
    }
    assert data["subscriber_count"] == 0 and len(data["uuid"]) == 36
    assert "T" in data["created_at"] and data["created_at"].endswith("+00:00")
    row = MailingList.objects.get(pk=data["id"])
    assert (row.is_public, row.opt_in) == (True, "double")
    assert api_client.post("/lists", {"name": "Test list"}).status_code == 409


def test_query_pages_and_echoes_the_figures(api_client):
    for n in range(5):
        MailingListFactory(name=f"List {n}", tags=["even"] if n % 2 == 0 else [])
    page = api_client.get("/lists", page=2, per_page=2, order_by="name", order="desc").json()
    assert [m["name"] for m in page["data"]["results"]] == ["List 2", "List 1"]
    assert (page["data"]["total"], page["data"]["page"], page["data"]["per_page"]) == (5, 2, 2)
    everything = api_client.get("/lists", per_page="all").json()["data"]
    assert everything["total"] == len(everything["results"]) == 5
    tagged = api_client.get("/lists", tag="even").json()["data"]["results"]
    assert {m["name"] for m in tagged} == {"List 0", "List 2", "List 4"}
    named = api_client.get("/lists", query="list 3").json()["data"]["results"]
    assert [m["name"] for m in named] == ["List 3"]
    bad = api_client.get("/lists", per_page="lots")
    assert bad.status_code == 400 and "per_page" in bad.json()["message"]
    assert api_client.get("/lists", order_by="colour").status_code == 400


def test_get_update_and_delete_a_list(api_client):
    mailing_list = MailingListFactory(name="Old")
    SubscriptionFactory(mailing_list=mailing_list)
    got = api_client.get(f"/lists/{mailing_list.pk}").json()["data"]
    assert (got["name"], got["subscriber_count"]) == ("Old", 1)
    changed = api_client.put(f"/lists/{mailing_list.pk}", {"name": "New", "type": "private"})
    assert changed.json()["data"]["name"] == "New"
    assert changed.json()["data"]["type"] == "private"
    assert api_client.delete(f"/lists/{mailing_list.pk}").json() == {"data": True}
    missing = api_client.get(f"/lists/{mailing_list.pk}")
    assert missing.status_code == 404 and missing.json() == {
        "message": f"List {mailing_list.pk} not found."
    }


def test_a_bad_body_is_refused_with_what_is_wrong(api_client):
    response = api_client.post("/lists", {"name": "X", "optin": "triple"})
    assert response.status_code == 400
    assert response.json()["message"].startswith("Invalid request: optin")
