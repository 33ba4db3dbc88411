"""Analytics across campaigns and lists, in the admin: campaigns compared (a table and trend
lines of open, click, bounce and unsubscribe rates) and lists' growth per day. Every chart's
numbers are a table away and a CSV download (`?csv=<chart>`)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from campaigns.models import Campaign
from mailer import analytics, charts
from mailer.charts import Chart
from subscribers import access
from workbench.dashboard import campaigns_for

RATES = {
    "open_rate": gettext_lazy("Opened"),
    "click_rate": gettext_lazy("Clicked"),
    "bounce_rate": gettext_lazy("Bounced"),
    "unsubscribe_rate": pgettext_lazy("count", "Unsubscribed"),
}
GROWTH_LABELS = {
    "subscribed": gettext_lazy("Subscribed"),
    "unsubscribed": pgettext_lazy("count", "Unsubscribed"),
    "bounced": gettext_lazy("Bounced"),
}
COUNTS = (10, 20, 50, 100)
GROWTH = ("subscribed", "unsubscribed", "bounced")
PERIODS = (7, 30, 90, 365)


def _choice(request: HttpRequest, name: str, allowed: tuple[int, ...], default: int) -> int:
    try:
        value = int(request.GET.get(name, default))
    except ValueError:
        return default
    return value if value in allowed else default


def campaigns_view(request: HttpRequest, site_context: dict) -> HttpResponse:
    if not request.user.has_perm("campaigns.view_campaign"):
        raise PermissionDenied
    count = _choice(request, "last", COUNTS, 20)
    sent = campaigns_for(request.user).filter(
        started_at__isnull=False,
        status__in=[Campaign.Status.RUNNING, Campaign.Status.PAUSED, Campaign.Status.FINISHED],
    )
    tag = request.GET.get("tag", "").strip()
    if tag:
        sent = sent.filter(tags__contains=[tag])
    rows = list(reversed(sent.order_by("-started_at")[:count]))
    rates = analytics.compare_campaigns(c.pk for c in rows)
    table = [{"campaign": c, **rates.get(c.pk, {})} for c in rows]
    labels = [f"{c.name} ({c.started_at:%Y-%m-%d})" for c in rows]
    drawn = [
        Chart(
            "trend",
            _("Rates, campaign after campaign"),
            "line",
            labels,
            {
                str(name): [rates.get(c.pk, {}).get(key, 0) for c in rows]
                for key, name in RATES.items()
            },
            unit="%",
            label_name="campaign",
        ),
        Chart(
            "sent",
            _("Messages sent"),
            "bar",
            labels,
            {_("Sent"): [c.sent for c in rows]},
            label_name="campaign",
        ),
    ]
    if wanted := charts.pick(drawn, request.GET.get("csv")):
        return charts.as_csv(wanted, "campaigns")
    context = {
        **site_context,
        "title": _("Campaigns compared"),
        "table": list(reversed(table)),
        "charts": drawn,
        "counts": COUNTS,
        "count": count,
        "tag": tag,
    }
    return TemplateResponse(request, "workbench/campaigns.html", context)


def lists_view(request: HttpRequest, site_context: dict) -> HttpResponse:
    if not request.user.has_perm("subscribers.view_mailinglist"):
        raise PermissionDenied
    days = _choice(request, "days", PERIODS, 30)
    lists = access.lists_for(request.user).order_by("name")
    list_id = request.GET.get("list", "")
    chosen = lists.filter(pk=int(list_id)).first() if list_id.isdigit() else None
    ids = [chosen.pk] if chosen else list(lists.values_list("pk", flat=True))
    rows = analytics.list_growth(ids, days=days)
    labels = [analytics.day_label(row["day"]) for row in rows]
    short = analytics.short_labels([row["day"] for row in rows], "day")
    drawn = [
        Chart(
            "growth",
            _("%(lists)s: subscribed, unsubscribed, bounced")
            % {"lists": chosen.name if chosen else _("All lists")},
            "bar",
            labels,
            {str(GROWTH_LABELS[key]): [row[key] for row in rows] for key in GROWTH},
            label_name="day",
            short_labels=short,
        ),
        Chart(
            "net",
            _("Net change, day by day and in total"),
            "line",
            labels,
            {_("Net"): _running_total(rows)},
            label_name="day",
            short_labels=short,
        ),
    ]
    if wanted := charts.pick(drawn, request.GET.get("csv")):
        return charts.as_csv(wanted, f"lists-{days}-days")
    context = {
        **site_context,
        "title": _("Lists over time"),
        "lists": lists,
        "chosen": chosen,
        "days": days,
        "periods": PERIODS,
        "charts": drawn,
        "totals": {key: sum(row[key] for row in rows) for key in GROWTH},
    }
    return TemplateResponse(request, "workbench/lists.html", context)


def _running_total(rows: list[dict]) -> list[int | float]:
    total, out = 0, []
    for row in rows:
        total += row["subscribed"] - row["unsubscribed"]
        out.append(total)
    return out
