"""The admin's home page: what is sending now and why it goes at that speed, what comes next,
what finished and how it did, how the lists grow, and what needs attention. Everything is
scoped to the lists the user may see."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from automations.models import Sequence
from campaigns.models import Campaign, Limit
from mailer import analytics
from mailer.charts import Chart
from mailer.models import BounceSettings, MailboxReport
from mailer.status import campaign_status
from subscribers import access
from subscribers.models import SubscriberImport

SHOWN = 5
RECENT = timedelta(days=30)


def campaigns_for(user: Any) -> QuerySet[Campaign]:
    rows = Campaign.objects.filter(kind=Campaign.Kind.CAMPAIGN)
    return access.scope(user, rows, "lists", every=True)


def context(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    if not user.has_perm("campaigns.view_campaign"):
        return {"dashboard": None}
    campaigns = campaigns_for(user)
    running = list(campaigns.filter(status=Campaign.Status.RUNNING).order_by("started_at"))
    finished = list(
        campaigns.filter(status=Campaign.Status.FINISHED).order_by("-finished_at")[:SHOWN]
    )
    rates = analytics.compare_campaigns(c.pk for c in finished)
    return {
        "dashboard": {
            "sending": [{"campaign": c, "status": campaign_status(c)} for c in running],
            "next": list(
                campaigns.filter(status=Campaign.Status.SCHEDULED).order_by("send_at", "pk")[:SHOWN]
            ),
            "finished": [{"campaign": c, **rates.get(c.pk, {})} for c in finished],
            "growth": growth_chart(user),
            "attention": attention(request, campaigns),
        }
    }


def growth_chart(user: Any, days: int = 30) -> Chart | None:
    if not user.has_perm("subscribers.view_mailinglist"):
        return None
    list_ids = list(access.lists_for(user).values_list("pk", flat=True))
    rows = analytics.list_growth(list_ids, days=days)
    chart = Chart(
        "growth",
        _("Lists, the last %(days)d days") % {"days": days},
        "bar",
        [analytics.day_label(row["day"]) for row in rows],
        {
            _("Subscribed"): [row["subscribed"] for row in rows],
            pgettext("count", "Unsubscribed"): [-row["unsubscribed"] for row in rows],
            _("Bounced"): [-row["bounced"] for row in rows],
        },
        stacked=True,
        label_name="day",
        note=_("Below the line: subscriptions that ended and bounces."),
        short_labels=analytics.short_labels([row["day"] for row in rows], "day"),
    )
    chart.extra = {
        "subscribed": sum(row["subscribed"] for row in rows),
        "unsubscribed": sum(row["unsubscribed"] for row in rows),
        "bounced": sum(row["bounced"] for row in rows),
    }
    return chart


def attention(request: HttpRequest, campaigns: QuerySet[Campaign]) -> list[dict[str, str]]:
    """What someone should look at: each with what happened and where to act."""
    items = []
    for campaign in campaigns.filter(status=Campaign.Status.PAUSED):
        if campaign.waiting_for() == Limit.ERRORS:
            items.append(
                {
                    "what": _("%(name)s was paused by errors") % {"name": campaign.name},
                    "why": campaign.status_reason,
                    "url": reverse("admin:campaigns_campaign_report", args=[campaign.pk]),
                }
            )
    threshold = BounceSettings.load().alert_bounce_rate
    recent = campaigns.filter(
        status__in=[Campaign.Status.RUNNING, Campaign.Status.FINISHED],
        started_at__gte=timezone.now() - RECENT,
    )
    rates = analytics.compare_campaigns(recent.values_list("pk", flat=True))
    for campaign in recent:
        rate = rates.get(campaign.pk, {}).get("bounce_rate", 0)
        if rates.get(campaign.pk, {}).get("sent") and Decimal(str(rate)) >= threshold:
            items.append(
                {
                    "what": _("%(name)s: %(rate)s%% of its messages bounced")
                    % {"name": campaign.name, "rate": rate},
                    "why": _(
                        "The limit in Bounce settings is %(limit)s%%; check the list's source "
                        "and the bounces."
                    )
                    % {"limit": threshold},
                    "url": reverse("admin:mailer_bounce_changelist")
                    + f"?campaign__id__exact={campaign.pk}",
                }
            )
    user = request.user
    if not access.restricted(user) and user.has_perm("mailer.view_mailboxreport"):
        unmatched = MailboxReport.objects.filter(outcome=MailboxReport.Outcome.UNMATCHED).count()
        if unmatched:
            items.append(
                {
                    "what": _("%(count)d bounce reports could not be tied to a message")
                    % {"count": unmatched},
                    "why": _(
                        "They name an address but no message of ours; apply them by hand if "
                        "you trust them."
                    ),
                    "url": reverse("admin:mailer_mailboxreport_changelist")
                    + "?outcome__exact=unmatched",
                }
            )
    if user.has_perm("subscribers.view_subscriberimport"):
        failed = SubscriberImport.objects.filter(
            status=SubscriberImport.Status.FAILED, created_at__gte=timezone.now() - RECENT
        )
        for row in access.scope(user, failed, "mailing_list")[:SHOWN]:
            items.append(
                {
                    "what": _("The import %(name)s failed") % {"name": row},
                    "why": row.message[:200],
                    "url": reverse("admin:subscribers_subscriberimport_change", args=[row.pk]),
                }
            )
    if user.has_perm("automations.view_sequence"):
        paused = access.scope(
            user, Sequence.objects.filter(status=Sequence.Status.PAUSED), "lists", every=True
        )
        for sequence in paused[:SHOWN]:
            items.append(
                {
                    "what": _("The sequence %(name)s is paused") % {"name": sequence.name},
                    "why": _("Nobody moves on through it until it is resumed."),
                    "url": reverse("admin:automations_sequence_change", args=[sequence.pk]),
                }
            )
    return items
