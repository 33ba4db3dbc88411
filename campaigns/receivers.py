"""How campaigns answer what the subscribers app announces (subscribers.signals)."""

from __future__ import annotations

from typing import Any

from campaigns.models import Campaign, Unsubscribe
from subscribers.models import Subscriber


def count_unsubscribe(
    *, subscriber: Subscriber, ended: int, campaign_id: int | None, **_: Any
) -> None:
    """A subscriber who left through a campaign's link counts once for that campaign."""
    if ended and campaign_id and Campaign.objects.filter(pk=campaign_id).exists():
        Unsubscribe.objects.bulk_create(
            [Unsubscribe(campaign_id=campaign_id, subscriber_id=subscriber.pk)],
            ignore_conflicts=True,
        )
