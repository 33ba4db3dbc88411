"""Analytics across campaigns and lists, in the admin: campaigns compared (a table and trend
lines of open, click, bounce and unsubscribe rates) and lists' growth per day. Every chart's
numbers are a table away and a CSV download (`?csv=<chart>`)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from campaigns.models import Campaign
from mailer import analytics, charts
from mailer.charts import Chart
from subscribers import access
from workbench.dashboard import campaigns_for

RATES = {
    "open_rate": "Opened",
    "click_rate": "Clicked",
    "bounce_rate": "Bounced",
    "unsubscribe_rate": "Unsubscribed",
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
            "Rates, campaign after campaign",
            "line",
            labels,
            {name: [rates.get(c.pk, {}).get(key, 0) for c in rows] for key, name in RATES.items()},
            unit="%",
            label_name="campaign",
        ),
        Chart(
            "sent",
            "Messages sent",
            "bar",
            labels,
            {"Sent": [c.sent for c in rows]},
            label_name="campaign",
        ),
    ]
    if wanted := charts.pick(drawn, request.GET.get("csv")):
        return charts.as_csv(wanted, "campaigns")
    context = {
        **site_context,
        "title": "Campaigns compared",
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
            f"{chosen.name if chosen else 'All lists'}: subscribed, unsubscribed, bounced",
            "bar",
            labels,
            {key.capitalize(): [row[key] for row in rows] for key in GROWTH},
            label_name="day",
            short_labels=short,
        ),
        Chart(
            "net",
            "Net change, day by day and in total",
            "line",
            labels,
            {"Net": _running_total(rows)},
            label_name="day",
            short_labels=short,
        ),
    ]
    if wanted := charts.pick(drawn, request.GET.get("csv")):
        return charts.as_csv(wanted, f"lists-{days}-days")
    context = {
        **site_context,
        "title": "Lists over time",
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
