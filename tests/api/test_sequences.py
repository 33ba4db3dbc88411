"""/api/sequences and /api/events: create with steps, activate, add people, events that
start sequences, the figures per step, and what a restricted or low-privilege user may do."""

from __future__ import annotations

import pytest

from automations import engine
from automations.models import Enrollment, Sequence
from mailer.models import Delivery
from tests.factories import MailingListFactory, audience

pytestmark = pytest.mark.django_db

WELCOME = {
    "name": "Welcome",
    "trigger": "event",
    "trigger_event": "purchase",
    "steps": [
        {"kind": "send", "subject": "Thanks {{ subscriber.name }}", "body": "<p>Thanks</p>"},
        {"kind": "wait", "wait_seconds": 86400},
        {"kind": "branch", "test": "opened"},
        {"kind": "send", "subject": "Review it?", "body": "<p>How was it?</p>"},
    ],
}


def test_create_activate_and_an_event_that_starts_it(api_client, queued):
    news = MailingListFactory()
    buyer, other = audience(news, 2)
    created = api_client.post("/sequences", {**WELCOME, "lists": [news.pk]})
    assert created.status_code == 200, created.content
    data = created.json()["data"]
    assert [s["kind"] for s in data["versions"][0]["steps"]] == ["send", "wait", "branch", "send"]
    sequence_id = data["id"]

    # An event before activation starts nothing.
    early = api_client.post("/events", {"event": "purchase", "email": buyer.email.upper()})
    assert early.json()["data"]["sequences"] == []

    active = api_client.put(f"/sequences/{sequence_id}/status", {"status": "active"})
    assert active.json()["data"]["status"] == "active"
    started = api_client.post("/events", {"event": "purchase", "subscriber_id": buyer.pk})
    assert started.json()["data"]["sequences"] == [sequence_id]
    api_client.post("/events", {"event": "purchase", "subscriber_id": buyer.pk})  # again
    assert Enrollment.objects.filter(subscriber=buyer).count() == 1
    assert not Enrollment.objects.filter(subscriber=other).exists()

    engine.tick()
    assert Delivery.objects.filter(subscriber=buyer).count() == 1
    steps = api_client.get(f"/sequences/{sequence_id}").json()["data"]["versions"][0]["steps"]
    assert steps[0]["stats"]["entered"] == 1
    assert steps[1]["stats"]["waiting"] == 0 and steps[2]["stats"]["waiting"] == 1


def test_bad_requests_say_what_is_wrong(api_client):
    news = MailingListFactory()
    no_body = {**WELCOME, "lists": [news.pk], "steps": [{"kind": "send", "subject": "x"}]}
    answer = api_client.post("/sequences", no_body)
    assert answer.status_code == 400
    assert "subject and body" in answer.json()["message"]
    assert not Sequence.objects.exists()  # nothing half made

    unknown = api_client.post("/sequences", {**WELCOME, "lists": [999]})
    assert unknown.status_code == 400 and "999" in unknown.json()["message"]

    assert api_client.post("/events", {"event": "purchase"}).status_code == 400
    nobody = api_client.post("/events", {"event": "purchase", "email": "no@example.com"})
    assert nobody.status_code == 404
    bad_name = api_client.post("/events", {"event": "a b<script>", "subscriber_id": 1})
    assert bad_name.status_code == 400 and "event" in bad_name.json()["message"]


def test_adding_by_hand_needs_an_active_sequence(api_client, queued):
    news = MailingListFactory()
    (person,) = audience(news, 1)
    manual = {**WELCOME, "trigger": "manual", "lists": [news.pk]}
    sequence_id = api_client.post("/sequences", manual).json()["data"]["id"]
    path = f"/sequences/{sequence_id}/subscribers"
    refused = api_client.post(path, {"emails": [person.email]})
    assert refused.status_code == 409 and "activate it" in refused.json()["message"]
    api_client.put(f"/sequences/{sequence_id}/status", {"status": "active"})
    added = api_client.post(path, {"emails": [person.email], "ids": [person.pk]})
    assert added.json()["data"] == {"entered": 1, "found": 1}


def test_an_analyst_reads_but_neither_builds_runs_nor_records_events(make_api_client, queued):
    news = MailingListFactory()
    (person,) = audience(news, 1)
    admin = make_api_client("admin-app")
    sequence_id = admin.post("/sequences", {**WELCOME, "lists": [news.pk]}).json()["data"]["id"]
    analyst = make_api_client("reader", role="Analyst", lists=[news])
    assert analyst.get(f"/sequences/{sequence_id}").status_code == 200
    assert (
        analyst.post("/sequences", {**WELCOME, "name": "x", "lists": [news.pk]}).status_code == 403
    )
    assert analyst.put(f"/sequences/{sequence_id}/status", {"status": "active"}).status_code == 403
    event = {"event": "purchase", "subscriber_id": person.pk}
    assert analyst.post("/events", event).status_code == 403
    editor = make_api_client("writer", role="Editor", lists=[news])
    assert editor.put(f"/sequences/{sequence_id}/status", {"status": "active"}).status_code == 403


def test_a_user_limited_to_some_lists_sees_and_names_only_theirs(make_api_client, queued):
    ours, theirs = MailingListFactory(), MailingListFactory()
    (stranger,) = audience(theirs, 1)
    admin = make_api_client("admin-app")
    hidden = admin.post("/sequences", {**WELCOME, "lists": [theirs.pk]}).json()["data"]["id"]
    limited = make_api_client("shop", role="Campaign manager", lists=[ours])
    assert limited.get(f"/sequences/{hidden}").status_code == 404
    assert limited.get("/sequences").json()["data"]["total"] == 0
    assert limited.post("/sequences", {**WELCOME, "lists": [theirs.pk]}).status_code == 400
    # An event for someone on another list answers as if they did not exist.
    event = {"event": "purchase", "email": stranger.email}
    assert limited.post("/events", event).status_code == 404
