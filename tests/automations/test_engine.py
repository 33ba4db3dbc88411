"""Sequences moved by the engine's tick against the real database: entering, waiting, sending
through the ledger once, branching, list steps, leaving, pausing and new versions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from automations import engine, entry, services
from automations.models import Enrollment, Sequence, Step
from campaigns.models import Campaign, Open
from campaigns.services import CampaignError, campaign_cancel, campaign_start
from mailer import dispatcher, scheduler
from mailer.models import Delivery
from mailer.status import engine_status
from settings.redis import get_redis, key
from subscribers.models import SubscriberImport, Subscription
from subscribers.services import subscriber_blocklist, subscriber_unsubscribe
from tests.automations.helpers import sequence_with
from tests.factories import MailingListFactory, audience
from webhooks.models import Endpoint, Event

pytestmark = pytest.mark.django_db


def due_now(sequence: Sequence) -> None:
    """Jump over waits: everyone on the way is due now (a simulated clock)."""
    Enrollment.objects.filter(sequence=sequence, state="active").update(
        due_at=timezone.now() - timedelta(seconds=1)
    )


def sent_steps(subscriber) -> list[str]:
    return sorted(
        Delivery.objects.filter(subscriber=subscriber).values_list("campaign__name", flat=True)
    )


def test_a_welcome_series_queues_each_message_once_at_its_time(queued):
    news = MailingListFactory()
    people = audience(news, 3)
    sequence = sequence_with(
        [
            {"kind": "send", "subject": "Welcome"},
            {"kind": "wait", "wait_seconds": 3600},
            {"kind": "send", "subject": "Tips"},
        ],
        lists=[news],
        trigger=Sequence.Trigger.MANUAL,
    )
    services.sequence_activate(sequence=sequence)
    dispatcher.tick_once()  # the dispatcher runs the step messages
    assert set(Campaign.objects.filter(kind="step").values_list("status", flat=True)) == {"running"}
    services.sequence_enroll(sequence=sequence, subscriber_ids=[p.pk for p in people])

    engine.tick()
    first, second = (s.campaign for s in sequence.steps_of(1) if s.kind == "send")
    assert Delivery.objects.filter(campaign=first).count() == 3
    assert not Delivery.objects.filter(campaign=second).exists()
    assert set(Enrollment.objects.values_list("position", flat=True)) == {3}

    engine.tick()  # nothing due: the wait holds
    assert not Delivery.objects.filter(campaign=second).exists()

    due_now(sequence)
    engine.tick()
    due_now(sequence)
    engine.tick()  # a repeated tick (as after a crash) queues nothing twice
    assert Delivery.objects.filter(campaign=second).count() == 3
    assert Delivery.objects.filter(campaign=first).count() == 3
    first.refresh_from_db()
    assert first.total == 3
    assert set(Enrollment.objects.values_list("state", flat=True)) == {"done"}
    steps = {s.position: s for s in sequence.steps_of(1)}
    assert [steps[n].entered for n in (1, 2, 3)] == [3, 3, 3]


def test_a_repeated_step_after_a_crash_queues_nothing_twice(queued):
    news = MailingListFactory()
    (person,) = audience(news, 1)
    sequence = sequence_with([{"kind": "send"}], lists=[news], trigger=Sequence.Trigger.MANUAL)
    services.sequence_activate(sequence=sequence)
    services.sequence_enroll(sequence=sequence, subscriber_ids=[person.pk])
    engine.tick()
    # As if the move had been lost after the ledger was written: the step runs again.
    Enrollment.objects.update(position=1, state="active", due_at=timezone.now())
    engine.tick()
    assert Delivery.objects.filter(subscriber=person).count() == 1
    assert Campaign.objects.get(kind="step").total == 1


def test_the_list_trigger_lets_in_who_subscribes_after_activation(queued):
    news = MailingListFactory()
    before = audience(news, 2)
    sequence = sequence_with(
        [{"kind": "send"}], lists=[news], trigger=Sequence.Trigger.LIST, trigger_list=news
    )
    services.sequence_activate(sequence=sequence)
    after = audience(news, 3)
    entry.scan()
    entered = set(Enrollment.objects.values_list("subscriber_id", flat=True))
    assert entered == {p.pk for p in after}
    assert not entered & {p.pk for p in before}
    entry.scan()  # scanning again lets nobody in twice
    assert Enrollment.objects.count() == 3


def test_a_double_opt_in_list_lets_them_in_once_confirmed(queued):
    members = MailingListFactory(opt_in="double")
    sequence = sequence_with(
        [{"kind": "send"}], lists=[members], trigger=Sequence.Trigger.LIST, trigger_list=members
    )
    services.sequence_activate(sequence=sequence)
    (person,) = audience(members, 1)
    Subscription.objects.filter(subscriber=person).update(status="unconfirmed")
    entry.scan()
    assert not Enrollment.objects.exists()
    Subscription.objects.get(subscriber=person).save()  # confirmed later
    Subscription.objects.filter(subscriber=person).update(
        status="confirmed", updated_at=timezone.now()
    )
    entry.scan()
    assert Enrollment.objects.filter(subscriber=person).exists()


def test_a_branch_on_an_open_sends_the_reminder_only_to_who_did_not_open(queued):
    news = MailingListFactory()
    opened, ignored = audience(news, 2)
    sequence = sequence_with(
        [
            {"kind": "send", "subject": "Welcome"},
            {"kind": "wait", "wait_seconds": 86400},
            {"kind": "branch", "test": "opened", "go_to": 5},
            {"kind": "webhook", "event": "engaged"},
            {"kind": "send", "subject": "Did you see it?"},
        ],
        lists=[news],
        trigger=Sequence.Trigger.MANUAL,
    )
    services.sequence_activate(sequence=sequence)
    services.sequence_enroll(sequence=sequence, subscriber_ids=[opened.pk, ignored.pk])
    engine.tick()
    welcome = sequence.steps.get(position=1).campaign
    Open.objects.create(campaign=welcome, subscriber_id=opened.pk, at=timezone.now())
    due_now(sequence)
    engine.tick()
    reminder = sequence.steps.get(position=5).campaign
    # The opener takes the webhook step, then the reminder step too (go on after a branch);
    # the one who did not open jumps to it.
    assert set(
        Delivery.objects.filter(campaign=reminder).values_list("subscriber_id", flat=True)
    ) == {opened.pk, ignored.pk}


def test_a_branch_without_go_to_lets_those_who_fail_leave(queued):
    news = MailingListFactory()
    lyon, paris = audience(news, 2)
    paris.attributes = {"city": "Paris"}
    paris.save()
    sequence = sequence_with(
        [
            {"kind": "branch", "test": "attribute", "attribute": "city", "value": "Lyon"},
            {"kind": "send"},
        ],
        lists=[news],
        trigger=Sequence.Trigger.MANUAL,
    )
    services.sequence_activate(sequence=sequence)
    services.sequence_enroll(sequence=sequence, subscriber_ids=[lyon.pk, paris.pk])
    engine.tick()
    assert sent_steps(lyon) == ["Welcome · step 2"]
    assert sent_steps(paris) == []
    left = Enrollment.objects.get(subscriber=paris)
    assert (left.state, left.reason) == ("exited", "left at step 1")
    assert sequence.steps.get(position=1).exited == 1


def test_list_steps_add_and_remove(queued):
    news, customers = MailingListFactory(), MailingListFactory()
    (person,) = audience(news, 1)
    sequence = sequence_with(
        [
            {"kind": "add", "mailing_list": customers},
            {"kind": "branch", "test": "on_list", "mailing_list": customers},
            {"kind": "remove", "mailing_list": customers},
        ],
        lists=[news],
        trigger=Sequence.Trigger.MANUAL,
    )
    services.sequence_activate(sequence=sequence)
    services.sequence_enroll(sequence=sequence, subscriber_ids=[person.pk])
    engine.tick()
    assert Subscription.objects.get(subscriber=person, mailing_list=customers).status == (
        "unsubscribed"
    )
    assert Enrollment.objects.get().state == "done"


def test_unsubscribing_or_blocklisting_ends_the_sequence_at_once(queued):
    news = MailingListFactory()
    leaver, blocked, staying = audience(news, 3)
    sequence = sequence_with(
        [{"kind": "wait", "wait_seconds": 60}, {"kind": "send"}],
        lists=[news],
        trigger=Sequence.Trigger.MANUAL,
    )
    services.sequence_activate(sequence=sequence)
    services.sequence_enroll(sequence=sequence, subscriber_ids=[leaver.pk, blocked.pk, staying.pk])
    engine.tick()
    subscriber_unsubscribe(subscriber=leaver, lists=[news])
    subscriber_blocklist(subscribers=[blocked])
    states = dict(Enrollment.objects.values_list("subscriber_id", "reason"))
    assert states[leaver.pk] == "unsubscribed"
    assert states[blocked.pk] == "blocklisted"
    due_now(sequence)
    engine.tick()
    assert sent_steps(staying) == ["Welcome · step 2"]
    assert sent_steps(leaver) == sent_steps(blocked) == []


def test_a_paused_sequence_holds_everyone_and_a_new_version_is_for_new_entrants(queued):
    news = MailingListFactory()
    early, late = audience(news, 2)
    sequence = sequence_with(
        [{"kind": "wait", "wait_seconds": 60}, {"kind": "send", "subject": "Old"}],
        lists=[news],
        trigger=Sequence.Trigger.MANUAL,
    )
    services.sequence_activate(sequence=sequence)
    services.sequence_enroll(sequence=sequence, subscriber_ids=[early.pk])
    engine.tick()
    services.sequence_pause(sequence=sequence)
    assert Campaign.objects.get(kind="step").status == "paused"
    due_now(sequence)
    engine.tick()
    assert sent_steps(early) == []  # waits at its step while paused

    sequence = services.sequence_new_version(sequence=sequence)
    new_send = sequence.steps.get(version=2, position=2)
    Campaign.objects.filter(pk=new_send.campaign_id).update(subject="New")
    services.sequence_activate(sequence=sequence)
    services.sequence_enroll(sequence=sequence, subscriber_ids=[late.pk])
    due_now(sequence)
    engine.tick()
    due_now(sequence)
    engine.tick()
    subjects = dict(Delivery.objects.values_list("subscriber_id", "campaign__subject"))
    assert subjects == {early.pk: "Old", late.pk: "New"}


def test_step_messages_share_one_weight_and_take_no_running_slot(queued):
    news = MailingListFactory()
    people = audience(news, 4)
    sequence = sequence_with(
        [{"kind": "send"}, {"kind": "send"}],
        lists=[news],
        trigger=Sequence.Trigger.MANUAL,
        weight=2,
    )
    services.sequence_activate(sequence=sequence)
    services.sequence_enroll(sequence=sequence, subscriber_ids=[p.pk for p in people])
    engine.tick()
    dispatcher.tick_once()
    weights = {int(c): float(w) for c, w in get_redis().hgetall(key("fair", "active")).items()}
    assert sorted(weights.values()) == [1.0, 1.0]
    assert scheduler.active_campaigns() == set(weights)
    # Never finished for lack of recipients.
    Delivery.objects.update(status="sent", sent_at=timezone.now())
    dispatcher.tick_once()
    assert set(Campaign.objects.filter(kind="step").values_list("status", flat=True)) == {"running"}
    assert Step.objects.count() == 2


def test_a_webhook_step_announces_each_subscriber_in_the_move(queued):
    news = MailingListFactory()
    (person,) = audience(news, 1)
    Endpoint.objects.create(
        name="crm", url="https://crm.example.com/hook", events=["sequence.event"]
    )
    sequence = sequence_with(
        [{"kind": "webhook", "event": "welcomed"}], lists=[news], trigger=Sequence.Trigger.MANUAL
    )
    services.sequence_activate(sequence=sequence)
    services.sequence_enroll(sequence=sequence, subscriber_ids=[person.pk])
    engine.tick()
    (event,) = Event.objects.all()
    data = event.payload["data"]
    assert (event.kind, data["event"], data["subscriber"]["email"]) == (
        "sequence.event",
        "welcomed",
        person.email,
    )
    assert data["sequence"] == {"id": sequence.pk, "name": sequence.name}


def test_the_status_page_shows_steps_without_taking_running_slots(queued):
    news = MailingListFactory()
    sequence = sequence_with([{"kind": "send"}], lists=[news], trigger=Sequence.Trigger.MANUAL)
    services.sequence_activate(sequence=sequence)
    dispatcher.tick_once()
    status = engine_status()
    assert status["capacity"]["running_campaigns"] == 0
    (step,) = status["running"]
    assert (step["kind"], step["group"], step["limited_by"]) == (
        "step",
        f"sequence:{sequence.pk}",
        "next_subscribers",
    )
    assert "sends as subscribers reach the step" in step["explanation"]["text"]


def test_step_messages_cannot_be_started_or_cancelled_as_campaigns(queued):
    news = MailingListFactory()
    sequence = sequence_with([{"kind": "send"}], lists=[news], trigger=Sequence.Trigger.MANUAL)
    message = sequence.steps.get().campaign
    with pytest.raises(CampaignError, match="Activate, pause or resume the sequence"):
        campaign_start(campaign=message)
    services.sequence_activate(sequence=sequence)
    dispatcher.tick_once()
    message.refresh_from_db()
    with pytest.raises(CampaignError, match="sequence"):
        campaign_cancel(campaign=message)


def test_everyone_in_a_finished_import_enters_by_hand(queued):
    news = MailingListFactory()
    before = audience(news, 2)
    started = timezone.now()
    imported = audience(news, 3)
    job = SubscriberImport.objects.create(
        file="imports/x.csv",
        mode="subscribe",
        mailing_list=news,
        status="done",
        started_at=started,
        finished_at=timezone.now(),
    )
    Subscription.objects.filter(subscriber__in=before).update(
        updated_at=started - timedelta(minutes=5)
    )
    sequence = sequence_with([{"kind": "send"}], lists=[news], trigger=Sequence.Trigger.MANUAL)
    with pytest.raises(services.SequenceError, match="activate it"):
        services.sequence_enroll_import(sequence=sequence, job=job)
    services.sequence_activate(sequence=sequence)
    assert services.sequence_enroll_import(sequence=sequence, job=job) == 3
    entered = set(Enrollment.objects.values_list("subscriber_id", flat=True))
    assert entered == {p.pk for p in imported}


def test_a_sequence_refuses_to_start_with_what_would_reach_nobody(queued):
    news, other = MailingListFactory(), MailingListFactory()
    empty = Sequence.objects.create(name="Empty")
    empty.lists.set([news])
    with pytest.raises(services.SequenceError, match="has no steps"):
        services.sequence_activate(sequence=empty)
    elsewhere = sequence_with(
        [{"kind": "send"}], lists=[news], trigger=Sequence.Trigger.LIST, trigger_list=other
    )
    with pytest.raises(services.SequenceError, match="not one of its lists"):
        services.sequence_activate(sequence=elsewhere)
    broken = sequence_with(
        [{"kind": "send", "body": "{{ subscribr.name }}"}],
        lists=[news],
        trigger=Sequence.Trigger.MANUAL,
        name="Broken",
    )
    with pytest.raises(services.SequenceError, match="Step 1"):
        services.sequence_activate(sequence=broken)
    assert set(Sequence.objects.values_list("status", flat=True)) == {"draft"}
