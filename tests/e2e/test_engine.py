"""The sending engine with real worker processes, real PostgreSQL, Redis and SMTP: fairness,
exact rates, running slots, crashes, pause and cancel, SMTP replies, domain throttles."""

from __future__ import annotations

import json
import re
import time
from collections import Counter

import pytest
from django.db.models import Count

from campaigns.models import Campaign
from mailer.models import Delivery, DomainThrottle
from tests.e2e.helpers import (
    bulk_audience,
    campaign_with,
    largest_one_second_burst,
    rate_between,
    settings_row,
    status,
    wait_until,
)
from tests.factories import CampaignFactory, MailingListFactory, SmtpServerFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def counts_when(messages, total: int, fraction: float) -> Counter:
    """Messages per campaign among the first `fraction` of all to reach the SMTP server."""
    arrived = sorted(messages, key=lambda m: m.at)[: int(total * fraction)]
    return Counter(m.campaign for m in arrived)


# The scheduler shares slot time a chunk at a time (batch size 50): at any instant four chunks
# are in flight, two of which may be one campaign's, so counts taken at an arbitrary message
# can differ by two chunks on top of what the sharing itself lets drift.
IN_FLIGHT = 2 * 50


def assert_shared(sent: Counter, weights: dict[str, int], fraction: float) -> None:
    """Each campaign's messages per unit of weight agree to within 10% and the chunks in flight."""
    per_weight = {c: sent[c] / w for c, w in weights.items()}
    low, high = min(per_weight.values()), max(per_weight.values())
    assert high - low <= 0.10 * low + IN_FLIGHT, (fraction, sent)


def test_three_campaigns_started_together_send_together_and_fairly(
    processes, sink_server, smtp_sink
):
    campaigns = [campaign_with(3000, f"c{n}-") for n in range(3)]
    processes.system(senders=2, concurrency=2)

    processes.manage("campaign", "start", *[str(c.pk) for c in campaigns])
    wait_until(lambda: all(status(c) == "finished" for c in campaigns), 120, "all finished")

    # Measured at the SMTP server, as messages arrive: the database's counters move a chunk at
    # a time and would add the chunks in flight to the comparison.
    messages = smtp_sink.messages()
    assert len(messages) == 9000
    first = [min(m.at for m in messages if m.campaign == str(c.pk)) for c in campaigns]
    assert max(first) - min(first) <= 2.0, first
    for fraction in (0.25, 0.5, 0.75):
        assert_shared(
            counts_when(messages, 9000, fraction), {str(c.pk): 1 for c in campaigns}, fraction
        )


def test_weights_share_the_workers(processes, sink_server, smtp_sink):
    heavy = campaign_with(3000, "h-", weight=2)
    light = [campaign_with(3000, f"l{n}-") for n in range(2)]
    processes.system(senders=2, concurrency=2)

    processes.manage("campaign", "start", str(heavy.pk), *[str(c.pk) for c in light])
    wait_until(lambda: status(heavy) == "finished", 120, "the heavy campaign to finish")

    messages = smtp_sink.messages()
    for fraction in (0.25, 0.5):
        weights = {str(heavy.pk): 2, str(light[0].pk): 1, str(light[1].pk): 1}
        assert_shared(counts_when(messages, 9000, fraction), weights, fraction)
    wait_until(lambda: all(status(c) == "finished" for c in light), 60, "the others to finish")


def test_global_and_campaign_rates_hold_exactly(processes, sink_server, smtp_sink):
    settings_row(message_rate=250)
    # Enough recipients that neither campaign finishes before the test cancels it (40 s of
    # sending each): with 2000 and 3000 (20 s), a loaded machine's slow start and slow
    # `manage.py` found both finished and the cancel failed (one loaded CI run).
    limited = campaign_with(100 * 40, "a-", rate_limit=100)
    free = campaign_with(150 * 40, "b-")
    processes.system(senders=2, concurrency=2)

    processes.manage("campaign", "start", str(limited.pk), str(free.pk))
    wait_until(lambda: len(smtp_sink.messages()) > 0, 30, "the first message")
    start = time.monotonic() + 2  # past the start-up
    time.sleep(2 + 10 + 0.5)
    messages = smtp_sink.messages()
    shown = json.loads(
        processes.manage("campaign", "status", str(limited.pk), str(free.pk), "--json")
    )
    processes.manage("campaign", "cancel", str(limited.pk), str(free.pk))
    by_id = {row["id"]: row for row in shown}
    assert by_id[limited.pk]["limited_by"] == "campaign_rate"
    assert by_id[free.pk]["limited_by"] == "global_rate"
    assert 90 <= by_id[limited.pk]["rate"] <= 110

    everything = [m.at for m in messages]
    of_limited = [m.at for m in messages if m.campaign == str(limited.pk)]
    total_rate = rate_between(everything, start, start + 10)
    limited_rate = rate_between(of_limited, start, start + 10)
    assert 250 * 0.95 <= total_rate <= 250 * 1.05, total_rate
    assert 100 * 0.95 <= limited_rate <= 100 * 1.05, limited_rate
    window = [t for t in everything if start <= t < start + 10]
    assert largest_one_second_burst(window) <= 250 * 1.15
    assert largest_one_second_burst([t for t in of_limited if start <= t < start + 10]) <= 115


def test_a_campaign_beyond_the_running_slots_waits_and_says_why(processes, sink_server, smtp_sink):
    settings_row(max_running_campaigns=1)
    # Held back (10/s) until the checks below are done, however slowly a loaded machine runs
    # them (each `manage` starts a process); then let go at full speed.
    first = campaign_with(1500, "first-", rate_limit=10)
    second = campaign_with(300, "second-")
    processes.system(senders=2, concurrency=2)

    processes.manage("campaign", "start", str(first.pk))
    wait_until(lambda: status(first) == "running", 10, "the first campaign to run")
    processes.manage("campaign", "start", str(second.pk))
    wait_until(
        lambda: Campaign.objects.get(pk=second.pk).status_reason.startswith("waiting"),
        10,
        "the reason to be shown",
    )
    shown = json.loads(processes.manage("campaign", "status", str(second.pk), "--json"))
    assert shown["status"] == "scheduled"
    assert shown["limited_by"] == "running_slots"
    assert shown["waiting_reason"].startswith("waiting for a running slot: 1 of 1 in use")
    time.sleep(2)  # several ticks while it waits
    assert status(second) == "scheduled"
    assert status(first) == "running"

    Campaign.objects.filter(pk=first.pk).update(rate_limit=None)
    wait_until(lambda: status(second) == "finished", 60, "the second campaign to finish")
    first.refresh_from_db()
    second.refresh_from_db()
    assert (second.started_at - first.finished_at).total_seconds() <= 2.0
    held = re.findall(
        rf'event="campaign held back" campaign_id={second.pk}\b', processes.log("dispatcher")
    )
    assert len(held) == 1


def test_a_killed_worker_loses_nobody(processes, sink_server, smtp_sink):
    campaign = campaign_with(3000, "k-", rate_limit=300)
    processes.system(senders=2, concurrency=2)

    processes.manage("campaign", "start", str(campaign.pk))
    wait_until(lambda: len(smtp_sink.messages()) >= 1000, 60, "a third of the campaign")
    processes.kill("sender1")  # kill -9 of the worker and its pool processes
    processes.worker("sender3", "send", 2)
    wait_until(lambda: status(campaign) == "finished", 120, "the campaign to finish")

    received = smtp_sink.recipients()
    expected = {f"k-{n}@example.com" for n in range(3000)}
    assert set(received) == expected, "somebody was lost"
    twice = [address for address, times in received.items() if times > 1]
    # Only a message in an SMTP transaction at the instant of the kill may go twice: at most
    # one per killed pool process.
    assert len(twice) <= 2, twice
    campaign.refresh_from_db()
    assert campaign.sent == 3000 and campaign.failed == 0
    assert not Delivery.objects.filter(campaign=campaign).exclude(status="sent").exists()


def test_pause_stops_sending_and_resume_continues_without_loss(processes, sink_server, smtp_sink):
    campaign = campaign_with(1500, "p-", rate_limit=200)
    processes.system(senders=2, concurrency=2)

    processes.manage("campaign", "start", str(campaign.pk))
    wait_until(lambda: len(smtp_sink.messages()) >= 300, 30, "sending to be under way")
    processes.manage("campaign", "pause", str(campaign.pk))
    paused_at = time.monotonic()
    time.sleep(1.0)
    settled = len(smtp_sink.messages())
    time.sleep(2.0)
    assert len(smtp_sink.messages()) == settled, "it went on sending while paused"
    late = [m for m in smtp_sink.messages() if m.at > paused_at]
    assert len(late) <= 50, "more than a chunk in flight went out after the pause"
    assert status(campaign) == "paused"

    processes.manage("campaign", "resume", str(campaign.pk))
    wait_until(lambda: status(campaign) == "finished", 60, "the campaign to finish")
    received = smtp_sink.recipients()
    assert set(received) == {f"p-{n}@example.com" for n in range(1500)}
    assert max(received.values()) == 1


def test_cancel_stops_for_good(processes, sink_server, smtp_sink):
    campaign = campaign_with(1500, "x-", rate_limit=200)
    processes.system(senders=1, concurrency=2)

    processes.manage("campaign", "start", str(campaign.pk))
    wait_until(lambda: len(smtp_sink.messages()) >= 200, 30, "sending to be under way")
    processes.manage("campaign", "cancel", str(campaign.pk))
    time.sleep(1.0)
    settled = len(smtp_sink.messages())
    time.sleep(3.0)

    assert len(smtp_sink.messages()) == settled < 1500
    assert status(campaign) == "cancelled"
    assert Delivery.objects.filter(campaign=campaign, status="sending").count() == 0


def test_temporary_replies_are_retried_and_permanent_ones_are_not(
    processes, sink_server, smtp_sink
):
    settings_row(retry_delay=1)
    campaign = campaign_with(300, "r-")
    busy = {f"r-{n}@example.com" for n in range(0, 300, 10)}  # 421 the first time
    gone = {f"r-{n}@example.com" for n in range(5, 300, 10)}  # 550 always
    seen: set[str] = set()

    def reply(address: str) -> str | None:
        if address in gone:
            return "550 5.1.1 mailbox unknown"
        if address in busy and address not in seen:
            seen.add(address)
            return "421 4.3.2 busy, try later"
        return None

    smtp_sink.handler.rcpt_reply = reply
    processes.system(senders=1, concurrency=2)

    processes.manage("campaign", "start", str(campaign.pk))
    wait_until(lambda: status(campaign) == "finished", 60, "the campaign to finish")

    received = smtp_sink.recipients()
    assert set(received) == {f"r-{n}@example.com" for n in range(300)} - gone
    assert max(received.values()) == 1
    failed = Delivery.objects.filter(campaign=campaign, status="failed")
    assert {d.email for d in failed} == gone
    assert all(d.attempts == 1 and d.reply.startswith("550 5.1.1") for d in failed)
    retried = Delivery.objects.filter(campaign=campaign, email__in=busy)
    assert all(d.status == "sent" and d.attempts == 2 for d in retried)
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.failed) == (270, 30)


def test_a_server_that_refuses_the_login_pauses_the_campaign(processes, monkeypatch, db):
    from tests.smtp_sink import SmtpSink

    sink = SmtpSink(password="the-right-one").start()
    try:
        SmtpServerFactory(
            name="provider",
            port=sink.port,
            username="mailer",
            password_env="SMTP_PASSWORD_PROVIDER",
        )
        processes.env["SMTP_PASSWORD_PROVIDER"] = "a-wrong-one"
        campaign = campaign_with(100, "auth-")
        processes.system(senders=1, concurrency=1)

        processes.manage("campaign", "start", str(campaign.pk))
        wait_until(lambda: status(campaign) == "paused", 30, "the campaign to pause")
    finally:
        sink.stop()
    campaign.refresh_from_db()
    assert "SMTP server provider refused the login for 'mailer'" in campaign.status_reason
    assert Delivery.objects.filter(campaign=campaign, status="pending").count() == 100


def test_a_domain_throttle_holds_while_other_domains_go_at_full_speed(
    processes, sink_server, smtp_sink
):
    DomainThrottle.objects.create(domain="gmail.com", rate_limit=20)
    mailing_list = MailingListFactory()
    emails = [f"g{n}@gmail.com" for n in range(240)] + [f"o{n}@other.example" for n in range(600)]
    bulk_audience(mailing_list, emails)
    campaign = CampaignFactory(lists=[mailing_list])
    processes.system(senders=2, concurrency=2)

    processes.manage("campaign", "start", str(campaign.pk))
    wait_until(lambda: status(campaign) == "finished", 60, "the campaign to finish")

    messages = smtp_sink.messages()
    started = min(m.at for m in messages)
    gmail = sorted(m.at for m in messages if m.rcpt_to.endswith("@gmail.com"))
    other = sorted(m.at for m in messages if m.rcpt_to.endswith("@other.example"))
    outcomes = dict(
        Delivery.objects.filter(campaign=campaign)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    assert len(gmail) == 240 and len(other) == 600, (outcomes, processes.log("dispatcher")[-2000:])
    # The other domain is not held back by gmail's limit: all of it went within a few seconds.
    assert other[-1] - started < 5, other[-1] - started
    # gmail at 20/s: measured over ten seconds in the middle of its run.
    per_second = [len([t for t in gmail if started + n <= t < started + n + 1]) for n in range(14)]
    assert 20 * 0.95 <= rate_between(gmail, started + 1, started + 11) <= 20 * 1.05, per_second
    assert largest_one_second_burst(gmail) <= 23


def test_a_test_send_does_not_wait_behind_bulk_sending(processes, sink_server, smtp_sink):
    bulk = campaign_with(3000, "bulk-", rate_limit=200)
    processes.system(senders=1, concurrency=2)
    processes.manage("campaign", "start", str(bulk.pk))
    wait_until(lambda: len(smtp_sink.messages()) >= 200, 30, "bulk sending to be under way")

    processes.manage("campaign", "test", str(bulk.pk), "--to", "boss@example.com")
    # Measured from when the command has queued it: how long the command itself takes to
    # start (a Python process importing the project, slow on a loaded machine) is not what
    # this test is about, and a test send stuck behind the bulk would take 15 s.
    asked = time.monotonic()
    wait_until(
        lambda: "boss@example.com" in smtp_sink.recipients(), 10, "the test message to arrive"
    )

    arrived = next(m.at for m in smtp_sink.messages() if m.rcpt_to == "boss@example.com")
    assert arrived - asked < 3.0
    assert status(bulk) == "running", "the test arrived while bulk sending went on"
    processes.manage("campaign", "cancel", str(bulk.pk))
