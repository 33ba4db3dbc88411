from __future__ import annotations

import logging
import uuid

import pytest

from campaigns.models import Campaign
from mailer import dispatcher, leases
from mailer.models import Delivery, PerformanceSettings
from subscribers.models import Subscriber, Subscription
from tests.factories import (
    CampaignFactory,
    MailingListFactory,
    SubscriberFactory,
    SubscriptionFactory,
    audience,
)

pytestmark = pytest.mark.django_db


def scheduled(**kwargs) -> Campaign:
    return CampaignFactory(status=Campaign.Status.SCHEDULED, **kwargs)


def test_snapshot_takes_each_eligible_subscriber_once_across_lists():
    a, b = MailingListFactory(), MailingListFactory()
    shared = audience(a, 3)
    for s in shared:
        SubscriptionFactory(subscriber=s, mailing_list=b)
    only_b = audience(b, 2)
    unsubscribed = SubscriptionFactory(
        mailing_list=a, status=Subscription.Status.UNSUBSCRIBED
    ).subscriber
    blocked = audience(a, 1, status=Subscriber.Status.BLOCKLISTED)[0]
    campaign = scheduled(lists=[a, b])

    assert dispatcher.campaign_begin(campaign.pk)

    campaign.refresh_from_db()
    emails = sorted(Delivery.objects.filter(campaign=campaign).values_list("email", flat=True))
    assert emails == sorted(s.email for s in [*shared, *only_b])
    assert unsubscribed.email not in emails and blocked.email not in emails
    assert campaign.status == Campaign.Status.RUNNING
    assert campaign.total == 5


def test_double_opt_in_lists_only_reach_confirmed_subscribers():
    double = MailingListFactory(opt_in="double")
    confirmed = SubscriptionFactory(mailing_list=double).subscriber
    SubscriptionFactory(mailing_list=double, status=Subscription.Status.UNCONFIRMED)
    single = MailingListFactory(opt_in="single")
    unconfirmed_single = SubscriptionFactory(
        mailing_list=single, status=Subscription.Status.UNCONFIRMED
    ).subscriber
    campaign = scheduled(lists=[double, single])

    dispatcher.campaign_begin(campaign.pk)

    emails = set(Delivery.objects.filter(campaign=campaign).values_list("email", flat=True))
    assert emails == {confirmed.email, unconfirmed_single.email}


def test_resumed_campaign_keeps_its_ledger():
    mailing_list = MailingListFactory()
    audience(mailing_list, 2)
    campaign = scheduled(lists=[mailing_list])
    dispatcher.campaign_begin(campaign.pk)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    audience(mailing_list, 5)  # joined after the start: not part of this campaign

    dispatcher.campaign_begin(campaign.pk)

    assert Delivery.objects.filter(campaign=campaign).count() == 2


def test_it_holds_campaigns_beyond_the_running_slots_and_warns_once(caplog):
    PerformanceSettings.objects.update_or_create(pk=1, defaults={"max_running_campaigns": 1})
    mailing_list = MailingListFactory()
    audience(mailing_list, 1)
    first, second = scheduled(lists=[mailing_list]), scheduled(lists=[mailing_list])

    with caplog.at_level(logging.WARNING, logger="mailer.dispatcher"):
        for _ in range(3):
            dispatcher.admit_due_campaigns(PerformanceSettings.load())

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == Campaign.Status.RUNNING
    assert second.status == Campaign.Status.SCHEDULED
    assert second.status_reason.startswith("waiting for a running slot: 1 of 1 in use")
    held = [r for r in caplog.records if r.getMessage() == "campaign held back"]
    assert len(held) == 1
    assert held[0].campaign_id == second.pk


def test_it_returns_rows_of_dead_batches_to_pending_and_keeps_live_ones():
    mailing_list = MailingListFactory()
    audience(mailing_list, 4)
    campaign = scheduled(lists=[mailing_list])
    dispatcher.campaign_begin(campaign.pk)
    rows = list(Delivery.objects.filter(campaign=campaign).order_by("id"))
    live, dead = str(uuid.uuid4()), str(uuid.uuid4())
    leases.grant(live)
    Delivery.objects.filter(id__in=[rows[0].id, rows[1].id]).update(
        status="sending", claimed_by=live
    )
    Delivery.objects.filter(id__in=[rows[2].id]).update(status="sending", claimed_by=dead)

    assert dispatcher.recover_abandoned_claims(campaign.pk) == 1

    statuses = dict(Delivery.objects.filter(campaign=campaign).values_list("id", "status"))
    assert statuses == {
        rows[0].id: "sending",
        rows[1].id: "sending",
        rows[2].id: "pending",
        rows[3].id: "pending",
    }


def test_it_finishes_a_campaign_only_when_nothing_is_pending_or_in_flight():
    mailing_list = MailingListFactory()
    audience(mailing_list, 2)
    campaign = scheduled(lists=[mailing_list])
    dispatcher.campaign_begin(campaign.pk)
    first, second = Delivery.objects.filter(campaign=campaign).order_by("id")
    Delivery.objects.filter(pk=first.pk).update(status="sent")
    Delivery.objects.filter(pk=second.pk).update(status="sending")

    assert not dispatcher.finish_if_done(campaign.pk)

    Delivery.objects.filter(pk=second.pk).update(status="failed")
    assert dispatcher.finish_if_done(campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED
    assert campaign.finished_at is not None


def test_it_keeps_one_batch_per_send_slot_and_half_as_many_again_in_flight():
    from mailer import heartbeats

    heartbeats.start_worker_heartbeat(hostname="s1@h", queues=["send"], concurrency=4, pool="x")
    try:
        mailing_list = MailingListFactory()
        audience(mailing_list, 3)
        campaign = scheduled(lists=[mailing_list])
        dispatcher.campaign_begin(campaign.pk)
        dispatcher.share_limits(PerformanceSettings.load())

        assert dispatcher.fill_slots() == 6
        assert dispatcher.fill_slots() == 0
        assert len(leases.live()) == 6
    finally:
        heartbeats.stop_worker_heartbeat("s1@h")


def test_no_batches_are_queued_without_due_work():
    dispatcher.share_limits(PerformanceSettings.load())
    assert dispatcher.fill_slots() == 0


def test_a_second_tick_while_one_runs_does_nothing():
    with dispatcher.tick_lock() as first, dispatcher.tick_lock() as second:
        assert first and not second
    with dispatcher.tick_lock() as again:
        assert again


def test_subscriber_factory_addresses_are_unique():
    assert SubscriberFactory().email != SubscriberFactory().email


def test_rows_of_a_dead_batch_are_settled_from_its_send_journal():
    from mailer import journal

    mailing_list = MailingListFactory()
    audience(mailing_list, 3)
    campaign = scheduled(lists=[mailing_list])
    dispatcher.campaign_begin(campaign.pk)
    rows = list(Delivery.objects.filter(campaign=campaign).order_by("id"))
    dead = str(uuid.uuid4())
    Delivery.objects.filter(campaign=campaign).update(status="sending", claimed_by=dead)
    # The worker died after the server accepted the first two messages, before recording.
    writer = journal.Journal(dead)
    writer.note_sent(rows[0].id)
    writer.note_sent(rows[1].id)
    writer.close(discard=False)

    dispatcher.recover_abandoned_claims(campaign.pk)

    statuses = dict(Delivery.objects.filter(campaign=campaign).values_list("id", "status"))
    assert statuses == {rows[0].id: "sent", rows[1].id: "sent", rows[2].id: "pending"}
    campaign.refresh_from_db()
    assert campaign.sent == 2
    assert journal.sent_ids(dead) == set()


def test_rows_of_a_batch_whose_process_stopped_beating_are_recovered():
    from mailer import heartbeats

    mailing_list = MailingListFactory()
    audience(mailing_list, 1)
    campaign = scheduled(lists=[mailing_list])
    dispatcher.campaign_begin(campaign.pk)
    batch = str(uuid.uuid4())
    # A long lease, but owned by a process that has no heartbeat (it was killed).
    leases.grant(batch, 600, owner="elsewhere:12345")
    died("elsewhere:12345")
    Delivery.objects.filter(campaign=campaign).update(status="sending", claimed_by=batch)
    assert heartbeats.processes_alive(["elsewhere:12345"]) == {"elsewhere:12345": False}

    assert dispatcher.recover_abandoned_claims(campaign.pk) == 1
    assert Delivery.objects.get(campaign=campaign).status == "pending"


def test_only_running_campaigns_with_due_rows_are_served_and_share_the_global_rate():
    from mailer import scheduler, throttle
    from settings.redis import get_redis

    PerformanceSettings.objects.update_or_create(pk=1, defaults={"message_rate": 300})
    mailing_list = MailingListFactory()
    audience(mailing_list, 2)
    heavy = scheduled(lists=[mailing_list], weight=2)
    light = scheduled(lists=[mailing_list], weight=1, rate_limit=50)
    done = scheduled(lists=[mailing_list])
    for c in (heavy, light, done):
        dispatcher.campaign_begin(c.pk)
    Delivery.objects.filter(campaign=done).update(status="sent")

    dispatcher.share_limits(PerformanceSettings.load())

    assert scheduler.active_campaigns() == {heavy.pk, light.pk}
    limits = {k.decode(): float(v) for k, v in get_redis().hgetall(throttle.limits_key()).items()}
    assert limits["global"] == 300
    assert limits[f"campaign:{light.pk}"] == 50
    assert limits[f"campaign:{heavy.pk}"] == 250


def test_rows_without_a_lease_are_left_to_their_batch_until_a_lease_would_have_lapsed():
    """Redis lost its data (restart, flush): the lease is gone, the batch may be alive."""
    from datetime import timedelta

    from django.utils import timezone

    mailing_list = MailingListFactory()
    audience(mailing_list, 2)
    campaign = scheduled(lists=[mailing_list])
    dispatcher.campaign_begin(campaign.pk)
    fresh, stale = list(Delivery.objects.filter(campaign=campaign).order_by("id"))
    just_now, long_ago = str(uuid.uuid4()), str(uuid.uuid4())
    Delivery.objects.filter(pk=fresh.pk).update(
        status="sending", claimed_by=just_now, claimed_at=timezone.now()
    )
    Delivery.objects.filter(pk=stale.pk).update(
        status="sending",
        claimed_by=long_ago,
        claimed_at=timezone.now() - timedelta(seconds=leases.LEASE_SECONDS + 1),
    )

    assert dispatcher.recover_abandoned_claims(campaign.pk) == 1

    statuses = dict(Delivery.objects.filter(campaign=campaign).values_list("pk", "status"))
    assert statuses == {fresh.pk: "sending", stale.pk: "pending"}


def test_a_batch_seen_dead_is_settled_for_every_campaign_it_served():
    from django.utils import timezone

    campaigns = []
    batch = str(uuid.uuid4())
    for _ in range(2):
        mailing_list = MailingListFactory()
        audience(mailing_list, 1)
        campaign = scheduled(lists=[mailing_list])
        dispatcher.campaign_begin(campaign.pk)
        Delivery.objects.filter(campaign=campaign).update(
            status="sending", claimed_by=batch, claimed_at=timezone.now()
        )
        campaigns.append(campaign)
    leases.grant(batch, 600, owner="gone:1")
    died("gone:1")

    # The first recovery sees the process dead and drops the lease; the second campaign's
    # rows must still count as abandoned, not as a batch that merely lost its lease.
    assert [dispatcher.recover_abandoned_claims(c.pk) for c in campaigns] == [1, 1]


def test_a_batch_whose_lease_vanished_is_told_so_and_not_granted_it_again():
    # It may have been taken for dead and its rows handed on: it must stop, not carry on
    # under a fresh lease (mailer.batch ends it and gives back what it still holds).
    from settings.redis import get_redis, key

    batch = str(uuid.uuid4())
    leases.grant(batch, 60, owner="host:1")
    get_redis().delete(key("leases"), key("lease-owners"))  # Redis lost its data

    assert leases.renew(batch, owner="host:1") is False
    assert get_redis().zscore(key("leases"), batch) is None


def test_a_dead_batchs_journal_serves_every_campaign_it_sent_for():
    from mailer import journal

    batch = str(uuid.uuid4())
    writer = journal.Journal(batch)
    campaigns = []
    for _ in range(2):
        mailing_list = MailingListFactory()
        audience(mailing_list, 1)
        campaign = scheduled(lists=[mailing_list])
        dispatcher.campaign_begin(campaign.pk)
        row = Delivery.objects.get(campaign=campaign)
        Delivery.objects.filter(pk=row.pk).update(status="sending", claimed_by=batch)
        writer.note_sent(row.pk)
        campaigns.append(campaign)
    writer.close(discard=False)

    for campaign in campaigns:
        dispatcher.recover_abandoned_claims(campaign.pk)

    assert list(Delivery.objects.values_list("status", flat=True)) == ["sent", "sent"]
    assert journal.sent_ids(batch) == set()


def died(process: str) -> None:
    """The process stopped: its heartbeat expires (here, at once)."""
    from settings.redis import get_redis, key

    get_redis().delete(key("process", process))


def test_a_tick_asked_for_while_one_runs_is_run_when_it_ends(monkeypatch):
    runs: list[int] = []

    def tick_once() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            # A campaign started meanwhile asks for a tick: the lock is taken.
            dispatcher.tick()
            assert runs == [0], "it must not run inside the running tick"

    monkeypatch.setattr(dispatcher, "tick_once", tick_once)
    dispatcher.tick()

    assert runs == [0, 1]
    dispatcher.tick()  # nothing asked for meanwhile: one run
    assert runs == [0, 1, 2]
