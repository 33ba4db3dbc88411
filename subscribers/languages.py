"""Which language a public page speaks: the language of the list it is about (a list's
`language`), or of the subscriber's lists; without a list, the visitor's browser's."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils import translation

from subscribers.models import MailingList, Subscriber, Subscription


def of_lists(lists: Iterable[MailingList]) -> str | None:
    for mailing_list in lists:
        return mailing_list.language
    return None


def of_subscriber(subscriber: Subscriber) -> str | None:
    """The language of the list the subscriber joined first, of those they are still on (or,
    having left them all, of those they were on)."""
    rows = Subscription.objects.filter(subscriber=subscriber).order_by("created_at", "pk")
    languages = rows.values_list("mailing_list__language", flat=True)
    active = languages.exclude(status=Subscription.Status.UNSUBSCRIBED)
    return active.first() or languages.first()


def speak(language: str | None) -> None:
    """The rest of this request in that language (LocaleMiddleware chose the browser's)."""
    if language:
        translation.activate(language)
