"""Signed links in emails: unsubscribe, preferences, view in a browser, confirm a subscription.

A link carries the subscriber's id (and the campaign's or list's) with an HMAC of them under
SECRET_KEY: it works without a login and cannot be guessed or altered. One signature per
recipient serves all of a message's links, which are then built by joining strings.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing

_links = signing.Signer(salt="subscribers.links")
_confirm = signing.Signer(salt="subscribers.confirm")


class BadLink(Exception):
    """A link that was altered, truncated or made up."""


@dataclass(frozen=True)
class LinkData:
    subscriber_id: int  # 0 in test sends and previews: there is no subscriber behind them
    campaign_id: int  # 0: not sent by a campaign


def token(subscriber_id: int | None, campaign_id: int | None) -> str:
    return _links.sign(f"{subscriber_id or 0}.{campaign_id or 0}")


def read(value: str) -> LinkData:
    try:
        subscriber, _, campaign = _links.unsign(value).partition(".")
        return LinkData(int(subscriber), int(campaign))
    except (signing.BadSignature, ValueError) as error:
        raise BadLink(str(error)) from error


def site(path: str) -> str:
    return f"{settings.SITE_URL.rstrip('/')}{path}"


def urls(value: str) -> dict[str, str]:
    """The links a campaign message can use, for its template context."""
    return {
        "unsubscribe_url": site(f"/u/{value}/"),
        "preferences_url": site(f"/p/{value}/"),
        "view_url": site(f"/v/{value}/"),
        # Inserted by the content preparation, not written by people (campaigns.tracking).
        "tracking_base": site(f"/c/{value}/"),
        "open_url": site(f"/o/{value}/"),
    }


def confirm_token(subscriber_id: int, list_ids: list[int]) -> str:
    return _confirm.sign(f"{subscriber_id}.{'-'.join(str(i) for i in sorted(list_ids))}")


def read_confirm(value: str) -> tuple[int, list[int]]:
    try:
        subscriber, _, lists = _confirm.unsign(value).partition(".")
        return int(subscriber), [int(i) for i in lists.split("-") if i]
    except (signing.BadSignature, ValueError) as error:
        raise BadLink(str(error)) from error
