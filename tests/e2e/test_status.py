"""The status page's data with real workers: what holds each campaign back, settings that
reach running workers within seconds, and workers that drop off when they die."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from mailer.heartbeats import HEARTBEAT_TTL
from mailer.models import DomainThrottle
from tests.e2e.helpers import (
    campaign_with,
    rate_between,
    settings_row,
    status,
    wait_until,
)
from tests.factories import SmtpServerFactory, performance_form

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SETTINGS_URL = "/admin/mailer/performancesettings/1/change/"


class StatusPage:
    def __init__(self, client) -> None:
        self.client = client

    def get(self) -> dict:
        response = self.client.get("/admin/status.json")
        assert response.status_code == 200
        return response.json()

    def campaign(self, campaign: Campaign) -> dict | None:
        data = self.get()
        return next((c for c in data["running"] + data["waiting"] if c["id"] == campaign.pk), None)

    def wait_for(self, campaign: Campaign, limited_by: str, timeout: float = 15) -> dict:
        seen: list[str] = []

        def check() -> bool:
            entry = self.campaign(campaign)
            seen.append(entry["limited_by"] if entry else "(not shown)")
            return seen[-1] == limited_by

        try:
            wait_until(check, timeout, f"{campaign.name} to be limited by {limited_by}")
        except AssertionError as error:
            raise AssertionError(f"{error}; saw {sorted(set(seen))}") from None
        entry = self.campaign(campaign)
        assert entry is not None
        return entry


@pytest.fixture
def page(admin_client) -> StatusPage:
    return StatusPage(admin_client)


def test_each_campaign_says_what_holds_it_back(processes, sink_server, smtp_sink, page):
    settings_row(max_running_campaigns=3)
    own_rate = campaign_with(600, "own-", name="Own rate", rate_limit=10, smtp_server=sink_server)
    slow_server = SmtpServerFactory(port=smtp_sink.port, rate_limit=10)
    by_server = campaign_with(600, "srv-", name="Slow server", smtp_server=slow_server)
    DomainThrottle.objects.create(domain="gmail.com", rate_limit=10)
    by_domain = campaign_with(
        600, "dom-", domain="gmail.com", name="To gmail", smtp_server=sink_server
    )
    no_slot = campaign_with(50, "wait-", name="No slot")
    later = campaign_with(50, "later-", name="Later", send_at=timezone.now() + timedelta(hours=2))
    processes.system(senders=1, concurrency=2)

    processes.manage("campaign", "start", str(own_rate.pk), str(by_server.pk), str(by_domain.pk))
    wait_until(lambda: status(by_domain) == "running", 10, "three campaigns running")
    processes.manage("campaign", "start", str(no_slot.pk), str(later.pk))

    assert (
        "its rate limit (10/s)" in page.wait_for(own_rate, "campaign_rate")["explanation"]["text"]
    )
    server = page.wait_for(by_server, "smtp_server")
    assert server["explanation"]["fix"] == "/admin/mailer/smtpserver/"
    domain = page.wait_for(by_domain, "domain:gmail.com")
    assert "gmail.com" in domain["explanation"]["text"]
    slot = page.wait_for(no_slot, "running_slots")
    assert slot["status"] == "scheduled" and "3 of 3" in slot["explanation"]["text"]
    assert slot["explanation"]["fix"] == SETTINGS_URL
    assert page.wait_for(later, "schedule")["status"] == "scheduled"

    def all_sending() -> bool:
        return all(c["rate"] > 0 for c in page.get()["running"])

    wait_until(all_sending, 10, "every running campaign to show a rate")
    data = page.get()
    running = {c["id"]: c for c in data["running"]}
    assert set(running) == {own_rate.pk, by_server.pk, by_domain.pk}
    for entry in running.values():
        assert 0 < entry["rate"] <= 11 and entry["eta_seconds"] > 0, running
    assert data["capacity"]["worker_slots"] == 2
    assert {w["hostname"].split("@")[0] for w in data["workers"]} == {"sender1", "dispatcher"}
    sender = next(w for w in data["workers"] if w["hostname"].startswith("sender1"))
    assert sender["concurrency"] == 2 and sender["rss_bytes"] > 10_000_000
    assert sender["heartbeat_age"] < HEARTBEAT_TTL
    events = {(w["event"], w.get("campaign_id")) for w in data["warnings"]}
    assert ("campaign held back", no_slot.pk) in events
    assert ("rate limit reached", own_rate.pk) in events


def test_campaigns_sharing_the_global_rate_say_so(processes, sink_server, smtp_sink, page):
    settings_row(message_rate=30)
    first = campaign_with(900, "a-", name="First")
    second = campaign_with(900, "b-", name="Second")
    processes.system(senders=1, concurrency=2)

    processes.manage("campaign", "start", str(first.pk), str(second.pk))

    for campaign in (first, second):
        entry = page.wait_for(campaign, "global_rate")
        assert entry["rate_limit"] == pytest.approx(15, abs=0.01)
        assert "share of the global rate" in entry["explanation"]["text"]


def test_a_campaign_paused_by_errors_says_which(processes, sink_server, smtp_sink, page):
    settings_row(max_send_errors=20)
    campaign = campaign_with(300, "bad-", name="Bad list")
    smtp_sink.handler.rcpt_reply = lambda address: "550 5.1.1 mailbox unknown"
    processes.system(senders=1, concurrency=2)

    processes.manage("campaign", "start", str(campaign.pk))

    entry = page.wait_for(campaign, "errors")
    assert entry["status"] == "paused"
    assert "failed sends" in entry["explanation"]["text"]
    assert "550 5.1.1 mailbox unknown" in entry["explanation"]["text"]
    data = page.get()
    assert any(w["event"] == "campaign paused" for w in data["warnings"])
    server = next(s for s in data["smtp_servers"] if s["id"] == sink_server.pk)
    assert server["recent_errors"][0]["reply"] == "550 5.1.1 mailbox unknown"


def test_a_second_campaign_waits_for_a_slot_until_the_setting_is_raised(
    processes, sink_server, smtp_sink, page, admin_client
):
    """The issue's "done when": the page says why, where to change it, and it then sends."""
    settings_row(max_running_campaigns=1)
    first = campaign_with(2000, "one-", name="First", rate_limit=50)
    second = campaign_with(2000, "two-", name="Second", rate_limit=50)
    processes.system(senders=1, concurrency=2)

    processes.manage("campaign", "start", str(first.pk))
    wait_until(lambda: status(first) == "running", 10, "the first to run")
    processes.manage("campaign", "start", str(second.pk))
    waiting = page.wait_for(second, "running_slots")
    assert "max running campaigns" in waiting["explanation"]["text"]

    changed = time.monotonic()
    response = admin_client.post(
        waiting["explanation"]["fix"], performance_form(max_running_campaigns="2")
    )
    assert response.status_code == 302

    wait_until(
        lambda: any(m.campaign == str(second.pk) for m in smtp_sink.messages()),
        5,
        "the second campaign's first message",
    )
    assert time.monotonic() - changed < 5
    sending = page.wait_for(second, "campaign_rate", timeout=5)
    assert sending["status"] == "running"


def test_a_settings_change_reaches_running_workers_within_five_seconds(
    processes, sink_server, smtp_sink
):
    campaign = campaign_with(4000, "fast-", domain="gmail.com", rate_limit=100)
    processes.system(senders=1, concurrency=2)
    processes.manage("campaign", "start", str(campaign.pk))
    wait_until(lambda: len(smtp_sink.messages()) > 400, 15, "sending at full speed")

    # A domain throttle is read by the batches themselves (no dispatcher in between), and a
    # batch lasts up to 20 s: this shows running batches pick it up.
    DomainThrottle.objects.create(domain="gmail.com", rate_limit=10)
    changed = time.monotonic()
    time.sleep(6)

    times = [m.at for m in smtp_sink.messages()]
    assert rate_between(times, changed - 3, changed) > 80
    assert rate_between(times, changed + 5, changed + 6) <= 12


def test_a_killed_worker_leaves_the_status_page_after_its_heartbeat_expires(
    processes, sink_server, smtp_sink, page
):
    processes.system(senders=2, concurrency=1)
    wait_until(lambda: len(page.get()["workers"]) == 3, 10, "three workers online")

    processes.kill("sender2")
    killed = time.monotonic()
    wait_until(
        lambda: all(not w["hostname"].startswith("sender2") for w in page.get()["workers"]),
        HEARTBEAT_TTL + 3,
        "the killed worker to drop off",
    )
    assert time.monotonic() - killed <= HEARTBEAT_TTL + 3
    data = page.get()
    assert data["capacity"]["worker_slots"] == 1


def test_queued_batches_show_in_the_send_queue_when_no_sender_is_online(
    processes, sink_server, smtp_sink, page
):
    campaign = campaign_with(100, "q-")
    processes.worker("dispatcher", "dispatch,transactional,default", 2)
    processes.beat()

    processes.manage("campaign", "start", str(campaign.pk))

    wait_until(lambda: page.get()["queues"]["send"] >= 1, 10, "batches waiting in `send`")
    data = page.get()
    assert data["capacity"]["worker_slots"] == 0
    assert data["queues"]["dispatch"] == 0
