"""The folded ledger (mailer.folding): a finished campaign's rows moved into compressed blocks
read back row for row, and everything that reads a finished campaign's rows still finds
them: a subscriber's history and data export, erasure, bounces by Message-ID and by address,
the segment of who received it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign
from mailer import folding, ledger, mailbox, reports, rollups
from mailer.message import message_id
from mailer.models import Bounce, Delivery, LedgerBlock
from mailer.rollup_models import CampaignRollup
from tests.campaigns.test_segments import matching, world  # noqa: F401 (a fixture)
from tests.factories import CampaignFactory, MailingListFactory, SubscriberFactory
from tests.mailer.test_bounce_mailbox import arf, sample

pytestmark = pytest.mark.django_db

COLUMNS = "id, campaign_id, subscriber_id, email, status, attempts, sent_at, reply, content_version"


def ledger_rows(campaign_id: int) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {COLUMNS}, folded FROM mailer_ledger WHERE campaign_id = %s ORDER BY id",  # noqa: S608
            [campaign_id],
        )
        return cursor.fetchall()


def finished_campaign(rows: int, **fields) -> Campaign:
    campaign = CampaignFactory(**fields)
    Campaign.objects.filter(pk=campaign.pk).update(status="finished", finished_at=timezone.now())
    return Campaign.objects.get(pk=campaign.pk)


def test_a_folded_campaign_reads_back_row_for_row():
    campaign = finished_campaign(0)
    other = finished_campaign(0)
    start = timezone.now() - timedelta(hours=2)
    made = []
    for n in range(2500):
        made.append(
            Delivery(
                campaign=other if n % 700 == 5 else campaign,  # gaps in the campaign's ids
                subscriber_id=None if n == 17 else 10_000 + n,
                email=f"reader{n}@{'mail' if n % 3 else 'post'}.example",
                status="failed" if n % 11 == 0 else "sent",
                attempts=1 + n % 3,
                sent_at=None if n % 11 == 0 else start + timedelta(seconds=n // 50),
                reply="550 5.1.1 no such user" if n % 11 == 0 else f"250 2.0.0 Ok: queued as Q{n}",
                content_version=n % 2 + 1 if n % 11 else None,
            )
        )
    Delivery.objects.bulk_create(made)
    rollups.roll_up(campaign.pk)
    before = ledger_rows(campaign.pk)
    assert not any(row[-1] for row in before) and len(before) == 2500 - 4

    assert folding.fold(campaign.pk) == 2496

    after = ledger_rows(campaign.pk)
    assert [row[:-1] for row in after] == [row[:-1] for row in before]
    assert all(row[-1] for row in after)  # all folded
    assert not Delivery.objects.filter(campaign=campaign).exists()
    assert Delivery.objects.filter(campaign=other).count() == 4  # another campaign's untouched
    blocks = list(LedgerBlock.objects.filter(campaign=campaign).order_by("first_id"))
    assert [b.size for b in blocks] == [1000, 1000, 496]
    assert blocks[0].offsets is not None  # ids with a gap keep their offsets
    # Folding again moves nothing.
    assert folding.fold(campaign.pk) == 0 and len(ledger_rows(campaign.pk)) == 2496


def test_only_a_finished_campaign_with_its_figures_kept_is_folded():
    running = CampaignFactory(status="running")
    with pytest.raises(ValueError, match="only a finished regular campaign"):
        folding.fold(running.pk)
    step = finished_campaign(0, kind=Campaign.Kind.STEP)
    with pytest.raises(ValueError, match="only a finished regular campaign"):
        folding.fold(step.pk)
    waiting = finished_campaign(0)
    with pytest.raises(ValueError, match="figures are not kept yet"):
        folding.fold(waiting.pk)
    with pytest.raises(CommandError, match="figures are not kept yet"):
        call_command("fold_ledger", "--campaign", str(waiting.pk))


def test_campaigns_fold_once_due_one_at_a_time():
    old, recent = finished_campaign(0), finished_campaign(0)
    for campaign in (old, recent):
        Delivery.objects.create(
            campaign=campaign, email="a@b.example", status="sent", sent_at=timezone.now()
        )
        rollups.roll_up(campaign.pk)
    days = settings.LEDGER_FOLD_AFTER_DAYS
    CampaignRollup.objects.filter(pk=old.pk).update(
        made_at=timezone.now() - timedelta(days=days, hours=1)
    )
    assert folding.due() == [old.pk]
    assert folding.fold_next() == 1
    assert folding.due() == [] and folding.fold_next() == 0
    assert Delivery.objects.filter(campaign=recent).exists()


def sent_and_folded(*subscribers) -> tuple[Campaign, dict[int, Delivery]]:
    campaign = finished_campaign(0)
    rows = {
        s.pk: Delivery.objects.create(
            campaign=campaign,
            subscriber=s,
            email=s.email,
            status="sent",
            sent_at=timezone.now(),
            reply="250 2.0.0 Ok",
        )
        for s in subscribers
    }
    rollups.roll_up(campaign.pk)
    folding.fold(campaign.pk)
    assert not Delivery.objects.filter(campaign=campaign).exists()
    return campaign, rows


def test_a_subscribers_history_and_data_export_include_folded_campaigns():
    reader = SubscriberFactory(email="reader@readers.example")
    old, _ = sent_and_folded(reader, SubscriberFactory())
    new = finished_campaign(0, name="Newer")
    Delivery.objects.create(
        campaign=new, subscriber=reader, email=reader.email, status="sent", sent_at=timezone.now()
    )
    history = reports.history_of(reader.pk)
    assert [h["campaign_id"] for h in history] == [new.pk, old.pk]
    assert history[1]["campaign"] == old.name and history[1]["reply"] == "250 2.0.0 Ok"
    exported = ledger.messages_of(reader)
    assert [m["campaign"] for m in exported] == [old.name, "Newer"]


def test_erasure_removes_the_address_from_folded_blocks():
    gone, kept = SubscriberFactory(email="gone@readers.example"), SubscriberFactory()
    campaign, _ = sent_and_folded(gone, kept)
    ledger.scrub(subscriber=gone)
    rows = {row[2]: row for row in ledger_rows(campaign.pk)}
    assert set(rows) == {None, kept.pk}
    assert rows[None][3] == "erased@invalid" and rows[None][4] == "sent"  # counts stay true
    assert rows[kept.pk][3] == kept.email
    assert reports.history_of(gone.pk) == []


def test_bounces_find_folded_rows_by_message_id_and_by_campaign_header():
    bounced, complained = SubscriberFactory(email="b@readers.example"), SubscriberFactory()
    campaign, rows = sent_and_folded(bounced, complained)
    quoted = message_id(
        campaign_id=campaign.pk,
        delivery_id=rows[bounced.pk].pk,
        domain="example.com",
        secret=settings.SECRET_KEY,
    )
    mailbox.handle(sample("dsn_05.txt", bounced.email, quoted))
    mailbox.handle(arf(complained.email, campaign.pk))
    found = {(b.email, b.campaign_id) for b in Bounce.objects.all()}
    assert found == {(bounced.email, campaign.pk), (complained.email, campaign.pk)}
    assert ledger.last_campaign_to(bounced.email, since=timezone.now() - timedelta(days=1)) == (
        campaign.pk
    )


def test_the_received_segment_reads_folded_campaigns(world):  # noqa: F811
    x = world["first"]
    rollups.roll_up(x.pk)
    before = matching(world, {"kind": "received", "other": x})
    folding.fold(x.pk)
    assert not Delivery.objects.filter(campaign=x).exists()
    after = matching(world, {"kind": "received", "other": x})
    assert after == before == {"ann", "bob", "cy", "dee"}
    assert matching(world, {"kind": "received", "other": x, "negate": True}) == {"eve"}


def test_the_ledgers_list_says_where_a_folded_campaigns_rows_went_to_who_may_see_it(
    admin_client, client
):
    news = MailingListFactory()
    campaign = finished_campaign(0, lists=[news])
    Delivery.objects.create(
        campaign=campaign, email="a@b.example", status="sent", sent_at=timezone.now()
    )
    rollups.roll_up(campaign.pk)
    folding.fold(campaign.pk)
    path = f"/admin/mailer/delivery/?campaign__id__exact={campaign.pk}"
    page = admin_client.get(path).content.decode()
    assert "ledger is folded: its 1 recipient is" in page
    # Someone who may read the ledger but not this campaign's list learns nothing of it.
    clerk = User.objects.create_user("clerk", "clerk@shop.example", is_staff=True)
    clerk.user_permissions.add(
        Permission.objects.get(codename="view_delivery", content_type__app_label="mailer")
    )
    client.force_login(clerk)
    theirs = client.get(path)
    assert theirs.status_code == 200 and "folded" not in theirs.content.decode()
