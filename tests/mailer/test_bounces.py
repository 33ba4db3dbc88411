"""Bounces and complaints from each provider's webhook (payloads in the shape each provider
documents) and from the generic endpoint: recorded, tied to the campaign, and blocklisting
past the thresholds."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from mailer.models import Bounce, BounceSettings, Delivery
from subscribers.models import Subscriber
from tests.factories import CampaignFactory, SubscriberFactory

pytestmark = pytest.mark.django_db

AUTH = "Basic " + base64.b64encode(b"hooks:test-secret").decode()


@pytest.fixture
def sent():
    """A subscriber who got a campaign an hour ago."""
    subscriber = SubscriberFactory(email="john@example.com")
    campaign = CampaignFactory()
    Delivery.objects.create(
        campaign=campaign,
        subscriber=subscriber,
        email=subscriber.email,
        status="sent",
        sent_at=timezone.now() - timedelta(hours=1),
    )
    return subscriber, campaign


def status_of(subscriber: Subscriber) -> str:
    return Subscriber.objects.get(pk=subscriber.pk).status


def test_a_postmark_hard_bounce_blocklists_and_names_the_campaign(client, sent):
    subscriber, campaign = sent
    payload = {
        "RecordType": "Bounce",
        "ID": 4323372036854775807,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Name": "Hard bounce",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Description": "The server was unable to deliver your message (ex: unknown user, "
        "mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": "john@example.com",
        "From": "sender@example.com",
        "BouncedAt": "2026-11-29T16:33:54.9070259Z",
        "Inactive": True,
        "CanActivate": True,
        "MessageStream": "outbound",
    }
    response = client.post(
        "/webhooks/anymail/postmark/tracking/",
        json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=AUTH,
    )
    assert response.status_code == 200
    bounce = Bounce.objects.get()
    assert (bounce.kind, bounce.source, bounce.campaign_id) == ("hard", "postmark", campaign.pk)
    assert status_of(subscriber) == "blocklisted"


def test_a_postmark_soft_bounce_is_counted_only(client, sent):
    subscriber, _ = sent
    payload = {
        "RecordType": "Bounce",
        "ID": 1,
        "Type": "SoftBounce",
        "TypeCode": 4096,
        "MessageID": "b2c2",
        "Description": "Mailbox full",
        "Email": "john@example.com",
        "BouncedAt": "2026-11-29T16:33:54Z",
    }
    client.post(
        "/webhooks/anymail/postmark/tracking/",
        json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=AUTH,
    )
    assert Bounce.objects.get().kind == "soft"
    assert status_of(subscriber) == "enabled"


def test_a_webhook_without_the_secret_is_refused(client, sent):
    response = client.post(
        "/webhooks/anymail/postmark/tracking/",
        json.dumps({"RecordType": "Bounce", "Type": "HardBounce", "Email": "john@example.com"}),
        content_type="application/json",
    )
    assert response.status_code in (400, 401, 403)
    assert not Bounce.objects.exists()


@pytest.mark.usefixtures("sent")
def test_sendgrid_bounces_and_spam_reports(client):
    SubscriberFactory(email="other@example.com")
    events = [
        {
            "email": "john@example.com",
            "timestamp": int(time.time()),
            "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
            "event": "bounce",
            "sg_event_id": "6g4ZI7SA-xmRDv57GoPIPw==",
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "reason": "500 unknown recipient",
            "status": "5.0.0",
            "type": "bounce",
        },
        {
            "email": "other@example.com",
            "timestamp": int(time.time()),
            "event": "spamreport",
            "sg_event_id": "pUUQN7qoSJKe5THKMhr4Mw==",
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.1",
        },
        {"email": "john@example.com", "timestamp": int(time.time()), "event": "open"},
    ]
    response = client.post(
        "/webhooks/anymail/sendgrid/tracking/",
        json.dumps(events),
        content_type="application/json",
        HTTP_AUTHORIZATION=AUTH,
    )
    assert response.status_code == 200
    kinds = dict(Bounce.objects.values_list("email", "kind"))
    assert kinds == {"john@example.com": "hard", "other@example.com": "complaint"}
    assert Subscriber.objects.filter(status="blocklisted").count() == 2


def mailgun_signature(timestamp: str, token: str) -> str:
    return hmac.new(b"test-signing-key", f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


def mailgun_event(event_data: dict, *, signed: bool = True) -> str:
    timestamp, token = str(int(time.time())), "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    signature = mailgun_signature(timestamp, token) if signed else "0" * 64
    return json.dumps(
        {
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": event_data,
        }
    )


MAILGUN_FAILED = {
    "event": "failed",
    "id": "G9Bn5sl1TC6nu79C8C0bwg",
    "timestamp": 1521233123.501324,
    "severity": "permanent",
    "reason": "bounce",
    "recipient": "john@example.com",
    "message": {"headers": {"message-id": "20130503182626.18666.16540@example.com"}},
    "delivery-status": {
        "code": 550,
        "message": "No such mailbox",
        "description": "The email account that you tried to reach does not exist.",
    },
}


def test_a_mailgun_permanent_failure_is_a_hard_bounce_and_a_temporary_one_soft(client, sent):
    response = client.post(
        "/webhooks/anymail/mailgun/tracking/",
        mailgun_event(MAILGUN_FAILED),
        content_type="application/json",
        HTTP_AUTHORIZATION=AUTH,
    )
    assert response.status_code == 200
    temporary = {**MAILGUN_FAILED, "severity": "temporary", "id": "other"}
    client.post(
        "/webhooks/anymail/mailgun/tracking/",
        mailgun_event(temporary),
        content_type="application/json",
        HTTP_AUTHORIZATION=AUTH,
    )
    assert sorted(Bounce.objects.values_list("kind", flat=True)) == ["hard", "soft"]


def test_a_mailgun_event_with_a_wrong_signature_is_refused(client, sent):
    response = client.post(
        "/webhooks/anymail/mailgun/tracking/",
        mailgun_event(MAILGUN_FAILED, signed=False),
        content_type="application/json",
        HTTP_AUTHORIZATION=AUTH,
    )
    assert response.status_code == 400
    assert not Bounce.objects.exists()


def ses_notification(message: dict) -> tuple[str, dict]:
    message_id = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
    body = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(message),
        "Timestamp": "2026-11-29T00:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+..",
        "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem",
    }
    headers = {
        "HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification",
        "HTTP_X_AMZ_SNS_MESSAGE_ID": message_id,
        "HTTP_AUTHORIZATION": AUTH,
    }
    return json.dumps(body), headers


@pytest.mark.usefixtures("sent")
def test_amazon_ses_bounce_and_complaint_notifications(client):
    other = CampaignFactory()
    bounce = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": "john@example.com",
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": "2026-11-29T00:00:00.000Z",
            "feedbackId": "0000013786031775-fea503bc-7497-49e1-881b-a0379bb037d3-000000",
        },
        "mail": {
            "timestamp": "2026-11-28T23:59:59.000Z",
            "source": "news@example.com",
            "messageId": "0000013786031775-163e3910-53eb-4c8e-a04a-f29debf88a84-000000",
            "destination": ["john@example.com"],
            "headersTruncated": False,
            # SES sends the message's headers back when asked: ours name the campaign.
            "headers": [{"name": "X-Campaign-ID", "value": str(other.pk)}],
        },
    }
    body, headers = ses_notification(bounce)
    response = client.post(
        "/webhooks/anymail/amazon_ses/tracking/", body, content_type="text/plain", **headers
    )
    assert response.status_code == 200
    recorded = Bounce.objects.get()
    assert (recorded.kind, recorded.campaign_id, recorded.source) == (
        "hard",
        other.pk,
        "amazon_ses",
    )

    transient = json.loads(json.dumps(bounce))
    transient["bounce"]["bounceType"] = "Transient"
    transient["bounce"]["bounceSubType"] = "MailboxFull"
    body, headers = ses_notification(transient)
    client.post(
        "/webhooks/anymail/amazon_ses/tracking/", body, content_type="text/plain", **headers
    )
    complaint = {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": "john@example.com"}],
            "timestamp": "2026-11-29T00:00:01.000Z",
            "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000",
            "complaintFeedbackType": "abuse",
        },
        "mail": bounce["mail"],
    }
    body, headers = ses_notification(complaint)
    client.post(
        "/webhooks/anymail/amazon_ses/tracking/", body, content_type="text/plain", **headers
    )
    assert sorted(Bounce.objects.values_list("kind", flat=True)) == ["complaint", "hard", "soft"]


def test_the_generic_endpoint_records_good_items_and_explains_bad_ones(client, settings, sent):
    settings.BOUNCE_WEBHOOK_TOKEN = "t0ken"
    subscriber, campaign = sent
    items = [
        {"email": "john@example.com", "type": "soft", "description": "mailbox full"},
        {"email": "john@example.com", "type": "bounce"},
        {"email": "not-an-address", "type": "hard"},
        {"email": "nobody@example.com", "type": "hard", "at": "2026-11-29T10:00:00Z"},
    ]
    refused = client.post("/webhooks/bounces/", json.dumps(items), content_type="application/json")
    assert refused.status_code == 401

    response = client.post(
        "/webhooks/bounces/",
        json.dumps(items),
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer t0ken",
    )

    assert response.status_code == 207
    result = response.json()
    assert result["recorded"] == 2
    assert [r["index"] for r in result["refused"]] == [1, 2]
    assert "'type' must be 'hard', 'soft' or 'complaint'" in result["refused"][0]["error"]
    soft = Bounce.objects.get(kind="soft")
    assert (soft.campaign_id, soft.subscriber_id) == (campaign.pk, subscriber.pk)
    assert status_of(subscriber) == "enabled"


def test_soft_bounces_blocklist_only_past_their_threshold(sent):
    from mailer.bounces import bounce_record

    subscriber, _ = sent
    BounceSettings.objects.update_or_create(pk=1, defaults={"soft_bounces": 3})
    for _ in range(2):
        bounce_record(email=subscriber.email, kind="soft", source="api")
    assert status_of(subscriber) == "enabled"
    bounce_record(email=subscriber.email, kind="soft", source="api")
    assert status_of(subscriber) == "blocklisted"


def test_the_report_and_the_subscriber_show_bounces(admin_client, sent):
    from mailer.bounces import bounce_record

    subscriber, campaign = sent
    bounce_record(email=subscriber.email, kind="hard", source="api")
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/report/").content.decode()
    assert '<tr id="bounce-counts"><td>1</td><td>0</td><td>0</td></tr>' in page
    page = admin_client.get(f"/admin/subscribers/subscriber/{subscriber.pk}/change/").content
    assert b"1 hard, 0 soft, 0 complaints" in page
