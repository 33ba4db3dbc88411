"""Sequence actions of the admin and the API: activate, pause, resume, give new steps (a
new version), enter subscribers by hand, record an event, and end sequences for those who
leave. Each step's message is a campaign of kind `step`, kept in line with its sequence
(lists, weight, rate) and running while the sequence is active."""

from __future__ import annotations

import structlog
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from automations import entry
from automations.models import Enrollment, Sequence, Step
from campaigns.models import Campaign
from campaigns.services import CampaignError, campaign_check_content
from settings import queues
from subscribers.models import MailingList, SubscriberImport, Subscription

log = structlog.get_logger(__name__)

SEQUENCE_PAUSE = "its sequence is paused"


class SequenceError(Exception):
    """An action that cannot be done; the message says why and what to do."""


def step_message(sequence: Sequence, *, position: int, subject: str, body: str) -> Campaign:
    """A new step's message: a campaign of kind `step`, in line with its sequence."""
    campaign = Campaign.objects.create(
        name=f"{sequence.name} · step {position}",
        kind=Campaign.Kind.STEP,
        share_group=sequence.share_group,
        subject=subject,
        body=body,
        weight=sequence.weight,
        rate_limit=sequence.rate_limit,
    )
    campaign.lists.set(sequence.lists.all())
    return campaign


def sync_messages(sequence: Sequence) -> list[Campaign]:
    """Every version's step messages take the sequence's lists, weight and rate."""
    campaigns = list(Campaign.objects.filter(step__sequence=sequence))
    lists = list(sequence.lists.all())
    for campaign in campaigns:
        Campaign.objects.filter(pk=campaign.pk).update(
            weight=sequence.weight,
            rate_limit=sequence.rate_limit,
            share_group=sequence.share_group,
        )
        campaign.lists.set(lists)
    return campaigns


def check(sequence: Sequence) -> list[Step]:
    steps = sequence.steps_of(sequence.version)
    if not steps:
        raise SequenceError(
            _("Sequence %(sequence)s has no steps; add at least one.")
            % {"sequence": repr(sequence.name)}
        )
    if not sequence.lists.exists():
        raise SequenceError(
            _(
                "Sequence %(sequence)s has no lists; choose the lists whose "
                "subscribers it may send to."
            )
            % {"sequence": repr(sequence.name)}
        )
    if (
        sequence.trigger == Sequence.Trigger.LIST
        and not sequence.lists.filter(pk=sequence.trigger_list_id or 0).exists()
    ):
        raise SequenceError(
            _(
                "Sequence %(sequence)s starts on joining %(trigger_list)s, which is "
                "not one of its lists: add it to its lists, or its messages would "
                "reach nobody."
            )
            % {"sequence": repr(sequence.name), "trigger_list": sequence.trigger_list}
        )
    for step in steps:
        if step.kind == Step.Kind.SEND:
            if step.campaign is None:
                raise SequenceError(
                    _("Step %(position)s sends nothing: write its message.")
                    % {"position": step.position}
                )
            try:
                campaign_check_content(campaign=step.campaign)
            except CampaignError as error:
                raise SequenceError(
                    _("Step %(position)s: %(error)s") % {"position": step.position, "error": error}
                ) from error
        if step.kind == Step.Kind.BRANCH and step.go_to and step.go_to > len(steps) + 1:
            raise SequenceError(
                _("Step %(position)s goes to step %(go_to)s, which does not exist.")
                % {"position": step.position, "go_to": step.go_to}
            )
    return steps


def sequence_activate(*, sequence: Sequence, move_in_flight: bool = False) -> Sequence:
    """Start (or resume) the sequence: its messages run, waiting subscribers go on.
    move_in_flight: those on an older version of its steps go on with the current one, at
    the same position."""
    check(sequence)
    with transaction.atomic():
        locked = Sequence.objects.select_for_update().get(pk=sequence.pk)
        if locked.status == Sequence.Status.ACTIVE:
            raise SequenceError(
                _("Sequence %(sequence)s is already active.") % {"sequence": repr(sequence.name)}
            )
        now = timezone.now()
        locked.status = Sequence.Status.ACTIVE
        locked.activated_at = locked.activated_at or now
        locked.save(update_fields=["status", "activated_at"])
        for campaign in sync_messages(locked):
            if campaign.status in (Campaign.Status.DRAFT, Campaign.Status.PAUSED):
                # Scheduled with a start time: the dispatcher runs it without a snapshot.
                started = campaign.started_at or now
                campaign.change_status(Campaign.Status.SCHEDULED, started_at=started)
        if move_in_flight:
            moved = Enrollment.objects.filter(
                sequence=locked, state=Enrollment.State.ACTIVE, version__lt=locked.version
            ).update(version=locked.version)
            log.info("sequence subscribers moved", sequence_id=locked.pk, moved=moved)
        queues.enqueue_on_commit(queues.DISPATCH_TICK)
        queues.enqueue_on_commit(queues.ADVANCE_SEQUENCES)
    log.info("sequence active", sequence_id=sequence.pk)
    sequence.refresh_from_db()
    return sequence


def sequence_pause(*, sequence: Sequence) -> Sequence:
    """Subscribers wait at their step; messages not yet sent wait in the ledger."""
    with transaction.atomic():
        changed = Sequence.objects.filter(pk=sequence.pk, status=Sequence.Status.ACTIVE).update(
            status=Sequence.Status.PAUSED
        )
        if not changed:
            raise SequenceError(
                _("Sequence %(sequence)s is not active.") % {"sequence": repr(sequence.name)}
            )
        for campaign in Campaign.objects.filter(
            step__sequence=sequence,
            status__in=[Campaign.Status.SCHEDULED, Campaign.Status.RUNNING],
        ):
            campaign.change_status(Campaign.Status.PAUSED, reason=SEQUENCE_PAUSE)
    log.info("sequence paused", sequence_id=sequence.pk)
    sequence.refresh_from_db()
    return sequence


def sequence_new_version(*, sequence: Sequence) -> Sequence:
    """Copy the current steps (and their messages) into a new version, to edit while the
    sequence is paused: who enters from now on takes it; who is on the way keeps theirs."""
    if sequence.status == Sequence.Status.ACTIVE:
        raise SequenceError(_("Pause the sequence before giving it new steps."))
    with transaction.atomic():
        locked = Sequence.objects.select_for_update().get(pk=sequence.pk)
        steps = locked.steps_of(locked.version)
        locked.version += 1
        locked.save(update_fields=["version"])
        for step in steps:
            old = step.campaign
            step.pk, step.version, step.entered, step.exited = None, locked.version, 0, 0
            if old is not None:
                step.campaign = step_message(
                    locked, position=step.position, subject=old.subject, body=old.body
                )
                Campaign.objects.filter(pk=step.campaign.pk).update(
                    template=old.template,
                    format=old.format,
                    from_email=old.from_email,
                    name=f"{locked.name} · v{locked.version} step {step.position}",
                )
            step.save()
    log.info("sequence new version", sequence_id=sequence.pk, version=locked.version)
    sequence.refresh_from_db()
    return sequence


def _require_active(sequence: Sequence) -> None:
    if sequence.status != Sequence.Status.ACTIVE:
        raise SequenceError(
            _("Sequence %(sequence)s is %(status)s; activate it, then add people.")
            % {"sequence": repr(sequence.name), "status": sequence.status}
        )


def sequence_enroll(*, sequence: Sequence, subscriber_ids: list[int]) -> int:
    """Enter subscribers by hand (admin, API, import); returns how many entered now."""
    _require_active(sequence)
    entered = entry.enroll(sequence, subscriber_ids)
    queues.enqueue_on_commit(queues.ADVANCE_SEQUENCES)
    return entered


def sequence_enroll_import(*, sequence: Sequence, job: SubscriberImport) -> int:
    """Enter the people of a finished import (subscribe mode): whom it wrote to its list."""
    _require_active(sequence)
    if job.status != SubscriberImport.Status.DONE or job.mode != SubscriberImport.Mode.SUBSCRIBE:
        raise SequenceError(
            _("Import %(job_pk)s is not a finished import into a list; choose one that is.")
            % {"job_pk": job.pk}
        )
    entered = entry.by_import(sequence, job)
    queues.enqueue_on_commit(queues.ADVANCE_SEQUENCES)
    return entered


def record_event(*, subscriber_id: int, event: str) -> list[Sequence]:
    """An event happened to a subscriber: they enter the sequences it starts."""
    started = entry.by_event(subscriber_id=subscriber_id, event=event)
    if started:
        queues.enqueue_on_commit(queues.ADVANCE_SEQUENCES)
    return started


def sequences_end_for(*, subscriber_ids: list[int], reason: str, unless_on_lists: bool) -> int:
    """End the sequences of subscribers who left: all of them, or (unless_on_lists) those
    whose lists they are on no more."""
    active = Enrollment.objects.filter(
        subscriber_id__in=subscriber_ids, state=Enrollment.State.ACTIVE
    )
    if unless_on_lists:
        receiving = Q(status=Subscription.Status.CONFIRMED) | Q(
            status=Subscription.Status.UNCONFIRMED,
            mailing_list__opt_in=MailingList.OptIn.SINGLE,
        )
        on_a_list = Subscription.objects.filter(
            receiving,
            subscriber_id=OuterRef("subscriber_id"),
            mailing_list__sequences=OuterRef("sequence_id"),
        )
        active = active.exclude(Exists(on_a_list))
    return active.update(state=Enrollment.State.EXITED, reason=reason, updated_at=timezone.now())
