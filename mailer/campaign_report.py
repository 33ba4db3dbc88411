"""A campaign's report in the admin: progress, why it waits, charts of sends, opens and
clicks over time, outcomes, top links and recipient domains (each with its numbers as a table
and as CSV), tracking, bounces, content versions and grouped error replies."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campaigns import tracking
from campaigns.models import Campaign, CampaignVersion
from mailer import analytics, charts, rollups
from mailer.charts import Chart
from mailer.status import campaign_status

OUTCOME_LABELS = {
    "sent": gettext_lazy("Sent"),
    "failed": gettext_lazy("Failed"),
    "retrying": gettext_lazy("Waiting to retry"),
    "pending": gettext_lazy("Pending"),
    "sending": gettext_lazy("In flight"),
}
BUCKET_TITLES = {
    "minute": gettext_lazy("Sent, opens and clicks per minute"),
    "hour": gettext_lazy("Sent, opens and clicks per hour"),
    "day": gettext_lazy("Sent, opens and clicks per day"),
}


def _versions(campaign: Campaign, counts: dict) -> list[dict]:
    """Each content version the campaign sent, and to how many recipients (shown once there
    is more than one)."""
    versions = [
        {"version": v, "sent": counts.get(v.number, 0)}
        for v in CampaignVersion.objects.filter(campaign=campaign)
    ]
    return versions if len(versions) > 1 else []


def campaign_charts(campaign: Campaign, figures: dict, stats: dict) -> list[Chart]:
    outcomes, domains = figures["outcomes"], figures["domains"]
    timeline = analytics.campaign_timeline(campaign, figures["minutes"])
    rows = timeline["rows"]
    return [
        Chart(
            "timeline",
            str(BUCKET_TITLES[timeline["bucket"]]),
            "line",
            [analytics.day_label(row["at"]) for row in rows],
            {
                _("Sent"): [row["sent"] for row in rows],
                _("Opens"): [row["opens"] for row in rows],
                _("Clicks"): [row["clicks"] for row in rows],
            },
            label_name=timeline["bucket"],
            short_labels=analytics.short_labels([row["at"] for row in rows], timeline["bucket"]),
        ),
        Chart(
            "outcomes",
            _("Recipients by outcome"),
            "doughnut",
            [str(label) for label in OUTCOME_LABELS.values()],
            {_("Recipients"): [outcomes[key] for key in OUTCOME_LABELS]},
            label_name="outcome",
        ),
        Chart(
            "links",
            _("Most clicked links"),
            "hbar",
            [link["url"] for link in stats["top_links"]],
            {
                _("Clicks"): [link["clicks"] for link in stats["top_links"]],
                _("Clicked by"): [link["unique_clicks"] for link in stats["top_links"]],
            },
            label_name="link",
        ),
        Chart(
            "domains",
            _("Recipients by domain"),
            "hbar",
            [row["domain"] for row in domains],
            {
                _("Sent"): [row["sent"] for row in domains],
                _("Failed"): [row["failed"] for row in domains],
            },
            stacked=True,
            label_name="domain",
        ),
    ]


class ReportViews(admin.ModelAdmin):
    """The report page of CampaignAdmin (admin/campaigns/campaign/report.html)."""

    def available_actions(self, campaign: Campaign) -> list[str]:
        raise NotImplementedError  # CampaignAdmin's

    def has_send_permission(self, request: HttpRequest, obj: Campaign | None = None) -> bool:
        raise NotImplementedError  # CampaignAdmin's

    def report_view(self, request: HttpRequest, campaign_id: int) -> HttpResponse:
        admin_ = self
        campaign = get_object_or_404(admin_.get_queryset(request), pk=campaign_id)
        if not admin_.has_view_permission(request, campaign):
            raise PermissionDenied
        figures = rollups.ledger_figures(campaign)  # kept once the campaign has finished
        outcomes = figures["outcomes"]
        stats = tracking.campaign_stats(campaign.pk)
        drawn = campaign_charts(campaign, figures, stats)
        minutes = figures["minutes"][-120:]  # the last two hours of sending
        peak = max((n for _, n in minutes), default=0)
        if wanted := charts.pick(drawn, request.GET.get("csv")):
            return charts.as_csv(wanted, f"campaign-{campaign.pk}")
        context = {
            **admin_.admin_site.each_context(request),
            "title": _("Campaign: %(name)s") % {"name": campaign.name},
            "opts": Campaign._meta,
            "campaign": campaign,
            "status": campaign_status(campaign),
            "outcomes": outcomes,
            "tracking": stats,
            "charts": {chart.id: chart for chart in drawn},
            "bounces": dict(
                campaign.bounces.values_list("kind")
                .annotate(n=Count("id"))
                .values_list("kind", "n")
            ),
            "errors": figures["errors"],
            "versions": _versions(campaign, figures["versions"]),
            # The live strip of the last two hours, minute by minute (CSS bars, no script).
            "minutes": [
                {"minute": m, "sent": n, "height": round(100 * n / peak) if peak else 0}
                for m, n in minutes
            ],
            "peak": peak,
            "actions": (
                admin_.available_actions(campaign)
                if admin_.has_send_permission(request, campaign)
                else []
            ),
            "can_change": admin_.has_change_permission(request, campaign),
            "can_resend": admin_.has_add_permission(request) and campaign.started_at is not None,
        }
        return TemplateResponse(request, "admin/campaigns/campaign/report.html", context)
