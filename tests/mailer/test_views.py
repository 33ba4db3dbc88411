"""The status page, its JSON, the SMTP check button, /metrics and Settings → Performance."""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import reverse

from campaigns.models import Campaign
from mailer import backoff, dispatcher
from mailer.batch import run_batch
from mailer.models import PerformanceSettings
from mailer.smtp import ServerConfig
from tests.factories import (
    CampaignFactory,
    MailingListFactory,
    SmtpServerFactory,
    audience,
    performance_form,
)

pytestmark = pytest.mark.django_db

SETTINGS_URL = "/admin/mailer/performancesettings/1/change/"
VALID = performance_form()


def errors(response) -> list[str]:
    return re.findall(r'<ul class="errorlist"[^>]*>\s*<li>(.*?)</li>', response.content.decode())


def test_the_status_page_is_for_staff_only(client, admin_client):
    assert client.get("/admin/status/").status_code == 302
    response = admin_client.get("/admin/status/")
    assert response.status_code == 200
    assert b"Running campaigns" in response.content and b"Workers online" in response.content


def test_the_status_json_needs_staff_or_the_metrics_token(client, admin_client, settings):
    settings.METRICS_TOKEN = "s3cret"
    refused = client.get("/admin/status.json")
    assert refused.status_code == 401 and "METRICS_TOKEN" in refused.json()["error"]
    assert client.get("/admin/status.json", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    by_token = client.get("/admin/status.json", HTTP_AUTHORIZATION="Bearer s3cret")
    assert by_token.status_code == 200
    assert set(by_token.json()) >= {"running", "waiting", "workers", "queues", "smtp_servers"}
    assert admin_client.get("/admin/status.json").status_code == 200


def test_without_a_token_configured_only_staff_may_read_the_metrics(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")


def test_metrics_report_sends_per_campaign_and_queue_depths(
    client, settings, sink_server, smtp_sink
):
    settings.METRICS_TOKEN = "s3cret"
    mailing_list = MailingListFactory()
    audience(mailing_list, 4)
    campaign = CampaignFactory(
        name="Spring", status=Campaign.Status.SCHEDULED, lists=[mailing_list]
    )
    dispatcher.campaign_begin(campaign.pk)
    dispatcher.share_limits(PerformanceSettings.load())
    CampaignFactory(name="Later", status=Campaign.Status.SCHEDULED, send_at="2099-01-01T00:00Z")
    run_batch(batch_id=str(uuid.uuid4()))
    # Still running until the dispatcher finishes it: its counters are reported.
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret")

    body = response.content.decode()
    assert response.status_code == 200
    assert f'mailer_campaign_sent_total{{campaign="Spring",campaign_id="{campaign.pk}",' in body
    assert re.search(r'mailer_campaign_sent_total\{campaign="Spring".*\} 4\.0', body)
    assert re.search(
        r'mailer_campaign_limited_by\{campaign="Later".*limited_by="schedule"\} 1', body
    )
    assert 'mailer_queue_depth{queue="send"} 0.0' in body
    assert "mailer_worker_slots 0.0" in body


def test_a_server_that_complained_shows_its_throttled_rate(
    admin_client, client, settings, sink_server
):
    sink_server.rate_limit = 100
    sink_server.save()
    backoff.cut(ServerConfig.from_model(sink_server), "421 4.7.0 Too many messages, slow down")
    page = admin_client.get("/admin/status/").content.decode()
    assert "Throttled by the server: 50/s of 100/s" in page
    assert "421 4.7.0 Too many messages, slow down" in page
    settings.METRICS_TOKEN = "s3cret"
    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").content.decode()
    assert f'mailer_smtp_server_backoff_rate{{server="{sink_server.name}"}} 50.0' in body


def test_the_check_button_reports_each_step(admin_client, smtp_sink):
    server = SmtpServerFactory(name="sink", port=smtp_sink.port)
    response = admin_client.post(f"/admin/status/smtp/server-{server.pk}/check/", follow=True)
    text = response.content.decode()
    assert "ok: connected" in text and "ok: EHLO" in text

    nowhere = SmtpServerFactory(name="nowhere", port=1)
    response = admin_client.post(f"/admin/status/smtp/server-{nowhere.pk}/check/", follow=True)
    assert "FAILED: connect" in response.content.decode()
    assert "Is the host and port right" in response.content.decode()


def test_settings_show_the_deployment_figures_beside_the_knobs(admin_client):
    response = admin_client.get(SETTINGS_URL)
    text = response.content.decode()
    assert "Worker slots online" in text and "DB_POOL_MAX_SIZE" in text
    assert "SENDER_CONCURRENCY" in text
    assert reverse("admin:mailer_domainthrottle_changelist") in text
    assert reverse("admin:mailer_smtpserver_changelist") in text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"message_rate": "0"}, "A rate is at least 1 message per second"),
        ({"message_rate": "-5"}, "A rate is at least 1 message per second"),
        ({"max_running_campaigns": "0"}, "At least one campaign must be able to run"),
        (
            {"message_rate": "10", "default_campaign_rate": "50"},
            "The default campaign rate (50/s) is above the global rate (10/s)",
        ),
        ({"message_rate": "2", "batch_size": "100"}, "Use 40 or less, or raise the rates"),
        ({"max_attempts": "20"}, "retries would go on for"),
    ],
)
def test_settings_that_cannot_work_are_refused_with_the_reason(admin_client, changes, message):
    response = admin_client.post(SETTINGS_URL, {**VALID, **changes})
    assert response.status_code == 200
    assert any(message in e for e in errors(response)), errors(response)
    assert PerformanceSettings.load().max_attempts == 5


def test_good_settings_are_saved_and_say_when_they_apply(admin_client):
    response = admin_client.post(SETTINGS_URL, {**VALID, "message_rate": "200"}, follow=True)
    assert PerformanceSettings.load().message_rate == 200
    assert "within 2 seconds" in response.content.decode()


def test_the_campaign_report_shows_outcomes_grouped_errors_and_actions(
    admin_client, sink_server, smtp_sink
):
    mailing_list = MailingListFactory()
    refused = {s.email for s in audience(mailing_list, 10)[:3]}
    smtp_sink.handler.rcpt_reply = lambda a: "550 5.1.1 unknown" if a in refused else None
    campaign = CampaignFactory(status=Campaign.Status.SCHEDULED, lists=[mailing_list])
    dispatcher.campaign_begin(campaign.pk)
    dispatcher.share_limits(PerformanceSettings.load())
    run_batch(batch_id=str(uuid.uuid4()))

    url = reverse("admin:campaigns_campaign_report", args=[campaign.pk])
    text = admin_client.get(url).content.decode()
    outcomes = re.search(r'<tr id="outcomes">(.*?)</tr>', text).group(1)
    assert re.findall(r"<td>(\d+)</td>", outcomes)[:2] == ["7", "3"]
    assert "550 5.1.1 unknown" in text
    assert 'class="chart"' in text
    for action in ("pause", "cancel"):
        assert reverse("admin:campaigns_campaign_act", args=[campaign.pk, action]) in text

    admin_client.post(reverse("admin:campaigns_campaign_act", args=[campaign.pk, "pause"]))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED


def test_the_campaign_list_links_each_campaign_to_its_report(admin_client):
    campaign = CampaignFactory()
    text = admin_client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert reverse("admin:campaigns_campaign_report", args=[campaign.pk]) in text
    assert "<progress" in text
