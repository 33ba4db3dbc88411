"""Bounces that come back as mail: a campaign goes out through real workers to a real SMTP
server; the receiving servers' reports (real bounce messages of several kinds, quoting the
messages the sink received) land in a real IMAP mailbox; beat's periodic reading, on a real
worker, blocklists the hard bounces, counts the soft ones and empties the mailbox."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign
from mailer.models import Bounce, MailboxReport
from subscribers.models import Subscriber
from tests.e2e.helpers import wait_until
from tests.factories import CampaignFactory, MailingListFactory, audience
from tests.mailer.test_bounce_mailbox import QUOTING, arf, sample

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_reports_in_the_bounce_mailbox_are_applied_by_the_periodic_reading(
    processes, sink_server, smtp_sink, imap_server
):
    news = MailingListFactory()
    readers = audience(news, 20)
    campaign = CampaignFactory(lists=[news])
    processes.env["BOUNCE_MAILBOX_URL"] = imap_server.url
    processes.env["BOUNCE_MAILBOX_INTERVAL"] = "5"
    processes.env["BOUNCE_MAILBOX_KEEP_IN"] = "Read"
    processes.system(senders=1)
    processes.manage("campaign", "start", str(campaign.pk))
    wait_until(
        lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.FINISHED,
        timeout=90,
        what="the campaign to finish",
    )
    received = {m.rcpt_to: m.message() for m in smtp_sink.messages()}
    assert set(received) == {r.email for r in readers}

    # One report of each kind, each about the message one reader's server refused; and one
    # complaint, which quotes only the headers of the message (our X-Campaign-ID).
    reports, expected = [], {}
    for reader, name in zip(readers, sorted(QUOTING), strict=False):
        reports.append(sample(name, reader.email, received[reader.email]["Message-ID"]))
        expected[reader.email] = QUOTING[name][1]
    complainer = readers[len(QUOTING)]
    reports.append(arf(complainer.email, campaign.pk))
    expected[complainer.email] = "complaint"
    imap_server.deliver(*reports)

    wait_until(
        lambda: MailboxReport.objects.count() == len(reports),
        timeout=60,
        what="beat's reading of the bounce mailbox",
    )
    assert set(MailboxReport.objects.values_list("outcome", flat=True)) == {"applied"}
    got = {b.email: b.kind for b in Bounce.objects.filter(campaign=campaign)}
    assert got == expected
    blocklisted = set(
        Subscriber.objects.filter(status="blocklisted").values_list("email", flat=True)
    )
    assert blocklisted == {e for e, kind in expected.items() if kind != "soft"}
    wait_until(lambda: imap_server.messages() == [], timeout=20, what="the mailbox to empty")
    assert len(imap_server.messages("Read")) == len(reports)
