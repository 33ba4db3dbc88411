"""A batch fences itself before each side effect: it must still hold its lease before a
claim, a MAIL FROM and a message's final dot; a frozen batch that was taken for dead finds
out on waking and sends nothing more. A message whose final dot went out but whose answer
never came has an unknown outcome: counted as sent, not sent again (by default)."""

from __future__ import annotations

import time
import uuid

import pytest

from mailer import fence, journal, leases
from mailer.batch import run_batch
from mailer.models import Delivery, PerformanceSettings
from mailer.smtp import Connection, Outcome, ServerConfig
from tests.factories import running_campaign
from tests.smtp_sink import DROP

pytestmark = pytest.mark.django_db


class Refuse:
    """A guard whose check fails before the final dot (the batch lost its lease)."""

    def __init__(self) -> None:
        self.mails = 0

    def before_mail(self) -> None:
        self.mails += 1

    def before_dot(self) -> None:
        raise fence.LostLease("taken for dead")


def test_a_message_stopped_before_its_final_dot_never_arrives(sink_server, smtp_sink):
    connection = Connection(ServerConfig.from_model(sink_server))
    guard = Refuse()
    with pytest.raises(fence.LostLease):
        connection.send("news@shop.example", "ann@example.com", b"Subject: hi\r\n\r\nhi\r\n", guard)
    assert guard.mails == 1 and connection.smtp is None
    time.sleep(0.2)
    assert smtp_sink.messages() == []
    # The next message opens a new connection and goes through.
    result = connection.send("news@shop.example", "bob@example.com", b"Subject: hi\r\n\r\nhi\r\n")
    assert result.outcome == Outcome.SENT
    assert [m.rcpt_to for m in smtp_sink.messages()] == ["bob@example.com"]


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_connection_cut_after_the_dot_is_an_unknown_outcome(sink_server, smtp_sink, pipelining):
    smtp_sink.handler.pipelining = pipelining
    smtp_sink.handler.data_reply = lambda envelope: DROP
    connection = Connection(ServerConfig.from_model(sink_server))
    result = connection.send("news@shop.example", "ann@example.com", b"Subject: hi\r\n\r\nhi\r\n")
    assert result.outcome == Outcome.UNKNOWN and result.reply.startswith("outcome unknown")
    assert [m.rcpt_to for m in smtp_sink.messages()] == ["ann@example.com"]


def test_a_fence_confirmed_recently_asks_nobody_and_a_lost_lease_is_found_on_waking():
    batch = str(uuid.uuid4())
    leases.grant(batch, 60, owner="host:7")
    guard = fence.Fence(batch, "host:7")
    guard.check()  # just confirmed: a look at the clock
    leases.release(batch)  # meanwhile taken for dead and its lease dropped
    guard.check()  # still within CONFIRM_EVERY: it cannot have been taken for dead yet
    guard.confirmed_at -= fence.CONFIRM_EVERY + 10  # the process was frozen for a while
    with pytest.raises(fence.LostLease):
        guard.check()


def test_a_batch_proven_dead_cannot_renew_even_with_its_lease_still_listed():
    batch = str(uuid.uuid4())
    leases.grant(batch, 60, owner="host:8")
    leases.mark_dead(batch)
    assert leases.renew(batch, owner="host:8") is False


def test_a_batch_that_lost_its_lease_stops_and_gives_back_what_it_holds(
    sink_server, smtp_sink, monkeypatch
):
    campaign = running_campaign(5)
    confirmations = {"n": 0}
    real_confirm = fence.Fence.confirm

    def lose_after_first(self):
        confirmations["n"] += 1
        if confirmations["n"] > 1:
            raise fence.LostLease("taken for dead")
        real_confirm(self)

    monkeypatch.setattr(fence, "CONFIRM_EVERY", 0.0)  # ask Redis before every side effect
    monkeypatch.setattr(fence.Fence, "confirm", lose_after_first)

    run_batch(batch_id=str(uuid.uuid4()))

    statuses = sorted(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True))
    assert len(smtp_sink.messages()) <= 1
    assert "sending" not in statuses  # nothing left claimed by the stopped batch
    assert statuses.count("sent") == len(smtp_sink.messages())


def test_without_retry_an_ended_message_counts_as_sent_and_is_not_sent_again(
    sink_server, monkeypatch
):
    from mailer import dispatcher

    monkeypatch.setattr(journal, "UNKNOWN_GRACE", 0)
    PerformanceSettings.objects.update_or_create(pk=1, defaults={"retry_unknown": False})
    campaign = running_campaign(3)
    batch = str(uuid.uuid4())
    rows = list(Delivery.objects.filter(campaign=campaign).order_by("pk"))
    Delivery.objects.filter(campaign=campaign).update(status="sending", claimed_by=batch)
    writer = journal.Journal(batch)
    writer.note_sending(rows[0].pk)
    writer.note_sent(rows[0].pk)  # accepted
    writer.note_sending(rows[1].pk)  # ended, no answer heard
    writer.close(discard=False)
    leases.grant(batch, 60, owner="gone:1")
    leases.mark_dead(batch)
    leases.release(batch)

    dispatcher.recover_abandoned_claims(campaign.pk)

    by_id = {d.pk: d for d in Delivery.objects.filter(campaign=campaign)}
    assert by_id[rows[0].pk].status == "sent"
    assert by_id[rows[1].pk].status == "sent"
    assert by_id[rows[1].pk].reply.startswith("outcome unknown")
    assert by_id[rows[2].pk].status == "pending"


def test_by_default_an_ended_message_is_sent_again_once_its_grace_is_over(sink_server, monkeypatch):
    from mailer import dispatcher

    monkeypatch.setattr(journal, "UNKNOWN_GRACE", 0)
    campaign = running_campaign(1)
    batch = str(uuid.uuid4())
    row = Delivery.objects.get(campaign=campaign)
    Delivery.objects.filter(pk=row.pk).update(status="sending", claimed_by=batch)
    writer = journal.Journal(batch)
    writer.note_sending(row.pk)
    writer.close(discard=False)
    leases.grant(batch, 60, owner="gone:2")
    leases.mark_dead(batch)
    leases.release(batch)

    dispatcher.recover_abandoned_claims(campaign.pk)

    assert Delivery.objects.get(pk=row.pk).status == "pending"


def test_a_message_ended_moments_ago_waits_for_its_frozen_process_to_wake(sink_server):
    from mailer import dispatcher

    campaign = running_campaign(2)
    batch = str(uuid.uuid4())
    ended, other = Delivery.objects.filter(campaign=campaign).order_by("pk")
    Delivery.objects.filter(campaign=campaign).update(status="sending", claimed_by=batch)
    writer = journal.Journal(batch)
    writer.note_sending(ended.pk)
    leases.grant(batch, 60, owner="frozen:1")
    leases.mark_dead(batch)
    leases.release(batch)

    dispatcher.recover_abandoned_claims(campaign.pk)
    assert Delivery.objects.get(pk=ended.pk).status == "sending"  # left with its batch
    assert Delivery.objects.get(pk=other.pk).status == "pending"

    writer.note_sent(ended.pk)  # the process wakes, reads the server's 250 and journals it
    writer.close(discard=False)
    dispatcher.recover_abandoned_claims(campaign.pk)
    assert Delivery.objects.get(pk=ended.pk).status == "sent"
