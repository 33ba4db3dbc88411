"""The campaign admin's actions: start, pause, resume and cancel (the `send` permission, and
for start and resume the right to send to each of the campaign's lists) and test sends."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

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


def _run(modeladmin, request, queryset, action, done_message) -> None:
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
        modeladmin.message_user(
            request,
            done_message % {"count": done},
            messages.SUCCESS,
        )


@admin.action(description=_("Start selected campaigns"), permissions=["send"])
def start(modeladmin, request, queryset) -> None:
    _run(modeladmin, request, queryset, campaign_start, _("Started %(count)s campaign(s)."))


@admin.action(description=_("Pause selected campaigns"), permissions=["send"])
def pause(modeladmin, request, queryset) -> None:
    _run(modeladmin, request, queryset, campaign_pause, _("Paused %(count)s campaign(s)."))


@admin.action(description=_("Resume selected campaigns"), permissions=["send"])
def resume(modeladmin, request, queryset) -> None:
    _run(modeladmin, request, queryset, campaign_resume, _("Resumed %(count)s campaign(s)."))


@admin.action(description=_("Cancel selected campaigns"), permissions=["send"])
def cancel(modeladmin, request, queryset) -> None:
    _run(modeladmin, request, queryset, campaign_cancel, _("Cancelled %(count)s campaign(s)."))


@admin.action(description=_("Send a test of selected campaigns to me"), permissions=["change"])
def send_test(modeladmin, request, queryset) -> None:
    if not request.user.email:
        modeladmin.message_user(
            request,
            _("Your user has no email address; add one under Users, then send the test again."),
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
                request,
                _("Test of %(campaign)s is on its way to %(user_email)s.")
                % {"campaign": campaign.name, "user_email": request.user.email},
            )


@admin.action(description=_("Clone selected campaigns (new drafts)"), permissions=["add"])
def clone(modeladmin, request, queryset) -> None:
    copies = [campaign_clone(campaign=campaign) for campaign in queryset]
    names = ", ".join(c.name for c in copies)
    modeladmin.message_user(
        request,
        _("Made %(count)s draft(s): %(names)s.") % {"count": len(copies), "names": names},
        messages.SUCCESS,
    )
