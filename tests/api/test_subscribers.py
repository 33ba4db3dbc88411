"""/api/subscribers with listmonk's documented requests and responses."""

from __future__ import annotations

import json

import pytest

from settings import queues
from subscribers.models import MailingList, Subscriber, Subscription
from tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_create_a_subscriber_as_listmonk_documents_it(api_client, queued):
    single = MailingListFactory()
    double = MailingListFactory(opt_in=MailingList.OptIn.DOUBLE)
    response = api_client.post(
        "/subscribers",
        {
            "email": "Subscriber@Domain.com",
            "name": "The Subscriber",
            "status": "enabled",
            "lists": [single.pk, double.pk],
            "attribs": {"city": "Bengaluru"},
        },
    )
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert (data["email"], data["name"], data["status"]) == (
        "subscriber@domain.com",
        "The Subscriber",
        "enabled",
    )
    assert data["attribs"] == {"city": "Bengaluru"} and len(data["uuid"]) == 36
    statuses = {m["id"]: m["subscription_status"] for m in data["lists"]}
    assert statuses == {single.pk: "confirmed", double.pk: "unconfirmed"}
    # The double opt-in list sends its confirmation through the transactional queue.
    assert queued.calls == [
        (queues.SEND_OPTIN_CONFIRMATION, {"subscriber_id": data["id"], "list_ids": [double.pk]})
    ]
    again = api_client.post("/subscribers", {"email": "subscriber@domain.com"})
    assert (again.status_code, again.json()) == (409, {"message": "E-mail already exists."})


def test_preconfirmed_subscriptions_send_no_confirmation(api_client, queued):
    double = MailingListFactory(opt_in=MailingList.OptIn.DOUBLE)
    data = api_client.post(
        "/subscribers",
        {"email": "a@example.com", "lists": [double.pk], "preconfirm_subscriptions": True},
    ).json()["data"]
    assert data["lists"][0]["subscription_status"] == "confirmed" and queued.calls == []


def test_bad_addresses_and_names_are_refused_with_the_reason(api_client):
    bad = api_client.post("/subscribers", {"email": "not-an-address"})
    assert bad.status_code == 400 and "is not a valid email address" in bad.json()["message"]
    crlf = api_client.post("/subscribers", {"email": "b@example.com", "name": "A\r\nBcc: x"})
    assert crlf.status_code == 400 and "line breaks" in crlf.json()["message"]
    assert not Subscriber.objects.exists()


def test_query_by_list_and_subscription_status(api_client):
    news = MailingListFactory()
    confirmed = SubscriptionFactory(mailing_list=news).subscriber
    SubscriptionFactory(mailing_list=news, status=Subscription.Status.UNSUBSCRIBED)
    SubscriberFactory()  # on no list
    page = api_client.get(
        "/subscribers", list_id=news.pk, subscription_status="confirmed", per_page="all"
    ).json()["data"]
    assert [s["email"] for s in page["results"]] == [confirmed.email]
    assert (page["total"], page["page"], page["query"]) == (1, 1, "")
    assert api_client.get("/subscribers").json()["data"]["total"] == 3


def emails(api_client, query: str) -> list[str]:
    response = api_client.get("/subscribers", query=query, per_page="all", order_by="email")
    assert response.status_code == 200, response.json()
    assert response.json()["data"]["query"] == query
    return [s["email"] for s in response.json()["data"]["results"]]


def test_the_sql_queries_listmonk_users_write_select_the_same_subscribers(api_client):
    SubscriberFactory(email="ada@gmail.com", name="Ada", attributes={"city": "Lyon", "age": 36})
    SubscriberFactory(email="bob@example.com", name="Bob", attributes={"city": "Paris", "age": 9})
    SubscriberFactory(
        email="cy@gmail.com",
        name="Cy",
        status=Subscriber.Status.BLOCKLISTED,
        attributes={"address": {"city": "Lyon"}},
    )
    assert emails(api_client, "subscribers.email LIKE '%@gmail.com'") == [
        "ada@gmail.com",
        "cy@gmail.com",
    ]
    assert emails(api_client, "subscribers.attribs->>'city' = 'Lyon'") == ["ada@gmail.com"]
    assert emails(api_client, "(subscribers.attribs->>'age')::INT > 30") == ["ada@gmail.com"]
    assert emails(api_client, "subscribers.attribs->'address'->>'city' = 'Lyon'") == [
        "cy@gmail.com"
    ]
    assert emails(
        api_client, "subscribers.status = 'enabled' AND NOT subscribers.name ILIKE 'a%'"
    ) == ["bob@example.com"]
    assert emails(api_client, "name IN ('Bob', 'Cy') OR email <> 'bob@example.com'") == [
        "ada@gmail.com",
        "bob@example.com",
        "cy@gmail.com",
    ]
    assert emails(api_client, "subscribers.attribs->>'age' IS NULL") == ["cy@gmail.com"]
    assert emails(api_client, "subscribers.created_at > '2000-01-01' AND id BETWEEN 0 AND 0") == []
    assert emails(api_client, "LOWER(subscribers.name) LIKE 'b_b'") == ["bob@example.com"]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("1=1; DROP TABLE subscribers", "DROP TABLE"),
        ("subscribers.email = 'a' OR (SELECT 1) = 1", "SELECT 1"),
        ("subscribers.id IN (SELECT id FROM auth_user)", "SELECT"),
        ("pg_sleep(10) IS NULL", "PG_SLEEP(10)"),
        ("users.password = 'x'", "Only the subscribers table"),
        ("subscribers.password = 'x'", "subscribers.password"),
        ("subscribers.email = subscribers.name", "compare with a string"),
        ("subscribers.email ~ 'x'", "is not supported"),
        ("subscribers.email = ", "not a valid SQL expression"),
    ],
)
def test_anything_else_is_refused_naming_it_and_never_reaches_the_database(
    api_client, query, named
):
    response = api_client.get("/subscribers", query=query)
    assert response.status_code == 400, response.json()
    assert named in response.json()["message"]


def test_bulk_actions_select_by_query(api_client):
    SubscriberFactory(email="a@gmail.com")
    kept = SubscriberFactory(email="b@example.com")
    api_client.put("/subscribers/blocklist", {"query": "subscribers.email LIKE '%@gmail.com'"})
    assert set(Subscriber.objects.values_list("email", "status")) == {
        ("a@gmail.com", "blocklisted"),
        (kept.email, "enabled"),
    }
    assert api_client.put("/subscribers/blocklist", {}).status_code == 400


def test_get_update_blocklist_and_delete_a_subscriber(api_client):
    subscriber = SubscriptionFactory().subscriber
    other = MailingListFactory()
    got = api_client.get(f"/subscribers/{subscriber.pk}").json()["data"]
    assert got["email"] == subscriber.email and len(got["lists"]) == 1
    changed = api_client.put(
        f"/subscribers/{subscriber.pk}",
        {"name": "New name", "attribs": {"plan": "pro"}, "lists": [other.pk]},
    ).json()["data"]
    assert (changed["name"], changed["attribs"]) == ("New name", {"plan": "pro"})
    assert [m["id"] for m in changed["lists"]] == [other.pk]
    assert api_client.put(f"/subscribers/{subscriber.pk}/blocklist", {}).json() == {"data": True}
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.BLOCKLISTED
    assert api_client.delete(f"/subscribers/{subscriber.pk}").json() == {"data": True}
    assert not Subscriber.objects.filter(pk=subscriber.pk).exists()


def test_delete_and_blocklist_many_by_id(api_client):
    first, second, kept = SubscriberFactory(), SubscriberFactory(), SubscriberFactory()
    api_client.put("/subscribers/blocklist", {"ids": [first.pk]})
    assert Subscriber.objects.get(pk=first.pk).status == "blocklisted"
    response = api_client.delete("/subscribers", id=[first.pk, second.pk])
    assert response.json() == {"data": True}
    assert list(Subscriber.objects.values_list("pk", flat=True)) == [kept.pk]


def test_manage_list_memberships_in_bulk(api_client, queued):
    people = [SubscriberFactory(), SubscriberFactory()]
    target = MailingListFactory()
    ids = [p.pk for p in people]
    add = {"ids": ids, "action": "add", "target_list_ids": [target.pk], "status": "confirmed"}
    assert api_client.put("/subscribers/lists", add).json() == {"data": True}
    assert Subscription.objects.filter(mailing_list=target, status="confirmed").count() == 2
    unsubscribe = {"ids": ids[:1], "action": "unsubscribe", "target_list_ids": [target.pk]}
    api_client.put("/subscribers/lists", unsubscribe)
    assert Subscription.objects.get(subscriber=people[0], mailing_list=target).status == (
        "unsubscribed"
    )
    remove = {"ids": ids, "action": "remove", "target_list_ids": [target.pk]}
    api_client.put("/subscribers/lists", remove)
    assert not Subscription.objects.filter(mailing_list=target).exists()


def test_export_one_subscribers_data(api_client):
    subscriber = SubscriptionFactory().subscriber
    response = api_client.get(f"/subscribers/{subscriber.pk}/export")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="data.json"'
    assert json.loads(response.content)["email"] == subscriber.email
