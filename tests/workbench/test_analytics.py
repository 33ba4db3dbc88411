"""The numbers behind the charts, and what each user may see of them."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from guardian.shortcuts import assign_perm

from campaigns.models import Campaign, Click, Open, TrackedLink
from mailer import analytics
from mailer.models import Bounce, Delivery
from subscribers.models import Subscription
from tests.factories import CampaignFactory, MailingListFactory, audience

pytestmark = pytest.mark.django_db


def finished(mailing_list, name: str, opened: int, clicked: int, bounced: int) -> Campaign:
    people = list(
        Subscription.objects.filter(mailing_list=mailing_list).select_related("subscriber")
    )
    campaign = CampaignFactory(lists=[mailing_list], name=name, status="finished")
    now = timezone.now()
    Campaign.objects.filter(pk=campaign.pk).update(
        sent=len(people), total=len(people), started_at=now, finished_at=now
    )
    Delivery.objects.bulk_create(
        Delivery(
            campaign=campaign,
            subscriber=s.subscriber,
            email=s.subscriber.email,
            status="sent",
            sent_at=now,
        )
        for s in people
    )
    link = TrackedLink.objects.create(campaign=campaign, url="https://shop.example/=cmd")
    for s in people[:opened]:
        Open.objects.create(campaign=campaign, subscriber_id=s.subscriber_id, at=now)
    for s in people[:clicked]:
        Click.objects.create(campaign=campaign, link=link, subscriber_id=s.subscriber_id, at=now)
    for s in people[:bounced]:
        Bounce.objects.create(
            email=s.subscriber.email,
            subscriber=s.subscriber,
            campaign=campaign,
            kind="hard",
            source="api",
            at=now,
        )
    return Campaign.objects.get(pk=campaign.pk)


def test_campaigns_are_compared_by_distinct_subscribers_per_message_sent():
    news = MailingListFactory()
    audience(news, 40)
    campaign = finished(news, "Spring", opened=10, clicked=4, bounced=2)
    rates = analytics.compare_campaigns([campaign.pk])[campaign.pk]
    assert (rates["sent"], rates["opened"], rates["clicked"], rates["bounced"]) == (40, 10, 4, 2)
    assert (rates["open_rate"], rates["click_rate"], rates["bounce_rate"]) == (25.0, 10.0, 5.0)


def test_list_growth_counts_each_day_on_the_chosen_lists_only():
    news, other = MailingListFactory(), MailingListFactory()
    audience(news, 6)
    audience(other, 3)
    earlier = list(Subscription.objects.filter(mailing_list=news).values_list("pk", flat=True))
    Subscription.objects.filter(pk__in=earlier[:2]).update(
        created_at=timezone.now() - timedelta(days=3)
    )
    Subscription.objects.filter(pk=earlier[5]).update(status="unsubscribed")
    rows = analytics.list_growth([news.pk], days=7)
    assert len(rows) == 7 and rows[-1]["day"] == timezone.localdate()
    assert [r["subscribed"] for r in rows][-4:] == [2, 0, 0, 4]
    assert sum(r["unsubscribed"] for r in rows) == 1


def member(client, lists):
    user = User.objects.create_user("limited", is_staff=True)
    user.groups.add(Group.objects.get(name="Campaign manager"))
    for mailing_list in lists:
        assign_perm("subscribers.view_mailinglist", user, mailing_list)
    client.force_login(user)
    return client


@pytest.mark.usefixtures("roles")
def test_a_user_of_some_lists_sees_only_their_campaigns_and_lists_in_the_analytics(client):
    ours, theirs = MailingListFactory(name="Ours"), MailingListFactory(name="Theirs")
    audience(ours, 5)
    audience(theirs, 7)
    finished(ours, "Our spring", 1, 0, 0)
    finished(theirs, "Their secret launch", 1, 0, 0)
    limited = member(client, [ours])

    compared = limited.get("/admin/analytics/campaigns/").content.decode()
    assert "Our spring" in compared and "Their secret launch" not in compared
    dashboard = limited.get("/admin/").content.decode()
    assert "Our spring" in dashboard and "Their secret launch" not in dashboard
    lists = limited.get(f"/admin/analytics/lists/?list={theirs.pk}").content.decode()
    assert "Theirs" not in lists and "+5" in lists  # another list: their own lists instead
    exported = limited.get(f"/admin/analytics/lists/?list={theirs.pk}&csv=growth").content
    assert sum(int(row[1]) for row in list(csv.reader(io.StringIO(exported.decode())))[1:]) == 5


@pytest.mark.usefixtures("roles")
def test_csv_cells_that_read_as_formulas_are_defused(client, admin_client):
    news = MailingListFactory()
    audience(news, 3)
    campaign = finished(news, "Links", 0, 2, 0)
    TrackedLink.objects.filter(campaign=campaign).update(url='=HYPERLINK("http://evil")')
    body = admin_client.get(
        f"/admin/campaigns/campaign/{campaign.pk}/report/?csv=links"
    ).content.decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[1][0] == '\'=HYPERLINK("http://evil")' and rows[1][1:] == ["2", "2"]


def test_a_finished_campaigns_report_reads_its_figures_once_and_keeps_them(admin_client):
    from mailer import rollups
    from mailer.rollup_models import CampaignRollup

    news = MailingListFactory()
    audience(news, 4)
    campaign = finished(news, "kept", opened=1, clicked=0, bounced=0)
    Delivery.objects.filter(campaign=campaign).filter(
        pk=Delivery.objects.filter(campaign=campaign).order_by("pk").values("pk")[:1]
    ).update(status="failed", reply="550 5.1.1 no such user")
    assert rollups.roll_up(campaign.pk) and not rollups.roll_up(campaign.pk)  # kept once
    kept = CampaignRollup.objects.get(pk=campaign.pk).figures
    assert kept["outcomes"]["sent"] == 3 and kept["outcomes"]["failed"] == 1
    assert kept["errors"][0]["reply"] == "550 5.1.1 no such user"
    # The ledger is not read again: the report shows what was kept.
    Delivery.objects.filter(campaign=campaign).update(status="failed")
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/report/")
    assert page.status_code == 200
    table = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/report/?csv=outcomes")
    rows = dict(list(csv.reader(io.StringIO(table.content.decode())))[1:3])
    assert rows == {"Sent": "3", "Failed": "1"}
    timeline = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/report/?csv=timeline")
    sent = [row[1] for row in list(csv.reader(io.StringIO(timeline.content.decode())))[1:]]
    assert sum(int(n) for n in sent) == 3


def test_a_campaign_still_sending_is_read_live_and_kept_only_once_finished():
    from mailer import rollups

    news = MailingListFactory()
    audience(news, 2)
    campaign = finished(news, "live", opened=0, clicked=0, bounced=0)
    Campaign.objects.filter(pk=campaign.pk).update(status="running")
    campaign.refresh_from_db()
    assert not rollups.roll_up(campaign.pk)
    assert rollups.ledger_figures(campaign)["outcomes"]["sent"] == 2
    Delivery.objects.filter(campaign=campaign).update(status="pending")
    assert rollups.ledger_figures(campaign)["outcomes"]["pending"] == 2


@pytest.mark.usefixtures("roles")
def test_a_subscribers_page_shows_the_campaigns_they_got_to_those_who_may_see_campaigns(
    admin_client, client
):
    news = MailingListFactory()
    audience(news, 2)
    first = finished(news, "Spring sale", opened=1, clicked=1, bounced=0)
    finished(news, "Summer news", opened=0, clicked=0, bounced=0)
    subscriber = Delivery.objects.filter(campaign=first).order_by("pk").first().subscriber
    page = admin_client.get(f"/admin/subscribers/subscriber/{subscriber.pk}/change/")
    history = page.content.decode().split('id="campaign-history"')[1].split("</table>")[0]
    assert history.index("Summer news") < history.index("Spring sale")  # newest first
    assert f"/admin/campaigns/campaign/{first.pk}/report/" in history
    assert history.count(">yes<") == 2  # opened and clicked the first
    # A subscriber manager sees the subscriber, not the campaigns (docs/roles.md).
    clerk = User.objects.create_user("clerk", "clerk@shop.example", is_staff=True)
    clerk.groups.add(Group.objects.get(name="Subscriber manager"))
    assign_perm("subscribers.view_mailinglist", clerk, news)
    client.force_login(clerk)
    theirs = client.get(f"/admin/subscribers/subscriber/{subscriber.pk}/change/")
    assert theirs.status_code == 200 and "campaign-history" not in theirs.content.decode()
