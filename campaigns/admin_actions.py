"""The campaign admin's actions: start, pause, resume and cancel (the `send` permission, and
for start and resume the right to send to each of the campaign's lists) and test sends."""

from __future__ import annotations

from django.contrib import admin, messages

from campaigns.services import (
    CampaignError,
    campaign_cancel,
    campaign_clone,
    campaign_pause,
    campaign_resume,
    campaign_send_test,
    campaign_start,
)
from subscribers import access


def refused_lists(request, campaign) -> str:
    """Why the user may not start or resume the campaign ("" if they may)."""
    refused = access.refused_lists(request.user, campaign.lists.all())
    if not refused:
        return ""
    names = ", ".join(m.name for m in refused)
    return (
        f"Campaign {campaign.pk} ({campaign.name}) mails {names}, which you may not send to; "
        "ask an Admin to give you the list (its Object permissions page)."
    )


def _run(modeladmin, request, queryset, action, verb: str) -> None:
    done = 0
    for campaign in queryset:
        if action in (campaign_start, campaign_resume) and (
            why := refused_lists(request, campaign)
        ):
            modeladmin.message_user(request, why, messages.ERROR)
            continue
        try:
            action(campaign=campaign)
            done += 1
        except CampaignError as error:
            modeladmin.message_user(request, str(error), messages.ERROR)
    if done:
        modeladmin.message_user(request, f"{verb} {done} campaign(s).", messages.SUCCESS)


@admin.action(description="Start selected campaigns", permissions=["send"])
def start(modeladmin, request, queryset) -> None:
    _run(modeladmin, request, queryset, campaign_start, "Started")


@admin.action(description="Pause selected campaigns", permissions=["send"])
def pause(modeladmin, request, queryset) -> None:
    _run(modeladmin, request, queryset, campaign_pause, "Paused")


@admin.action(description="Resume selected campaigns", permissions=["send"])
def resume(modeladmin, request, queryset) -> None:
    _run(modeladmin, request, queryset, campaign_resume, "Resumed")


@admin.action(description="Cancel selected campaigns", permissions=["send"])
def cancel(modeladmin, request, queryset) -> None:
    _run(modeladmin, request, queryset, campaign_cancel, "Cancelled")


@admin.action(description="Send a test of selected campaigns to me", permissions=["change"])
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


@admin.action(description="Clone selected campaigns (new drafts)", permissions=["add"])
def clone(modeladmin, request, queryset) -> None:
    copies = [campaign_clone(campaign=campaign) for campaign in queryset]
    names = ", ".join(c.name for c in copies)
    modeladmin.message_user(request, f"Made {len(copies)} draft(s): {names}.", messages.SUCCESS)
