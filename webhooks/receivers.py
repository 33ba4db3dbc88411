"""What the lower layers announce, as webhook events in the outbox. Every receiver runs
inside the transaction of the change (post_save and the apps' own signals are sent there).

A subscriber added by an import is not announced one by one: imports write rows in bulk,
without per-row signals, and an endpoint would otherwise receive a million calls."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from automations.models import Sequence
from automations.signals import sequence_event
from campaigns.models import Campaign
from campaigns.signals import campaign_status_changed
from mailer.models import Bounce
from mailer.signals import bounce_recorded, tx_message_finished
from mailer.tx_models import TxMessage
from subscribers.models import MailingList, Subscriber
from subscribers.signals import (
    subscribers_blocklisted,
    subscriptions_confirmed,
    subscriptions_ended,
)
from webhooks.outbox import emit

CAMPAIGN_EVENTS = {
    Campaign.Status.RUNNING: "campaign.started",
    Campaign.Status.PAUSED: "campaign.paused",
    Campaign.Status.CANCELLED: "campaign.cancelled",
    Campaign.Status.FINISHED: "campaign.finished",
}


def subscriber_data(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "id": subscriber.pk,
        "uuid": str(subscriber.uuid),
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status,
        "attribs": subscriber.attributes,
    }


def lists_data(lists: list[MailingList]) -> list[dict[str, Any]]:
    return [{"id": m.pk, "name": m.name} for m in lists]


@receiver(post_save, sender=Subscriber, dispatch_uid="webhooks.subscriber_saved")
def subscriber_saved(sender, instance: Subscriber, created: bool, **kwargs) -> None:
    if kwargs.get("raw"):
        return  # loading fixtures
    emit("subscriber.created" if created else "subscriber.updated", subscriber_data(instance))


@receiver(subscriptions_ended, dispatch_uid="webhooks.subscriptions_ended")
def unsubscribed(sender, subscriber: Subscriber, ended: int, campaign_id, **kwargs) -> None:
    if ended:
        emit(
            "subscriber.unsubscribed",
            {**subscriber_data(subscriber), "ended": ended, "campaign_id": campaign_id},
        )


@receiver(subscribers_blocklisted, dispatch_uid="webhooks.blocklisted")
def blocklisted(sender, subscribers: list[Subscriber], **kwargs) -> None:
    for subscriber in subscribers:
        emit("subscriber.blocklisted", subscriber_data(subscriber))


@receiver(subscriptions_confirmed, dispatch_uid="webhooks.confirmed")
def confirmed(sender, subscriber_id: int, lists: list[MailingList], **kwargs) -> None:
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is not None:
        emit("subscription.confirmed", {**subscriber_data(subscriber), "lists": lists_data(lists)})


@receiver(campaign_status_changed, dispatch_uid="webhooks.campaign_status")
def campaign_changed(sender, campaign: Campaign, old: str, new: str, **kwargs) -> None:
    if campaign.kind == Campaign.Kind.STEP:
        return  # a sequence's message: its sequence says what happens
    if kind := CAMPAIGN_EVENTS.get(Campaign.Status(new)):
        emit(
            kind,
            {
                "id": campaign.pk,
                "uuid": str(campaign.uuid),
                "name": campaign.name,
                "status": new,
                "previous_status": old,
                "sent": campaign.sent,
            },
        )


@receiver(bounce_recorded, dispatch_uid="webhooks.bounce")
def bounce(sender, bounce: Bounce, **kwargs) -> None:
    complaint = bounce.kind == Bounce.Kind.COMPLAINT
    emit(
        "complaint.received" if complaint else "bounce.received",
        {
            "id": bounce.pk,
            "email": bounce.email,
            "type": bounce.kind,
            "source": bounce.source,
            "subscriber_id": bounce.subscriber_id,
            "campaign_id": bounce.campaign_id,
            "description": bounce.description,
            "created_at": bounce.at.isoformat(),
        },
    )


@receiver(tx_message_finished, dispatch_uid="webhooks.tx")
def tx_finished(sender, message: TxMessage, **kwargs) -> None:
    emit(
        "tx.sent" if message.status == TxMessage.Status.SENT else "tx.failed",
        {
            "id": message.pk,
            "to": message.to_email,
            "subscriber_id": message.subscriber_id,
            "template_id": message.template_id,
            "subject": message.subject,
            "message_id": message.message_id,
            "status": message.status,
            "reply": message.reply,
            "attempts": message.attempts,
        },
    )


@receiver(sequence_event, dispatch_uid="webhooks.sequence")
def sequence_step(sender, sequence: Sequence, event: str, subscriber_ids: list[int], **kw) -> None:
    for subscriber in Subscriber.objects.filter(pk__in=subscriber_ids).order_by("pk"):
        emit(
            "sequence.event",
            {
                "event": event,
                "sequence": {"id": sequence.pk, "name": sequence.name},
                "subscriber": subscriber_data(subscriber),
            },
        )
