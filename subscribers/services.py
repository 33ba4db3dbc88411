"""Subscriber lifecycle: subscribe, confirm, unsubscribe, choose lists, blocklist, erase.

What the layers above must do about a change (drop unsent messages, count an unsubscribe)
they learn from subscribers.signals; this app imports nothing of theirs.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from django.db import transaction
from django.utils.translation import gettext

from settings import audit
from subscribers.addresses import EmailNotValidError, normalise_email
from subscribers.models import MAX_NAME, MailingList, Subscriber, Subscription
from subscribers.signals import (
    subscriber_erasing,
    subscribers_blocklisted,
    subscriptions_confirmed,
    subscriptions_ended,
)


class SubscriptionError(ValueError):
    """A subscription request that cannot be done; the message says why."""


@transaction.atomic
def subscriber_subscribe(
    *, email: str, name: str = "", lists: list[MailingList]
) -> tuple[Subscriber, list[MailingList]]:
    """Subscribe an address to public lists; returns it and the lists awaiting confirmation.

    Single opt-in lists take effect at once; double opt-in ones wait for the link in the
    confirmation message. A blocklisted address is left as it is, and the caller answers
    as if it had worked, so the form does not tell strangers who is blocklisted.
    """
    try:
        address = normalise_email(email)
    except EmailNotValidError as error:
        raise SubscriptionError(
            gettext("%(email)r is not a valid email address: %(error)s")
            % {"email": email, "error": error}
        ) from error
    if "\r" in name or "\n" in name:
        raise SubscriptionError(gettext("A name cannot contain line breaks."))
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise SubscriptionError(
            gettext(
                "A name cannot contain control characters (such as tabs or NUL); type it again."
            )
        )
    subscriber, _ = Subscriber.objects.get_or_create(
        email=address, defaults={"name": name.strip()[:MAX_NAME]}
    )
    if subscriber.status == Subscriber.Status.BLOCKLISTED:
        return subscriber, []
    pending = []
    for mailing_list in lists:
        double = mailing_list.opt_in == MailingList.OptIn.DOUBLE
        subscription, _ = Subscription.objects.get_or_create(
            subscriber=subscriber,
            mailing_list=mailing_list,
            defaults={"status": Subscription.Status.UNCONFIRMED},
        )
        if subscription.status == Subscription.Status.CONFIRMED:
            continue
        # Someone who left a list and fills in its form again has asked to come back.
        subscription.status = (
            Subscription.Status.UNCONFIRMED if double else Subscription.Status.CONFIRMED
        )
        subscription.save(update_fields=["status", "updated_at"])
        if double:
            pending.append(mailing_list)
    return subscriber, pending


@transaction.atomic
def subscription_confirm(*, subscriber_id: int, list_ids: list[int]) -> list[MailingList]:
    """Confirm the subscriptions a confirmation link names; returns the lists confirmed."""
    confirmed = Subscription.objects.filter(
        subscriber_id=subscriber_id,
        mailing_list_id__in=list_ids,
        status=Subscription.Status.UNCONFIRMED,
        subscriber__status=Subscriber.Status.ENABLED,
    )
    lists = list(MailingList.objects.filter(subscriptions__in=confirmed))
    confirmed.update(status=Subscription.Status.CONFIRMED)
    if lists:
        subscriptions_confirmed.send(sender=Subscriber, subscriber_id=subscriber_id, lists=lists)
    return lists


def subscriber_unsubscribe(
    *,
    subscriber: Subscriber,
    lists: Iterable[MailingList] | None = None,
    campaign_id: int | None = None,
) -> int:
    """Leave these lists (the lists of the campaign a link came from), or every list;
    messages not sent yet from campaigns to those lists are not sent. Returns how many
    subscriptions ended; when some did, the campaign whose link it was counts one
    unsubscribe."""
    subscriptions = Subscription.objects.filter(subscriber=subscriber).exclude(
        status=Subscription.Status.UNSUBSCRIBED
    )
    if lists is not None:
        subscriptions = subscriptions.filter(mailing_list__in=list(lists))
    left = subscriptions.update(status=Subscription.Status.UNSUBSCRIBED)
    subscriptions_ended.send(
        sender=Subscriber, subscriber=subscriber, ended=left, campaign_id=campaign_id
    )
    return left


@transaction.atomic
def subscriber_set_lists(*, subscriber: Subscriber, wanted: set[int]) -> list[MailingList]:
    """The preferences page: stay on or join the public lists in `wanted`, leave the rest.

    Joining a double opt-in list from here needs no confirmation mail: the link the
    subscriber followed already proves the address is theirs. Returns the lists joined.
    """
    joined = []
    current = {
        s.mailing_list_id: s for s in subscriber.subscriptions.select_related("mailing_list")
    }
    for subscription in current.values():
        leaving = subscription.mailing_list_id not in wanted
        if leaving and subscription.status != Subscription.Status.UNSUBSCRIBED:
            subscription.status = Subscription.Status.UNSUBSCRIBED
            subscription.save(update_fields=["status", "updated_at"])
    for mailing_list in MailingList.objects.filter(pk__in=wanted):
        existing = current.get(mailing_list.pk)
        if existing is not None and Subscription.is_active(existing.status, mailing_list):
            continue
        if existing is None and not mailing_list.is_public:
            continue  # private lists are joined only by the people who run them
        Subscription.objects.update_or_create(
            subscriber=subscriber,
            mailing_list=mailing_list,
            defaults={"status": Subscription.Status.CONFIRMED},
        )
        joined.append(mailing_list)
    subscriptions_ended.send(sender=Subscriber, subscriber=subscriber, ended=0, campaign_id=None)
    return joined


@transaction.atomic
def subscriber_blocklist(*, subscribers: Iterable[Subscriber]) -> int:
    """Never mail them again, whatever list they are on (their pending messages too)."""
    # Their unsent messages are refused at send time (the claim reads the status).
    chosen = list(subscribers)
    changed = Subscriber.objects.filter(pk__in=[s.pk for s in chosen]).update(
        status=Subscriber.Status.BLOCKLISTED
    )
    newly = [s for s in chosen if s.status != Subscriber.Status.BLOCKLISTED]
    for subscriber in newly:
        audit.record(
            subscriber,
            "blocklisted",
            changes={"status": [subscriber.status, Subscriber.Status.BLOCKLISTED]},
        )
        subscriber.status = Subscriber.Status.BLOCKLISTED
    if newly:
        subscribers_blocklisted.send(sender=Subscriber, subscribers=newly)
    return changed


@transaction.atomic
def subscriber_erase(*, subscriber: Subscriber) -> None:
    """Delete a subscriber and scrub their address from the sending ledger (GDPR erasure)."""
    subscriber_erasing.send(sender=Subscriber, subscriber=subscriber)
    # The trail keeps that it happened, not who it was.
    audit.record(subscriber, "erased", label=f"subscriber {subscriber.pk} (erased)", deleted=True)
    subscriber.delete()
