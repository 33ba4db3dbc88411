from django.contrib import admin, messages
from django.utils.html import format_html

from campaigns.models import Campaign, Template
from campaigns.services import (
    CampaignError,
    campaign_cancel,
    campaign_pause,
    campaign_resume,
    campaign_send_test,
    campaign_start,
)


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "updated_at"]
    search_fields = ["name"]


def _run(modeladmin, request, queryset, action, verb: str) -> None:
    done = 0
    for campaign in queryset:
        try:
            action(campaign=campaign)
            done += 1
        except CampaignError as error:
            modeladmin.message_user(request, str(error), messages.ERROR)
    if done:
        modeladmin.message_user(request, f"{verb} {done} campaign(s).", messages.SUCCESS)


@admin.action(description="Start selected campaigns")
def start(modeladmin, request, queryset) -> None:
    _run(modeladmin, request, queryset, campaign_start, "Started")


@admin.action(description="Pause selected campaigns")
def pause(modeladmin, request, queryset) -> None:
    _run(modeladmin, request, queryset, campaign_pause, "Paused")


@admin.action(description="Resume selected campaigns")
def resume(modeladmin, request, queryset) -> None:
    _run(modeladmin, request, queryset, campaign_resume, "Resumed")


@admin.action(description="Cancel selected campaigns")
def cancel(modeladmin, request, queryset) -> None:
    _run(modeladmin, request, queryset, campaign_cancel, "Cancelled")


@admin.action(description="Send a test of selected campaigns to me")
def send_test(modeladmin, request, queryset) -> None:
    if not request.user.email:
        modeladmin.message_user(
            request,
            "Your user has no email address; add one under Users, then send the test again.",
            messages.ERROR,
        )
        return
    for campaign in queryset:
        try:
            campaign_send_test(campaign=campaign, to=[request.user.email])
        except CampaignError as error:
            modeladmin.message_user(request, str(error), messages.ERROR)
        else:
            modeladmin.message_user(
                request, f"Test of {campaign.name} is on its way to {request.user.email}."
            )


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "progress_bar", "sent", "failed", "total", "started_at"]
    list_filter = ["status", "lists"]
    search_fields = ["name", "subject"]
    filter_horizontal = ["lists"]
    actions = [start, pause, resume, cancel, send_test]
    readonly_fields = [
        "status",
        "status_reason",
        "total",
        "sent",
        "failed",
        "created_at",
        "started_at",
        "finished_at",
    ]
    fieldsets = [
        (None, {"fields": ["name", "subject", "from_email", "lists"]}),
        ("Content", {"fields": ["template", "format", "body"]}),
        ("Sending", {"fields": ["send_at", "rate_limit", "weight", "smtp_server"]}),
        (
            "Progress",
            {
                "fields": [
                    "status",
                    "status_reason",
                    "total",
                    "sent",
                    "failed",
                    "created_at",
                    "started_at",
                    "finished_at",
                ]
            },
        ),
    ]

    @admin.display(description="progress")
    def progress_bar(self, obj: Campaign) -> str:
        percent = round(obj.progress * 100)
        return format_html(
            '<progress value="{}" max="100" title="{}%"></progress> {} / {}',
            percent,
            percent,
            obj.sent + obj.failed,
            obj.total,
        )
