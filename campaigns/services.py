"""Campaign actions of the admin and the command line (the engine, below them, changes a
campaign's status through Campaign.change_status itself)."""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.ab import ABTest
from campaigns.models import (
    USER_PAUSE,
    Campaign,
    CampaignTransitionError,
    CampaignVersion,
    Condition,
)
from campaigns.rendering import TemplateError, sample_context
from settings import queues
from subscribers.addresses import EmailNotValidError, normalise_email, sender_problem

log = structlog.get_logger(__name__)


class CampaignError(Exception):
    """An action that cannot be done; the message says why and what to do."""


STEP_IS_RUN_BY_SEQUENCE = (
    "is the message of a sequence's step: it sends while its sequence is active. Activate, "
    "pause or resume the sequence instead (Automations → Sequences)."
)


def _set_status(campaign: Campaign, new: str, *, reason: str = "", **fields) -> Campaign:
    """Change the status only if nobody changed it meanwhile (Campaign.change_status)."""
    if campaign.kind == Campaign.Kind.STEP and new != Campaign.Status.PAUSED:
        raise CampaignError(
            _("Campaign %(campaign_pk)s (%(campaign)s) %(STEP_IS_RUN_BY_SEQUENCE)s")
            % {
                "campaign_pk": campaign.pk,
                "campaign": campaign.name,
                "STEP_IS_RUN_BY_SEQUENCE": STEP_IS_RUN_BY_SEQUENCE,
            }
        )
    try:
        changed = campaign.change_status(new, reason=reason, **fields)
    except CampaignTransitionError as error:
        raise CampaignError(
            _("Campaign %(campaign_pk)s (%(campaign)s): %(error)s")
            % {"campaign_pk": campaign.pk, "campaign": campaign.name, "error": error}
        ) from error
    if not changed:
        campaign.refresh_from_db()
        raise CampaignError(
            _(
                "Campaign %(campaign_pk)s changed to %(status)s while this action ran; "
                "look at it again and retry."
            )
            % {"campaign_pk": campaign.pk, "status": campaign.status}
        )
    campaign.refresh_from_db()
    return campaign


def campaign_check_content(*, campaign: Campaign) -> None:
    """Render the campaign once for a sample recipient, so a broken template fails now."""
    if campaign.from_email and (problem := sender_problem(campaign.from_email)):
        raise CampaignError(
            _("Campaign %(campaign_pk)s cannot start: %(problem)s")
            % {"campaign_pk": campaign.pk, "problem": problem}
        )
    try:
        campaign.content().render(sample_context())
    except TemplateError as error:
        raise CampaignError(
            _("Campaign %(campaign_pk)s cannot start: %(error)s")
            % {"campaign_pk": campaign.pk, "error": error}
        ) from error


def _notify_dispatcher() -> None:
    """The dispatcher looks at the campaign now rather than at its next tick."""
    queues.enqueue_on_commit(queues.DISPATCH_TICK)


def campaign_start(*, campaign: Campaign) -> Campaign:
    """Schedule a draft: it starts at send_at, or as soon as a running slot is free."""
    test = ABTest.objects.filter(campaign=campaign).first()
    if test is not None and test.status != ABTest.Status.DECIDED:
        raise CampaignError(
            _(
                "Campaign %(campaign_pk)s (%(campaign)s) is A/B tested: start its test "
                "(A/B tests); the winning variant then goes to the rest of its "
                "audience."
            )
            % {"campaign_pk": campaign.pk, "campaign": campaign.name}
        )
    if not campaign.lists.exists():
        raise CampaignError(
            _(
                "Campaign %(campaign_pk)s (%(campaign)s) has no mailing lists; choose "
                "at least one list, then start it."
            )
            % {"campaign_pk": campaign.pk, "campaign": campaign.name}
        )
    campaign_check_content(campaign=campaign)
    reason = ""
    if campaign.send_at and campaign.send_at > timezone.now():
        reason = f"scheduled for {campaign.send_at:%Y-%m-%d %H:%M %Z}"
    with transaction.atomic():
        campaign = _set_status(campaign, Campaign.Status.SCHEDULED, reason=reason)
        campaign_note_version(campaign=campaign)
        _notify_dispatcher()
    log.info("campaign scheduled", campaign_id=campaign.pk)
    return campaign


def campaign_pause(*, campaign: Campaign, reason: str = USER_PAUSE) -> Campaign:
    # Send slots stop serving it at once (the engine answers campaign_status_changed).
    campaign = _set_status(campaign, Campaign.Status.PAUSED, reason=reason)
    log.info("campaign paused", campaign_id=campaign.pk, reason=reason)
    return campaign


def campaign_resume(*, campaign: Campaign) -> Campaign:
    """Continue where it stopped; it waits for a running slot like any due campaign. What was
    edited while it was paused is checked again first, as at the start."""
    campaign_check_content(campaign=campaign)
    with transaction.atomic():
        campaign = _set_status(campaign, Campaign.Status.SCHEDULED)
        campaign_note_version(campaign=campaign)
        _notify_dispatcher()
    log.info("campaign resumed", campaign_id=campaign.pk)
    return campaign


def campaign_note_version(*, campaign: Campaign) -> CampaignVersion:
    """Keep what the campaign's current content version says, as it starts sending."""
    version, _ = CampaignVersion.objects.get_or_create(
        campaign=campaign,
        number=campaign.content_version,
        defaults={
            "subject": campaign.subject,
            "body": campaign.body,
            "layout": campaign.template.html if campaign.template else "",
        },
    )
    return version


def campaign_content_edited(*, campaigns: Iterable[Campaign]) -> None:
    """Paused campaigns whose content (or layout) was just edited: what they send from now
    on is a new version."""
    for campaign in campaigns:
        # Edits before the first message of the current version went out are part of it.
        sent_as_is = CampaignVersion.objects.filter(
            campaign=campaign, number=campaign.content_version
        ).exists()
        if campaign.status == Campaign.Status.PAUSED and sent_as_is:
            Campaign.objects.filter(pk=campaign.pk).update(content_version=F("content_version") + 1)
            campaign.refresh_from_db(fields=["content_version"])


def campaign_cancel(*, campaign: Campaign) -> Campaign:
    campaign = _set_status(campaign, Campaign.Status.CANCELLED, finished_at=timezone.now())
    log.info("campaign cancelled", campaign_id=campaign.pk)
    return campaign


MAX_TEST_RECIPIENTS = 10


def campaign_send_test(
    *, campaign: Campaign, to: list[str], as_subscriber: str | None = None
) -> list[str]:
    """Queue a test send to a few addresses on the transactional queue; returns them.
    as_subscriber: the address of a subscriber whose personalisation the tests show."""
    addresses = []
    for raw in to:
        try:
            addresses.append(normalise_email(raw))
        except EmailNotValidError as error:
            raise CampaignError(
                _("%(raw)s is not a valid email address: %(error)s")
                % {"raw": repr(raw), "error": error}
            ) from error
    if not addresses:
        raise CampaignError(_("Give at least one address to send the test to."))
    if len(addresses) > MAX_TEST_RECIPIENTS:
        raise CampaignError(
            _(
                "A test goes to at most %(MAX_TEST_RECIPIENTS)s addresses; to reach "
                "more, start the campaign on a list."
            )
            % {"MAX_TEST_RECIPIENTS": MAX_TEST_RECIPIENTS}
        )
    campaign_check_content(campaign=campaign)
    queues.enqueue_on_commit(
        queues.SEND_TRANSACTIONAL,
        kind="campaign_test",
        campaign_id=campaign.pk,
        to=addresses,
        as_subscriber=as_subscriber,
    )
    log.info("campaign test queued", campaign_id=campaign.pk, to=addresses)
    return addresses


COPIED = [
    "subject",
    "from_email",
    "template",
    "body",
    "format",
    "rate_limit",
    "weight",
    "track_opens",
    "track_clicks",
    "smtp_server",
    "tags",
]


def campaign_clone(*, campaign: Campaign, name: str = "", subject: str = "") -> Campaign:
    """A new draft with the campaign's content, lists, conditions and settings."""
    with transaction.atomic():
        copy = Campaign.objects.create(
            name=(name or f"Copy of {campaign.name}")[:200],
            **{field: getattr(campaign, field) for field in COPIED},
        )
        if subject:
            copy.subject = subject
            copy.save(update_fields=["subject"])
        copy.lists.set(campaign.lists.all())
        for condition in campaign.conditions.all():
            condition.pk, condition.campaign = None, copy
            condition.save()
    log.info("campaign cloned", campaign_id=campaign.pk, copy_id=copy.pk)
    return copy


def campaign_resend_to_non_openers(*, campaign: Campaign, subject: str) -> Campaign:
    """A draft follow-up with a new subject for those who got the campaign, did not open
    it, and have neither unsubscribed through it nor bounced since it started (and, being
    an audience, are still on its lists, enabled and confirmed)."""
    if campaign.started_at is None:
        raise CampaignError(
            _(
                "Campaign %(campaign_pk)s (%(campaign)s) has not sent anything yet; "
                "resend to non-openers once it has."
            )
            % {"campaign_pk": campaign.pk, "campaign": campaign.name}
        )
    if not campaign.track_opens:
        raise CampaignError(
            _(
                "Campaign %(campaign_pk)s (%(campaign)s) did not track opens, so "
                "nobody can be told apart as a non-opener; clone it instead."
            )
            % {"campaign_pk": campaign.pk, "campaign": campaign.name}
        )
    if not subject.strip():
        raise CampaignError(_("Give the follow-up a new subject."))
    with transaction.atomic():
        copy = campaign_clone(
            campaign=campaign, name=f"{campaign.name} (to non-openers)", subject=subject
        )
        kinds = Condition.Kind
        copy.conditions.create(kind=kinds.RECEIVED, other=campaign)
        copy.conditions.create(kind=kinds.OPENED, other=campaign, negate=True)
        copy.conditions.create(kind=kinds.UNSUBSCRIBED, other=campaign, negate=True)
        copy.conditions.create(
            kind=kinds.BOUNCED, negate=True, value=campaign.started_at.isoformat()
        )
        campaign_check_content(campaign=copy)  # the new subject compiles, or nothing is made
    return copy
