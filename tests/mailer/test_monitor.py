"""The status page's data, read from real Redis and PostgreSQL after real batches."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from campaigns.models import Campaign, Limit
from campaigns.services import campaign_pause
from mailer import dispatcher, events, heartbeats, sender
from mailer.batch import run_batch
from mailer.models import DomainThrottle, PerformanceSettings
from mailer.status import engine_status, queue_depths, smtp_servers
from tests.factories import (
    CampaignFactory,
    MailingListFactory,
    SmtpServerFactory,
    running_campaign,
)

pytestmark = pytest.mark.django_db


def entry(status: dict, campaign: Campaign) -> dict:
    return next(c for c in status["running"] + status["waiting"] if c["id"] == campaign.pk)


def test_a_campaign_paused_by_a_user_is_not_reported_as_paused_by_errors():
    by_user = campaign_pause(campaign=running_campaign(3))
    by_errors = running_campaign(3)
    campaign_pause(campaign=by_errors, reason="paused by errors: 120 failed sends")

    status = engine_status()

    assert entry(status, by_user)["limited_by"] == "paused"
    assert entry(status, by_errors)["limited_by"] == "errors"
    assert "120 failed sends" in entry(status, by_errors)["explanation"]["text"]


def test_a_campaign_beyond_the_running_slots_says_where_to_change_that():
    PerformanceSettings.objects.update_or_create(pk=1, defaults={"max_running_campaigns": 1})
    running_campaign(3)
    waiting = CampaignFactory(status=Campaign.Status.SCHEDULED, lists=[MailingListFactory()])

    dispatcher.admit_due_campaigns(PerformanceSettings.load())
    status = engine_status()

    waits = entry(status, waiting)
    assert waits["limited_by"] == "running_slots"
    assert "1 of 1 campaigns are running" in waits["explanation"]["text"]
    assert waits["explanation"]["fix"] == "/admin/mailer/performancesettings/1/change/"
    assert status["warnings"][0]["event"] == "campaign held back"
    assert status["warnings"][0]["campaign_id"] == waiting.pk


def test_a_campaign_scheduled_for_later_says_when():
    later = CampaignFactory(status=Campaign.Status.SCHEDULED, send_at="2099-01-01T10:00Z")

    waits = entry(engine_status(), later)

    assert waits["limited_by"] == "schedule"
    assert "2099-01-01 10:00" in waits["explanation"]["text"]


def test_its_own_rate_is_named_when_it_holds_a_campaign_back(sink_server, smtp_sink):
    campaign = running_campaign(6, rate_limit=3)

    run_batch(batch_id=str(uuid.uuid4()))
    shown = entry(engine_status(), campaign)

    assert shown["limited_by"] == "campaign_rate"
    assert shown["rate_limit"] == 3
    assert "its rate limit (3/s)" in shown["explanation"]["text"]


def test_an_smtp_servers_last_success_and_error_replies_are_kept(sink_server, smtp_sink):
    campaign = running_campaign(4)
    refused = campaign.deliveries.order_by("id").first().email
    smtp_sink.handler.rcpt_reply = lambda a: "550 5.1.1 unknown" if a == refused else None

    run_batch(batch_id=str(uuid.uuid4()))
    server = next(s for s in smtp_servers() if s["id"] == sink_server.pk)

    assert server["last_success"] is not None
    assert [e["reply"] for e in server["recent_errors"]] == ["550 5.1.1 unknown"]


def test_queue_depths_count_messages_where_kombu_keeps_them(settings):
    from kombu import Connection

    options = {"global_keyprefix": f"{settings.REDIS_KEY_PREFIX}:celery:"}
    with Connection(settings.CELERY_BROKER_URL, transport_options=options) as connection:
        for name, count in (("send", 2), ("dispatch", 1)):
            queue = connection.SimpleQueue(name)
            for n in range(count):
                queue.put({"n": n})
            queue.close()

    assert queue_depths() == {"dispatch": 1, "send": 2, "transactional": 0, "default": 0}


def test_a_limit_warning_is_recorded_once_in_its_interval():
    assert events.warn("rate limit reached", "x", once_per=60, campaign_id=1, limited_by="a")
    assert not events.warn("rate limit reached", "x", once_per=60, campaign_id=1, limited_by="a")
    assert events.warn("rate limit reached", "y", once_per=60, campaign_id=2, limited_by="a")

    assert [e["message"] for e in events.recent()] == ["y", "x"]


def test_a_domain_throttle_is_named_with_its_rate(sink_server, smtp_sink, monkeypatch):
    # Worker processes re-read domain throttles every couple of seconds; this process may
    # have read them (none) just before.
    monkeypatch.setattr(sender, "_domain_rates", (0.0, {}))
    DomainThrottle.objects.create(domain="example.com", rate_limit=2)
    campaign = running_campaign(6)
    dispatcher.share_limits(PerformanceSettings.load())

    run_batch(batch_id=str(uuid.uuid4()))
    shown = entry(engine_status(), campaign)

    assert shown["limited_by"] == "domain:example.com"
    assert "example.com" in shown["explanation"]["text"] and "(2/s)" in shown["explanation"]["text"]


def test_the_smtp_server_limit_is_named_when_it_holds_a_campaign_back(smtp_sink):
    server = SmtpServerFactory(port=smtp_sink.port, rate_limit=2)
    campaign = running_campaign(6, smtp_server=server)
    dispatcher.share_limits(PerformanceSettings.load())

    run_batch(batch_id=str(uuid.uuid4()))
    shown = entry(engine_status(), campaign)

    assert shown["limited_by"] == "smtp_server"


def test_a_campaign_just_started_without_a_send_time_never_waits_for_a_schedule():
    # The status page once said a campaign started a moment ago waited for its schedule.
    due = CampaignFactory(status=Campaign.Status.SCHEDULED, send_at=None, status_reason="")
    assert due.waiting_for() == Limit.RUNNING_SLOTS  # before any tick looked at it
    past = CampaignFactory(
        status=Campaign.Status.SCHEDULED, send_at=timezone.now() - timedelta(minutes=1)
    )
    assert past.waiting_for() == Limit.RUNNING_SLOTS
    later = CampaignFactory(
        status=Campaign.Status.SCHEDULED, send_at=timezone.now() + timedelta(hours=1)
    )
    assert later.waiting_for() == Limit.SCHEDULE


def test_the_health_command_answers_for_a_worker_and_for_beat():
    heartbeats.start_worker_heartbeat(
        hostname="sender@box1", queues=["send"], concurrency=2, pool="prefork"
    )
    try:
        call_command("alive", "worker", "sender@box1")
        with pytest.raises(CommandError, match="No heartbeat from sender@box2"):
            call_command("alive", "worker", "sender@box2")
    finally:
        heartbeats.stop_worker_heartbeat("sender@box1")
    with pytest.raises(CommandError, match="has not ticked"):
        call_command("alive", "beat")
    dispatcher.tick()
    call_command("alive", "beat")
