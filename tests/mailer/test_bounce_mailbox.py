"""The bounce mailbox: real bounce messages of many servers (tests/mailer/bounce_samples), read
from a real IMAP server (pymap), tied to the deliveries they are about, recorded once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from mailer import dsn, mailbox
from mailer.message import message_id
from mailer.models import Bounce, Delivery, MailboxReport
from subscribers.models import Subscriber
from tests.factories import CampaignFactory, SubscriberFactory

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).parent / "bounce_samples"
# Reports that quote the original message (its Message-ID): the failed address, the kind.
QUOTING = {
    "dsn_01.txt": ("userx@example.com", "hard"),
    "dsn_03.txt": ("userx@example.be", "hard"),  # blank lines with a space in them
    "dsn_05.txt": ("userx@example.cz", "soft"),
    "dsn_11.txt": ("joem@example.com", "hard"),
    "dsn_07.txt": ("userx@example.nz", "soft"),
    "dsn_13.txt": ("userx@example.com", "hard"),
    "exim_01.txt": ("userx@its.example.nl", "hard"),
}
# Reports that name only the address (older servers that do not quote the message).
ADDRESS_ONLY = {
    "postfix_01.txt": "xxxxx@local.ie",
    "qmail_01.txt": "userx@example.de",
    "yahoo_01.txt": "userx@example.com",
    "microsoft_01.txt": "userx@example.com",
    "aol_01.txt": "screenname@aol.com",
    "simple_01.txt": "bbbsss@example.com",
}
MESSAGE_ID = re.compile(rb"^(Message-I[Dd]:[ \t]*)<[^>\r\n]*>", re.MULTILINE | re.IGNORECASE)


def sample(name: str, address: str | None = None, quoted_id: str | None = None) -> bytes:
    """A real report, about `address` instead of its anonymised one, quoting `quoted_id` as
    the original message's Message-ID (the report's own Message-ID is the first one)."""
    raw = (SAMPLES / name).read_bytes()
    failed = QUOTING.get(name, (ADDRESS_ONLY.get(name),))[0]
    if address and failed:
        raw = re.sub(re.escape(failed.encode()), address.encode(), raw, flags=re.IGNORECASE)
    if quoted_id:
        ids = list(MESSAGE_ID.finditer(raw))
        start, end = ids[1].span()
        raw = raw[:start] + ids[1].group(1) + quoted_id.encode() + raw[end:]
    return raw


def sent_to(subscriber: Subscriber, campaign=None) -> Delivery:
    campaign = campaign or CampaignFactory(status="finished")
    return Delivery.objects.create(
        campaign=campaign,
        subscriber=subscriber,
        email=subscriber.email,
        status=Delivery.Status.SENT,
        sent_at=timezone.now(),
    )


def signed(delivery: Delivery) -> str:
    return message_id(
        campaign_id=delivery.campaign_id,
        delivery_id=delivery.pk,
        domain="example.com",
        secret=settings.SECRET_KEY,
    )


ARF = b"""From: <abuse@mail.example.net>
Date: Thu, 8 Mar 2026 14:00:00 EDT
Subject: FW: Our news
To: <bounces@example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Thu, 8 Mar 2026 14:00:00 EDT.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <bounces@example.com>
Arrival-Date: Thu, 8 Mar 2026 14:00:00 EDT
Source-IP: 192.0.2.1

--part1_13d.2e68ed54_boundary
Content-Type: text/rfc822-headers

From: <news@example.com>
To: <ADDRESS>
Subject: Our news
X-Campaign-ID: CAMPAIGN
Date: Thu, 8 Mar 2026 13:00:00 EDT

--part1_13d.2e68ed54_boundary--
"""


def arf(address: str, campaign_id: int) -> bytes:
    return ARF.replace(b"ADDRESS", address.encode()).replace(b"CAMPAIGN", str(campaign_id).encode())


@pytest.mark.parametrize("name", sorted(QUOTING))
def test_reports_that_quote_the_original_are_read(name):
    address, kind = QUOTING[name]
    report = dsn.read(sample(name, quoted_id="<c7.d42.0123456789ab@example.com>"))
    assert [(f.email, f.kind) for f in report.failures] == [(address, kind)]
    assert report.signed_ids == [(7, 42, "0123456789ab")]


@pytest.mark.parametrize("name", sorted(ADDRESS_ONLY))
def test_older_formats_are_read_through_flufl_bounce(name):
    report = dsn.read(sample(name))
    assert report.format == "other"
    assert ADDRESS_ONLY[name] in {f.email for f in report.failures}
    assert report.signed_ids == []


def test_a_complaint_report_names_the_recipient_and_the_campaign():
    report = dsn.read(arf("Reader@Example.org", 12))
    assert report.format == "arf"
    assert [(f.email, f.kind, f.status) for f in report.failures] == [
        ("reader@example.org", "complaint", "abuse")
    ]
    assert report.campaign_ids == [12]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"\x00\xff\xfe garbage \x00" * 50, ""),
        (b"Subject: Out of office\r\n\r\nI am away until Monday.\r\n", ""),
        (
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n"
            b"--x\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; a\r\n",
            "",
        ),
        (
            b"Content-Type: multipart/report; report-type=feedback-report; boundary=y\r\n\r\n"
            b"--y\r\nContent-Type: text/plain\r\n\r\nspam!\r\n--y--\r\n",
            "feedback report without",
        ),
    ],
    ids=["binary", "not-a-report", "truncated-dsn", "arf-without-its-part"],
)
def test_malformed_messages_are_reports_of_nothing_not_errors(raw, problem):
    report = dsn.read(raw)
    assert report.failures == []
    assert problem in report.problem


def test_the_mailbox_applies_reports_that_quote_our_message_and_empties_itself(imap_server):
    deliveries = {}
    for name in QUOTING:
        subscriber = SubscriberFactory(email=f"{name.split('.')[0]}@readers.example")
        deliveries[name] = sent_to(subscriber)
    imap_server.deliver(
        *(sample(name, d.email, signed(d)) for name, d in deliveries.items()),
    )

    assert mailbox.read_mailbox(imap_server.config, keep_in="") == {"applied": len(QUOTING)}

    for name, delivery in deliveries.items():
        bounce = Bounce.objects.get(email=delivery.email)
        assert (bounce.kind, bounce.source) == (QUOTING[name][1], "mailbox")
        assert bounce.campaign_id == delivery.campaign_id
        expected = "blocklisted" if bounce.kind == "hard" else "enabled"
        assert Subscriber.objects.get(email=delivery.email).status == expected
    assert imap_server.messages() == []
    applied = MailboxReport.objects.filter(outcome="applied")
    assert applied.count() == len(QUOTING)
    assert not any(bytes(row.raw) for row in applied)  # applied messages are not kept


def test_a_forged_report_blocklists_nobody_and_is_kept_with_the_reason(imap_server):
    victim = SubscriberFactory(email="victim@readers.example")
    delivery = sent_to(victim)
    # A report written by someone who knows the address and the delivery's numbers but not
    # the signature (say, from a forwarded copy of someone else's message).
    forged = f"<c{delivery.campaign_id}.d{delivery.pk}.000000000000@example.com>"
    imap_server.deliver(sample("dsn_01.txt", victim.email, forged))

    assert mailbox.read_mailbox(imap_server.config, keep_in="") == {"unmatched": 1}

    assert not Bounce.objects.exists()
    assert Subscriber.objects.get(pk=victim.pk).status == "enabled"
    row = MailboxReport.objects.get()
    assert "no Message-ID of ours whose signature checks" in row.reason
    assert victim.email.encode() in bytes(row.raw)
    assert imap_server.messages() == []


def test_a_complaint_counts_with_our_campaign_header_only_for_an_address_it_was_sent_to(
    imap_server,
):
    reader = SubscriberFactory(email="reader@readers.example")
    delivery = sent_to(reader)
    stranger = SubscriberFactory(email="stranger@readers.example")
    imap_server.deliver(
        arf(reader.email, delivery.campaign_id), arf(stranger.email, delivery.campaign_id)
    )

    assert mailbox.read_mailbox(imap_server.config, keep_in="") == {
        "applied": 1,
        "unmatched": 1,
    }

    complaint = Bounce.objects.get()
    assert (complaint.email, complaint.kind) == (reader.email, "complaint")
    assert Subscriber.objects.get(pk=reader.pk).status == "blocklisted"
    assert Subscriber.objects.get(pk=stranger.pk).status == "enabled"


def test_the_same_message_read_twice_is_recorded_once_and_moved_when_asked(imap_server):
    delivery = sent_to(SubscriberFactory(email="twice@readers.example"))
    report = sample("dsn_05.txt", delivery.email, signed(delivery))
    # As if a reading had recorded it and crashed before deleting it: it is there again.
    imap_server.deliver(report, report)

    assert mailbox.read_mailbox(imap_server.config, keep_in="Processed") == {"applied": 2}

    assert Bounce.objects.count() == 1
    assert imap_server.messages() == []
    assert len(imap_server.messages("Processed")) == 2


def test_reports_naming_only_an_address_wait_for_a_person(imap_server):
    known = SubscriberFactory(email="known@readers.example")
    sent_to(known)
    imap_server.deliver(
        sample("qmail_01.txt", known.email),
        sample("yahoo_01.txt", "nobody-we-know@readers.example"),
    )

    assert mailbox.read_mailbox(imap_server.config, keep_in="") == {"unmatched": 2}
    assert not Bounce.objects.exists()

    applied = sum(mailbox.apply_by_hand(row) for row in MailboxReport.objects.all())

    assert applied == 1
    assert Bounce.objects.get().email == known.email
    assert Subscriber.objects.get(pk=known.pk).status == "blocklisted"
    assert set(MailboxReport.objects.values_list("outcome", flat=True)) == {"applied"}


def test_broken_messages_do_not_stop_the_reading_and_are_kept(imap_server):
    delivery = sent_to(SubscriberFactory(email="after@readers.example"))
    imap_server.deliver(
        b"Subject: Out of office\r\n\r\nBack on Monday.\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n"
        b"--x\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; a\r\n",
        b"From: \xff\xfe\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n\x00\x01--",
        sample("dsn_11.txt", delivery.email, signed(delivery)),
    )

    counts = mailbox.read_mailbox(imap_server.config, keep_in="")

    assert counts["applied"] == 1 and sum(counts.values()) == 4
    kept = MailboxReport.objects.exclude(outcome="applied")
    assert kept.count() == 3 and all(bytes(row.raw) and row.reason for row in kept)
    assert imap_server.messages() == []


def test_without_a_mailbox_url_nothing_is_read(settings):
    settings.BOUNCE_MAILBOX = None
    assert mailbox.read_mailbox() == {"skipped": "BOUNCE_MAILBOX_URL is not set"}


def test_the_mailbox_is_read_over_pop3_too(pop3_server):
    delivery = sent_to(SubscriberFactory(email="pop@readers.example"))
    pop3_server.deliver(
        sample("exim_01.txt", delivery.email, signed(delivery)),
        sample("aol_01.txt", "someone@aol.example"),
    )

    assert mailbox.read_mailbox(pop3_server.config_dict) == {"applied": 1, "unmatched": 1}

    assert Bounce.objects.get().email == delivery.email
    assert pop3_server.count() == 0  # deleted at QUIT, after the rows were committed


def test_a_pop3_reading_cut_short_deletes_nothing_and_the_next_counts_nothing_twice(
    pop3_server, monkeypatch
):
    first, second = (sent_to(SubscriberFactory(email=f"p{n}@readers.example")) for n in (1, 2))
    pop3_server.deliver(
        sample("dsn_01.txt", first.email, signed(first)),
        sample("dsn_11.txt", second.email, signed(second)),
    )
    handled = mailbox.handle

    def crash_on_the_second(raw: bytes) -> str:
        if MailboxReport.objects.exists():
            raise ConnectionResetError("the worker lost its connection")
        return handled(raw)

    monkeypatch.setattr(mailbox, "handle", crash_on_the_second)
    with pytest.raises(ConnectionResetError):
        mailbox.read_mailbox(pop3_server.config_dict)
    assert pop3_server.count() == 2  # no QUIT: nothing deleted
    monkeypatch.setattr(mailbox, "handle", handled)

    assert mailbox.read_mailbox(pop3_server.config_dict) == {"applied": 2}

    assert sorted(Bounce.objects.values_list("email", flat=True)) == [first.email, second.email]
    assert pop3_server.count() == 0
