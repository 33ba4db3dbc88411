"""Who leaves ends their sequences at once: unsubscribing (from every list of a sequence),
blocklisting and erasing. Sent inside the transaction of the change (subscribers.signals)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from automations.services import sequences_end_for
from subscribers.models import Subscriber
from subscribers.signals import subscriber_erasing, subscribers_blocklisted, subscriptions_ended


@receiver(subscriptions_ended, dispatch_uid="automations.unsubscribed")
def unsubscribed(sender, subscriber: Subscriber, **kwargs: Any) -> None:
    sequences_end_for(subscriber_ids=[subscriber.pk], reason="unsubscribed", unless_on_lists=True)


@receiver(subscribers_blocklisted, dispatch_uid="automations.blocklisted")
def blocklisted(sender, subscribers: list[Subscriber], **kwargs: Any) -> None:
    sequences_end_for(
        subscriber_ids=[s.pk for s in subscribers], reason="blocklisted", unless_on_lists=False
    )


@receiver(subscriber_erasing, dispatch_uid="automations.erasing")
def erasing(sender, subscriber: Subscriber, **kwargs: Any) -> None:
    sequences_end_for(subscriber_ids=[subscriber.pk], reason="erased", unless_on_lists=False)
